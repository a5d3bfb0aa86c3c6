"""The /wsimg slash command."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot import blocks, updates
from bot.services import Services
from handlers.errors import answers_errors

COMMAND = "/wsimg"


def parse(text: str | None) -> tuple[str, list[str]]:
    words = (text or "").split()
    if not words:
        return "help", []
    return words[0].lower(), words[1:]


def register(app: App, services: Services) -> None:
    def ack_command(ack: Ack, command: dict[str, Any]) -> None:
        sub, args = parse(command.get("text"))
        if sub == "updates":
            where = f"`{args[0]}`" if args else "every configured region"
            ack(response_type="ephemeral", text=f"Looking for image updates in {where}…")
        elif sub in ("status", "history"):
            ack()
        else:
            ack(response_type="ephemeral", **blocks.help_message())

    @answers_errors
    def run_command(command: dict[str, Any], respond: Respond) -> None:
        sub, args = parse(command.get("text"))
        user_id, channel_id = command.get("user_id", ""), command.get("channel_id")
        if sub == "updates":
            page = updates.list_updates(
                services, user_id=user_id, channel_id=channel_id, region=args[0] if args else None
            )
            respond(response_type="ephemeral", **blocks.listing(page))
        elif sub == "status":
            found = updates.status(services, query=args[0] if args else None)
            respond(response_type="ephemeral", **blocks.status(found))
        elif sub == "history":
            limit = (
                int(args[0])
                if args and args[0].isdecimal() and args[0].isascii()
                else updates.HISTORY_DEFAULT
            )
            respond(
                response_type="ephemeral", **blocks.history(updates.history(services, limit=limit))
            )

    app.command(COMMAND)(ack=ack_command, lazy=[run_command])
