"""Button clicks and the reason modal. A button value is only an opaque key: the offer or the
request is looked up server-side and the clicker re-authorised on every click."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.domain import approval, decisions, digests, listing
from bot.domain.context import Services
from bot.domain.requests import Refused
from bot.errors import WsimgError
from bot.slack import blocks
from bot.slack.ids import CLOSE_VIEW, REASON_BLOCK, REASON_INPUT, Action, matcher
from handlers.errors import answers_errors, report


def _clicked(body: dict[str, Any]) -> tuple[str, str, str, str | None]:
    """(action_id, value, user_id, channel_id) of a block_actions payload, forged or not."""
    actions = body.get("actions") or [{}]
    action = actions[0] if isinstance(actions[0], dict) else {}
    user, channel = _object(body, "user"), _object(body, "channel")
    return (
        str(action.get("action_id", "")),
        str(action.get("value", "")),
        str(user.get("id", "")),
        channel.get("id") if isinstance(channel.get("id"), str) else None,
    )


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    """``body[key]`` when it is an object, else an empty one."""
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _message(body: dict[str, Any]) -> tuple[str, str]:
    """(channel, ts) of the channel message clicked on; ("", "") for anything else."""
    container = _object(body, "container")
    channel, ts = container.get("channel_id"), container.get("message_ts")
    if container.get("is_ephemeral") or not (isinstance(channel, str) and isinstance(ts, str)):
        return "", ""
    return channel, ts


def _ack(ack: Ack) -> None:
    ack()


def _reason_of(view: dict[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}) if isinstance(view, dict) else {}
    block = values.get(REASON_BLOCK) if isinstance(values, dict) else None
    field = block.get(REASON_INPUT) if isinstance(block, dict) else None
    value = field.get("value") if isinstance(field, dict) else None
    return value if isinstance(value, str) else ""


def _closing(body: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
    """The reason modal's submission as decisions.close takes it (private_metadata is ours,
    but it came back through the client: it is checked again there)."""
    data = _metadata(view)
    user = _object(body, "user")
    return {
        "request_id": str(data.get("request", "")),
        "user_id": str(user.get("id", "")),
        "cancel": data.get("cancel") is True,
        "reason": _reason_of(view),
    }


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}") if isinstance(view, dict) else {}
    except (ValueError, RecursionError):  # deep nesting recurses: Socket Mode has no gate
        return {}
    return data if isinstance(data, dict) else {}


def register(app: App, services: Services) -> None:
    @answers_errors
    def approve(body: dict[str, Any], respond: Respond) -> None:
        _, key, user_id, channel_id = _clicked(body)
        try:
            approved = approval.approve(
                services, offer_key=key, user_id=user_id, channel_id=channel_id
            )
        except Refused as refused:
            if refused.page is not None:  # show the list as it now stands, then say why
                respond(replace_original=True, **blocks.listing(refused.page))
            raise
        respond(replace_original=True, **blocks.listing(approved.page))

    @answers_errors
    def confirm(body: dict[str, Any], respond: Respond) -> None:  # respond: for errors
        _, request_id, user_id, _ = _clicked(body)
        decisions.confirm(services, request_id=request_id, user_id=user_id, message=_message(body))

    def ask_reason(cancel: bool) -> Callable[..., None]:
        """Reject / Cancel: the modal opens while the click is acknowledged, within the 3 s
        its trigger_id lives (a lazy listener could start too late on a busy pool)."""

        def ack_and_ask(
            ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond
        ) -> None:
            ack()
            _, request_id, user_id, channel_id = _clicked(body)
            try:
                request = decisions.may_close(
                    services,
                    request_id=request_id,
                    user_id=user_id,
                    message=_message(body),
                    cancel=cancel,
                )
                view = blocks.reason_modal(request, cancel=cancel, channel_id=channel_id)
                client.views_open(trigger_id=str(body.get("trigger_id", "")), view=view)
            except Exception as error:  # noqa: BLE001 (reported with traceback and an ID)
                report(error, respond)

        return ack_and_ask

    def close(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The modal's submission, done in the ack: a refusal shows in the modal, which then
        stays open, and nothing runs afterwards that the answer did not say."""
        closing = _closing(body, view)
        try:
            decisions.close(services, refresh=False, **closing)
        except WsimgError as problem:
            ack(response_action="errors", errors={REASON_BLOCK: problem.user_message[:150]})
            return
        ack()

    @answers_errors
    def show(view: dict[str, Any]) -> None:
        decisions.show(services, request_id=_closing({}, view)["request_id"])

    @answers_errors
    def page(body: dict[str, Any], respond: Respond) -> None:
        action, key, _, _ = _clicked(body)
        target = action.rpartition(":")[2]
        number = int(target) if target.isascii() and target.isdecimal() and len(target) < 7 else 1
        page_ = listing.page_for_key(services, key=key, page=number)
        respond(replace_original=True, **blocks.listing(page_))

    @answers_errors
    def snooze(body: dict[str, Any], respond: Respond) -> None:
        _, key, user_id, _ = _clicked(body)
        snoozed = digests.snooze(services, offer_key=key, user_id=user_id)
        respond(replace_original=True, **blocks.listing(snoozed))

    @answers_errors
    def open_group(body: dict[str, Any], respond: Respond) -> None:
        _, key, _, _ = _clicked(body)
        group = listing.page_for_key(services, key=key)
        # A new message for the clicker: the digest itself stays as the channel saw it.
        respond(response_type="ephemeral", replace_original=False, **blocks.listing(group))

    app.action(matcher(Action.APPROVE))(ack=_ack, lazy=[approve])
    app.action(matcher(Action.CONFIRM))(ack=_ack, lazy=[confirm])
    app.action(matcher(Action.REJECT))(ask_reason(cancel=False))
    app.action(matcher(Action.CANCEL))(ask_reason(cancel=True))
    app.view(CLOSE_VIEW)(ack=close, lazy=[show])
    app.action(matcher(Action.SNOOZE))(ack=_ack, lazy=[snooze])
    app.action(matcher(Action.OPEN))(ack=_ack, lazy=[open_group])
    app.action(matcher(Action.PAGE))(ack=_ack, lazy=[page])
