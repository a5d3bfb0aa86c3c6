"""Turning errors into answers: domain errors become the sentence they carry; anything else is
logged with its traceback under a short ID that the user is given.

Work runs in Bolt lazy listeners (after the ack), and Bolt's lazy runner only logs a one-line
message for an exception, so those listeners are wrapped with ``answers_errors``; the ack path
goes through the one ``@app.error``.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt import App, BoltContext
from slack_bolt.context.respond import Respond

from bot.errors import WsimgError
from bot.slack import blocks
from bot.slack.payloads import PAYLOAD, SlackPayload

log = logging.getLogger(__name__)


P = TypeVar("P", bound=SlackPayload)


class Unreadable(WsimgError):
    def __init__(self) -> None:
        super().__init__("wsimg could not read that request from Slack. Try again.")


def payload(context: BoltContext, kind: type[P]) -> P:
    """The typed payload the gate parsed (bot/slack/payloads.py), of the kind a listener
    handles; anything else (a gap in the gate) is refused rather than guessed at."""
    found = context.get(PAYLOAD)
    if not isinstance(found, kind):
        raise Unreadable()
    return found


def report(error: BaseException, respond: Respond | None) -> None:
    if isinstance(error, WsimgError):
        log.info("answered with: %s", error.user_message)
        message = blocks.refusal_message(error)
    else:
        error_id = uuid.uuid4().hex[:8]
        log.error("unexpected error %s", error_id, exc_info=error)
        message = blocks.error_message(
            f"Something went wrong on wsimg's side (error {error_id}); it is in the bot's log. "
            "Try again, and tell your wsimg admin if it keeps happening."
        )
    if respond is None:
        return
    try:
        respond(response_type="ephemeral", replace_original=False, **message)
    except Exception:  # the answer itself could not be delivered: keep the original in the log
        log.exception("could not deliver the error answer")


def answers_errors(func: Callable[..., None]) -> Callable[..., None]:
    """For lazy listeners: Bolt injects arguments by the wrapped function's signature."""

    @functools.wraps(func)
    def run(**kwargs: Any) -> None:
        try:
            func(**kwargs)
        except Exception as error:  # noqa: BLE001 (reported with traceback and an ID)
            report(error, kwargs.get("respond"))

    return run


def register(app: App) -> None:
    @app.error
    def on_error(error: Exception, respond: Respond | None = None) -> None:
        report(error, respond)
