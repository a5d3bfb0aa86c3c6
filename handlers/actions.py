"""Button clicks and the reason modal. A button value is only an opaque key: the offer or the
request is looked up server-side and the clicker re-authorised on every click."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.domain import approval, bulk, decisions, digests, home, listing
from bot.domain.context import Services
from bot.domain.requests import Refused
from bot.errors import WsimgError
from bot.slack import blocks, listing_view
from bot.slack.ids import CLOSE_VIEW, REASON_BLOCK, Action, matcher
from bot.slack.payloads import Click, Submission
from handlers.errors import answers_errors, payload, report


def _ack(ack: Ack) -> None:
    ack()


def register(app: App, services: Services) -> None:
    @answers_errors
    def approve(context: BoltContext, respond: Respond) -> None:
        click = payload(context, Click)
        try:
            approved = approval.approve(
                services, offer_key=click.value, user_id=click.user_id, channel_id=click.channel_id
            )
        except Refused as refused:
            if refused.page is not None:  # show the list as it now stands, then say why
                respond(replace_original=True, **listing_view.listing(refused.page))
            raise
        respond(replace_original=True, **listing_view.listing(approved.page))
        home.refresh(services)

    @answers_errors
    def confirm(context: BoltContext, respond: Respond) -> None:  # respond: for errors
        click = payload(context, Click)
        decisions.confirm(
            services, request_id=click.value, user_id=click.user_id, message=click.message
        )
        home.refresh(services)

    def ask_reason(cancel: bool, *, batch: bool = False) -> Callable[..., None]:
        """Reject / Cancel: the modal opens while the click is acknowledged, within the 3 s
        its trigger_id lives (a lazy listener could start too late on a busy pool)."""

        def ack_and_ask(
            ack: Ack, context: BoltContext, client: WebClient, respond: Respond
        ) -> None:
            ack()
            try:
                click = payload(context, Click)
                if batch:
                    decided = bulk.may_close(
                        services,
                        batch_id=click.value,
                        user_id=click.user_id,
                        message=click.message,
                        cancel=cancel,
                    )
                    view = blocks.batch_reason_modal(
                        decided, cancel=cancel, channel_id=click.channel_id
                    )
                else:
                    request = decisions.may_close(
                        services,
                        request_id=click.value,
                        user_id=click.user_id,
                        message=click.message,
                        cancel=cancel,
                    )
                    view = blocks.reason_modal(request, cancel=cancel, channel_id=click.channel_id)
                client.views_open(trigger_id=click.trigger_id, view=view)
            except Exception as error:  # noqa: BLE001 (reported with traceback and an ID)
                report(error, respond)

        return ack_and_ask

    def close(ack: Ack, context: BoltContext) -> None:
        """The modal's submission, done in the ack: a refusal shows in the modal, which then
        stays open, and nothing runs afterwards that the answer did not say."""
        try:
            submitted = payload(context, Submission)
            # The modal carries a request's id, or a batch's (its Reject all / Cancel).
            if bulk.is_batch(services, submitted.request_id):
                bulk.close(
                    services,
                    refresh=False,
                    batch_id=submitted.request_id,
                    user_id=submitted.user_id,
                    cancel=submitted.cancel,
                    reason=submitted.reason,
                )
            else:
                decisions.close(
                    services,
                    refresh=False,
                    request_id=submitted.request_id,
                    user_id=submitted.user_id,
                    cancel=submitted.cancel,
                    reason=submitted.reason,
                )
        except WsimgError as problem:
            ack(response_action="errors", errors={REASON_BLOCK: problem.user_message[:150]})
            return
        ack()

    @answers_errors
    def show(context: BoltContext) -> None:
        identifier = payload(context, Submission).request_id
        if bulk.is_batch(services, identifier):
            bulk.show_batch(services, batch_id=identifier)
        else:
            decisions.show(services, request_id=identifier)
        home.refresh(services)

    @answers_errors
    def approve_all(context: BoltContext, respond: Respond) -> None:
        click = payload(context, Click)
        # wsimg.bulk:all:<N> or wsimg.bulk:group:<n>:<N>, N the count its confirm named.
        parts = click.action_id.split(":")
        count = parts[-1]
        outcome = bulk.approve_all(
            services,
            offer_key=click.value,
            whole=len(parts) == 3 and parts[1] == "all",
            confirmed=int(count)
            if count.isascii() and count.isdecimal() and len(count) < 7
            else None,
            user_id=click.user_id,
            channel_id=click.channel_id,
        )
        respond(replace_original=False, **blocks.bulk_done(outcome))
        home.refresh(services)

    @answers_errors
    def confirm_batch(context: BoltContext, respond: Respond) -> None:  # respond: for errors
        click = payload(context, Click)
        bulk.confirm(services, batch_id=click.value, user_id=click.user_id, message=click.message)
        home.refresh(services)

    @answers_errors
    def stop_batch(context: BoltContext, respond: Respond) -> None:  # respond: for errors
        click = payload(context, Click)
        bulk.stop_queued(
            services, batch_id=click.value, user_id=click.user_id, message=click.message
        )
        home.refresh(services)

    @answers_errors
    def refresh(context: BoltContext, respond: Respond) -> None:
        click = payload(context, Click)
        fresh = listing.refresh_listing(
            services, key=click.value, user_id=click.user_id, channel_id=click.channel_id
        )
        respond(replace_original=True, **listing_view.listing(fresh))

    @answers_errors
    def page(context: BoltContext, respond: Respond) -> None:
        click = payload(context, Click)
        target = click.action_id.rpartition(":")[2]
        number = int(target) if target.isascii() and target.isdecimal() and len(target) < 7 else 1
        page_ = listing.page_for_key(services, key=click.value, page=number)
        respond(replace_original=True, **listing_view.listing(page_))

    @answers_errors
    def snooze(context: BoltContext, respond: Respond) -> None:
        click = payload(context, Click)
        snoozed = digests.snooze(
            services, offer_key=click.value, user_id=click.user_id, channel_id=click.channel_id
        )
        respond(replace_original=True, **listing_view.listing(snoozed))

    @answers_errors
    def open_group(context: BoltContext, respond: Respond) -> None:
        group = listing.page_for_key(services, key=payload(context, Click).value)
        # A new message for the clicker: the digest itself stays as the channel saw it.
        respond(response_type="ephemeral", replace_original=False, **listing_view.listing(group))

    app.action(matcher(Action.APPROVE))(ack=_ack, lazy=[approve])
    app.action(matcher(Action.CONFIRM))(ack=_ack, lazy=[confirm])
    app.action(matcher(Action.REJECT))(ask_reason(cancel=False))
    app.action(matcher(Action.CANCEL))(ask_reason(cancel=True))
    app.view(CLOSE_VIEW)(ack=close, lazy=[show])
    app.action(matcher(Action.SNOOZE))(ack=_ack, lazy=[snooze])
    app.action(matcher(Action.OPEN))(ack=_ack, lazy=[open_group])
    app.action(matcher(Action.PAGE))(ack=_ack, lazy=[page])
    app.action(matcher(Action.REFRESH))(ack=_ack, lazy=[refresh])
    app.action(matcher(Action.BULK))(ack=_ack, lazy=[approve_all])
    app.action(matcher(Action.BATCH_CONFIRM))(ack=_ack, lazy=[confirm_batch])
    app.action(matcher(Action.BATCH_REJECT))(ask_reason(cancel=False, batch=True))
    app.action(matcher(Action.BATCH_CANCEL))(ask_reason(cancel=True, batch=True))
    app.action(matcher(Action.BATCH_STOP))(ack=_ack, lazy=[stop_batch])
