"""Keep Slack secrets out of every log line, whichever library writes it.

``install(secrets)`` makes every log record scrubbed before any handler sees it: each
configured secret value, and anything shaped like a Slack token (``xoxb-…``, ``xoxp-…``,
``xapp-…``), becomes ``[redacted]`` in the record's message, its arguments, its exception
text and its stack text. Three layers, because each one alone misses something:

* a log-record factory (``logging.setLogRecordFactory``): every record made by any logger
  (slack_sdk, slack_bolt, botocore, waitress, apscheduler, ours) passes through it, whatever
  handlers exist now or are added later (``basicConfig`` after us, pytest's ``caplog``). A filter
  on a logger would not do: it does not see records propagated from child loggers;
* a :class:`RedactingFilter` on the root logger's handlers, for records that are made without
  the factory (``logging.makeLogRecord``) or after someone else replaced it;
* ``sys.excepthook`` and ``threading.excepthook``: an uncaught exception is printed to stderr
  without going through logging at all. Only Python's own printers are replaced; a hook someone
  else installed (a test runner's) is still called and does its own output.

``install`` may be called more than once; secrets accumulate. ``uninstall`` undoes it (tests).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote

__all__ = [
    "MARK",
    "SECRET_VARIABLES",
    "RedactingFilter",
    "install",
    "installed",
    "redact_record",
    "scrub",
    "secrets_from_environment",
    "uninstall",
]

MARK = "[redacted]"

# The environment variables holding secrets (Settings reads them case-insensitively).
SECRET_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")

# Slack tokens: xoxb- (bot), xoxp- (user), xoxa-/xoxr-/xoxe- (rotation), xoxo-, xoxs-, xoxc-,
# xoxd- (session), xapp- (app-level). Redacted even when not configured: a token of another
# workspace or an old one is still a secret.
_SLACK_SHAPED = r"(?<![A-Za-z0-9])(?:xox[a-z]|xapp)-[A-Za-z0-9][A-Za-z0-9-]*"


class _HasSecret(Protocol):
    def get_secret_value(self) -> str: ...


_lock = threading.RLock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] = re.compile(_SLACK_SHAPED)


def _variants(secret: str) -> set[str]:
    """The secret as it may be written: as is, trimmed, URL-encoded, JSON-escaped."""
    found = {secret, secret.strip()}
    found |= {quote(s, safe="") for s in list(found)}
    found |= {json.dumps(s)[1:-1] for s in list(found)}
    return {s for s in found if s}


def _add(values: Iterable[str | _HasSecret | None]) -> None:
    global _pattern
    with _lock:
        for value in values:
            if value is not None and not isinstance(value, str):
                value = value.get_secret_value()
            if value and value.strip():
                _secrets.update(_variants(value))
        # Longest first, so that a secret containing another is replaced whole.
        literal = "|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True))
        _pattern = re.compile(f"{literal}|{_SLACK_SHAPED}" if literal else _SLACK_SHAPED)


def scrub(text: str) -> str:
    """``text`` with every installed secret and every Slack-token-shaped word redacted."""
    if not isinstance(text, str):
        text = str(text)
    return _pattern.sub(MARK, text)


def _format_exception(exc_info: Any) -> str:
    # What logging.Formatter.formatException writes, so the output looks the same.
    return "".join(traceback.format_exception(*exc_info)).rstrip("\n")


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Scrub ``record`` in place (and return it).

    The message is merged with its arguments only when something had to be redacted, so a
    clean record keeps its ``args``. An exception whose text had to be redacted is replaced by
    the redacted ``exc_text`` (``exc_info`` is dropped, so no formatter can render it again).
    """
    try:
        message = record.getMessage()
        formatted = True
    except Exception:  # noqa: BLE001 (a wrong format string: keep what can be kept, scrubbed)
        message = f"{record.msg!s} (arguments that do not fit the message: {record.args!r})"
        formatted = False
    clean = scrub(message)
    if clean != message or not formatted:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[0] is not None:
        text = record.exc_text or _format_exception(record.exc_info)
        clean = scrub(text)
        if clean != text:
            record.exc_text, record.exc_info = clean, None
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """A handler filter that scrubs each record it sees; it never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_FILTER = RedactingFilter("wsimg.redact")


class _State:
    def __init__(self) -> None:
        self.factory: Any = None
        self.excepthook: Any = None
        self.threading_excepthook: Any = None
        self.handlers: list[logging.Handler] = []


_state: _State | None = None


def _redacting_factory(previous: Any) -> Any:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    make.__wsimg_redacting__ = True  # type: ignore[attr-defined]
    return make


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    previous = _state.excepthook if _state is not None else sys.__excepthook__
    if previous is not sys.__excepthook__:
        previous(kind, value, tb)  # someone's own hook (a test runner's): it does its own output
        return
    sys.stderr.write(scrub("".join(traceback.format_exception(kind, value, tb))))
    sys.stderr.flush()


def _threading_excepthook(args: threading.ExceptHookArgs) -> None:
    previous = _state.threading_excepthook if _state is not None else threading.__excepthook__
    if previous is not threading.__excepthook__:
        previous(args)
        return
    if args.exc_type is SystemExit or sys.stderr is None:
        return
    name = args.thread.name if args.thread is not None else threading.get_ident()
    text = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    sys.stderr.write(scrub(f"Exception in thread {name}:\n{text}"))
    sys.stderr.flush()


def install(secrets: Iterable[str | _HasSecret | None]) -> None:
    """Redact ``secrets`` (strings or ``SecretStr``; ``None`` and empty ones are skipped) and
    Slack-token-shaped text from every log record and uncaught-exception report from now on."""
    global _state
    _add(secrets)
    with _lock:
        if _state is None:
            state = _State()
            state.factory = logging.getLogRecordFactory()
            if not getattr(state.factory, "__wsimg_redacting__", False):
                logging.setLogRecordFactory(_redacting_factory(state.factory))
            state.excepthook, sys.excepthook = sys.excepthook, _excepthook
            state.threading_excepthook = threading.excepthook
            threading.excepthook = _threading_excepthook
            _state = state
        for handler in logging.getLogger().handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
                _state.handlers.append(handler)


def installed() -> bool:
    return _state is not None


def uninstall() -> None:
    """Undo ``install`` and forget the secrets (for tests)."""
    global _state
    with _lock:
        state, _state = _state, None
        _secrets.clear()
        _add([])
        if state is None:
            return
        if getattr(logging.getLogRecordFactory(), "__wsimg_redacting__", False):
            logging.setLogRecordFactory(state.factory)
        if sys.excepthook is _excepthook:
            sys.excepthook = state.excepthook
        if threading.excepthook is _threading_excepthook:
            threading.excepthook = state.threading_excepthook
        for handler in state.handlers:
            handler.removeFilter(_FILTER)


def secrets_from_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of SLACK_BOT_TOKEN, SLACK_APP_TOKEN and SLACK_SIGNING_SECRET, matched
    case-insensitively as the settings are, whether or not the rest of the settings are valid."""
    env = os.environ if environ is None else environ
    wanted = {name.lower() for name in SECRET_VARIABLES}
    return [value for name, value in env.items() if name.lower() in wanted and value.strip()]
