"""The /wsimg slash command: acknowledged at once, answered after the work is done.

The ack also admits the command under the per-user limits (bot/slack/limits.py): a command over a
limit is answered in the ack itself and does no work; an admitted one carries its ticket to the
lazy listener in Bolt's context, which releases it as the answer goes out, or when it fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk.webhook import WebhookResponse

from bot.domain import audit, digests, fleet, listing, rollout
from bot.domain.context import Services
from bot.errors import WsimgError
from bot.slack import blocks, listing_view, rollout_view
from bot.slack.limits import CommandLimits, LimitReached, Ticket
from bot.slack.payloads import Command
from bot.slack.progress import ProgressMessage
from handlers.errors import answers_errors, payload

COMMAND = "/wsimg"
TICKET = "wsimg_ticket"  # the context key that carries an admitted command to its listener


class _ReleasingFirst(Respond):
    """``respond`` that ends the command's ticket before the answer goes out: whoever reads
    the answer may ask again at once, without finding their listing still counted as running."""

    def __init__(self, respond: Respond, release: Callable[[], None]) -> None:
        super().__init__(response_url=respond.response_url, proxy=respond.proxy, ssl=respond.ssl)
        self._release = release

    def __call__(self, *args: Any, **kwargs: Any) -> WebhookResponse:
        self._release()
        return super().__call__(*args, **kwargs)

    def meanwhile(self) -> Respond:
        """``respond`` for what is shown before the answer (progress): it keeps the ticket."""
        return Respond(response_url=self.response_url, proxy=self.proxy, ssl=self.ssl)


ACKS = {
    "status": None,
    "history": None,
    "digest": "Building the digest…",
    "subscribe": None,
    "unsubscribe": None,
    "rollout": "Reading the rollout's bundles and WorkSpaces…",
}


def parse(text: str | None) -> tuple[str, list[str]]:
    words = (text or "").split()
    if not words:
        return "help", []
    return words[0].lower(), words[1:]


def _number(args: list[str], default: int) -> int:
    """The first argument as a count; anything that is not one (or absurdly long) is ignored."""
    first = args[0] if args else ""
    if not (first.isascii() and first.isdecimal()):
        return default
    return int(first[:6]) if len(first) <= 6 else 999_999


def _everything(args: list[str]) -> tuple[list[str], bool]:
    """The arguments without `all`, and whether it was there (every channel's requests)."""
    rest = [arg for arg in args if arg.lower() != "all"]
    return rest, len(rest) != len(args)


def _looking(args: list[str], regions: Sequence[str]) -> str:
    """The ack of `/wsimg updates`: where it looks (a bad filter is answered after the ack)."""
    try:
        filters = listing.parse_filters(args, regions=regions)
    except WsimgError:
        return "Looking for image updates…"
    where = f"`{blocks.escape(filters.region)}`" if filters.region else "every configured region"
    matching = f" {blocks.escape(filters.describe())}" if filters.describe() else ""
    return f"Looking for image updates{matching} in {where}…"


def register(app: App, services: Services) -> None:
    def updates_(args: list[str], user_id: str, channel_id: str, respond: _ReleasingFirst) -> None:
        filters = listing.parse_filters(args, regions=services.settings.regions)
        progress = ProgressMessage(respond.meanwhile())
        with fleet.watching(progress):  # a scan the listing needs shows how far it has come
            page = listing.list_updates(
                services, user_id=user_id, channel_id=channel_id, filters=filters
            )
        replace = {"replace_original": True} if progress.shown else {}
        respond(response_type="ephemeral", **replace, **listing_view.listing(page))

    def status(args: list[str], user_id: str, channel_id: str, respond: Respond) -> None:
        rest, everything = _everything(args)
        who = audit.viewer(services, user_id=user_id, channel_id=channel_id, everything=everything)
        found = audit.status(services, query=rest[0] if rest else None, who=who)
        respond(response_type="ephemeral", **blocks.status(found, everywhere=everything))

    def history(args: list[str], user_id: str, channel_id: str, respond: Respond) -> None:
        rest, everything = _everything(args)
        who = audit.viewer(services, user_id=user_id, channel_id=channel_id, everything=everything)
        recent = audit.history(services, who=who, limit=_number(rest, audit.HISTORY_DEFAULT))
        respond(response_type="ephemeral", **blocks.history(recent, everywhere=everything))

    def digest(args: list[str], user_id: str, channel_id: str, respond: Respond) -> None:
        posted = digests.post_digest_now(services, channel_id=channel_id, user_id=user_id)
        respond(response_type="ephemeral", **blocks.digest_posted(posted))

    def subscribe(args: list[str], user_id: str, channel_id: str, respond: Respond) -> None:
        found = digests.subscribe(services, channel_id=channel_id, user_id=user_id, words=args)
        respond(response_type="in_channel", **blocks.subscribed(found, user_id))

    def unsubscribe(args: list[str], user_id: str, channel_id: str, respond: Respond) -> None:
        digests.unsubscribe(services, channel_id=channel_id, user_id=user_id)
        respond(response_type="in_channel", **blocks.unsubscribed(user_id))

    def rollout_(args: list[str], user_id: str, channel_id: str, respond: Respond) -> None:
        rest, everything = _everything(args)
        who = audit.viewer(services, user_id=user_id, channel_id=channel_id, everything=everything)
        found = rollout.find(services, query=rest[0][:80] if rest else None, who=who)
        respond(response_type="ephemeral", **rollout_view.plan(rollout.plan(services, found)))

    subcommands: dict[str, Callable[[list[str], str, str, _ReleasingFirst], None]] = {
        "updates": updates_,
        "status": status,
        "history": history,
        "digest": digest,
        "subscribe": subscribe,
        "unsubscribe": unsubscribe,
        "rollout": rollout_,
    }

    limits = CommandLimits()

    def ack_command(ack: Ack, context: BoltContext) -> None:
        command = payload(context, Command)
        sub, args = parse(command.text)
        if sub in subcommands:
            try:
                context[TICKET] = limits.admit(command.user_id, sub)
            except LimitReached as refused:
                ack(response_type="ephemeral", **blocks.error_message(refused.user_message))
                return
        if sub == "updates":
            ack(response_type="ephemeral", text=_looking(args, services.settings.regions))
        elif sub in ACKS:
            text = ACKS[sub]
            if text:
                ack(response_type="ephemeral", text=text)
            else:
                ack()
        else:
            ack(response_type="ephemeral", **blocks.help_message())

    @answers_errors
    def run_command(respond: Respond, context: BoltContext) -> None:
        ticket = context.get(TICKET)
        if not isinstance(ticket, Ticket):  # help, or refused in the ack: nothing to do
            return
        try:
            command = payload(context, Command)
            sub, args = parse(command.text)
            subcommands[sub](
                args,
                command.user_id,
                command.channel_id,
                _ReleasingFirst(respond, lambda: limits.release(ticket)),
            )
        finally:
            limits.release(ticket)  # also when it failed (answered by answers_errors after this)

    app.command(COMMAND)(ack=ack_command, lazy=[run_command])
