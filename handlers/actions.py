"""Button clicks: Approve and listing pages. The button value is only an opaque key: the
request is looked up server-side and the clicker re-authorised on every click."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot import blocks, digests, updates
from bot.ids import Action, matcher
from bot.services import Services
from handlers.errors import answers_errors


def _clicked(body: dict[str, Any]) -> tuple[str, str, str, str | None]:
    """(action_id, value, user_id, channel_id) of a block_actions payload, forged or not."""
    actions = body.get("actions") or [{}]
    action = actions[0] if isinstance(actions[0], dict) else {}
    user = body.get("user") if isinstance(body.get("user"), dict) else {}
    channel = body.get("channel") if isinstance(body.get("channel"), dict) else {}
    return (
        str(action.get("action_id", "")),
        str(action.get("value", "")),
        str(user.get("id", "")),
        channel.get("id") if isinstance(channel.get("id"), str) else None,
    )


def _ack(ack: Ack) -> None:
    ack()


def register(app: App, services: Services) -> None:
    @answers_errors
    def approve(body: dict[str, Any], respond: Respond) -> None:
        _, key, user_id, channel_id = _clicked(body)
        approval = updates.approve(services, offer_key=key, user_id=user_id, channel_id=channel_id)
        respond(replace_original=True, **blocks.listing(approval.page))

    @answers_errors
    def page(body: dict[str, Any], respond: Respond) -> None:
        action, key, _, _ = _clicked(body)
        target = action.rpartition(":")[2]
        listing = updates.page_for_key(
            services, key=key, page=int(target) if target.isascii() and target.isdecimal() else 1
        )
        respond(replace_original=True, **blocks.listing(listing))

    @answers_errors
    def snooze(body: dict[str, Any], respond: Respond) -> None:
        _, key, user_id, _ = _clicked(body)
        listing = digests.snooze(services, offer_key=key, user_id=user_id)
        respond(replace_original=True, **blocks.listing(listing))

    @answers_errors
    def open_group(body: dict[str, Any], respond: Respond) -> None:
        _, key, _, _ = _clicked(body)
        listing = updates.page_for_key(services, key=key)
        # A new message for the clicker: the digest itself stays as the channel saw it.
        respond(response_type="ephemeral", replace_original=False, **blocks.listing(listing))

    app.action(matcher(Action.APPROVE))(ack=_ack, lazy=[approve])
    app.action(matcher(Action.SNOOZE))(ack=_ack, lazy=[snooze])
    app.action(matcher(Action.OPEN))(ack=_ack, lazy=[open_group])
    app.action(matcher(Action.PAGE))(ack=_ack, lazy=[page])
