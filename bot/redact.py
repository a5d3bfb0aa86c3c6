"""Keep Slack secrets and response URLs out of every log line, whichever library writes it.

``install(secrets, api_url=...)`` makes every log record scrubbed before any handler sees it:

* each configured secret value of ``MIN_SECRET_LENGTH`` (8) characters or more, and anything
  shaped like a Slack token (``xoxb-…``, ``xoxp-…``, ``xapp-…``), becomes ``[redacted]``. A
  shorter value is not registered: redacting every ``e`` would spell the secret out across the
  log (and real Slack secrets are far longer). ``wsimg`` refuses such a value at start;
* every response URL becomes ``[response_url]``: anyone holding one can post to its channel
  for 30 minutes. Those are the URLs ``bot.slack.inbound.is_slack_url`` accepts as one:
  ``https://hooks.<the API's domain>/…`` (hooks.slack.com, hooks.slack-gov.com always), and a
  URL on the Web API's own origin that is not a Web API call (a stand-in's, in tests), written
  plain, JSON-escaped (``\\/``) or percent-encoded.

Both are replaced in the record's message, its arguments, its exception text and its stack
text. A marker already written is never redacted again, even by a secret that is part of it
(``redacted``) or overlaps it, so records scrubbed twice (factory, then filter) stay readable.

Three layers, because each one alone misses something:

* a log-record factory (``logging.setLogRecordFactory``): every record made by any logger
  (slack_sdk, slack_bolt, botocore, waitress, apscheduler, ours) passes through it, whatever
  handlers exist now or are added later (``basicConfig`` after us, pytest's ``caplog``). A filter
  on a logger would not do: it does not see records propagated from child loggers;
* a :class:`RedactingFilter` on the root logger's handlers, for records that are made without
  the factory (``logging.makeLogRecord``) or after someone else replaced it;
* ``sys.excepthook`` and ``threading.excepthook``: an uncaught exception is printed to stderr
  without going through logging at all. Only Python's own printers are replaced; a hook someone
  else installed (a test runner's) is still called and does its own output.

``install`` may be called more than once; secrets and API URLs accumulate. ``uninstall`` undoes
it (tests).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

__all__ = [
    "MARK",
    "MIN_SECRET_LENGTH",
    "SECRET_SOURCES",
    "SECRET_VARIABLES",
    "URL_MARK",
    "RedactingFilter",
    "api_url_from_environment",
    "install",
    "installed",
    "redact_record",
    "scrub",
    "secrets_from_environment",
    "too_short",
    "uninstall",
]

MARK = "[redacted]"
URL_MARK = "[response_url]"
_MARKS = re.compile(f"{re.escape(MARK)}|{re.escape(URL_MARK)}")

# Shorter values are not redacted (they would make every log line a puzzle that spells the
# secret out) and refused at start by `wsimg`. Slack's own are 32 characters and more.
MIN_SECRET_LENGTH = 8

# The environment variables holding secrets (Settings reads them case-insensitively), and where
# a person finds each one at api.slack.com/apps, for the message that refuses a short one.
SECRET_SOURCES = {
    "SLACK_BOT_TOKEN": "OAuth & Permissions page (Bot User OAuth Token)",
    "SLACK_APP_TOKEN": "Basic Information page (App-Level Tokens)",
    "SLACK_SIGNING_SECRET": "Basic Information page (Signing Secret)",
}
SECRET_VARIABLES = tuple(SECRET_SOURCES)

# Slack tokens: xoxb- (bot), xoxp- (user), xoxa-/xoxr-/xoxe- (rotation), xoxo-, xoxs-, xoxc-,
# xoxd- (session), xapp- (app-level). Redacted even when not configured: a token of another
# workspace or an old one is still a secret.
_SLACK_SHAPED = r"(?<![A-Za-z0-9])(?:xox[a-z]|xapp)-[A-Za-z0-9][A-Za-z0-9-]*"

# A URL as logs write it: plain, JSON-escaped ("https:\/\/", repr doubles the backslash) or
# percent-encoded (a form body, "payload=" JSON inside a form body).
_SLASH = r"(?:\\|%5[Cc])*(?:/|%2[Ff])"
_COLON = r"(?::|%3[Aa])"
_PATH = rf"(?:[A-Za-z0-9_.~-]|{_SLASH})+"
# Response URLs of slack.com and GovSlack, whatever SLACK_API_URL says.
_HOOKS_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")


class _HasSecret(Protocol):
    def get_secret_value(self) -> str: ...


_lock = threading.RLock()
_secrets: set[str] = set()
_api_urls: set[str] = set()


def _loose(literal: str) -> str:
    """``literal`` as a pattern that also matches its JSON-escaped and percent-encoded forms."""
    return "".join(_SLASH if c == "/" else _COLON if c == ":" else re.escape(c) for c in literal)


def _url_patterns(api_urls: Iterable[str]) -> list[str]:
    hosts = set(_HOOKS_HOSTS)
    origins = []
    for api_url in api_urls:
        api = urlsplit(api_url)
        if not api.hostname or not api.scheme:
            continue
        hosts.add(f"hooks.{api.hostname}")
        api_path = api.path.strip("/")
        if api_path:  # a Web API at the origin's root leaves no room for response URLs
            origin = _loose(f"{api.scheme}://{api.netloc}")
            origins.append(f"(?i:{origin}){_SLASH}(?!{_loose(api_path)}(?:{_SLASH}|$))")
    hooks = "|".join(re.escape(h) for h in sorted(hosts))
    host_part = rf"(?i:https?{_COLON}{_SLASH}{_SLASH}(?:{hooks}))(?:{_COLON}\d+)?{_SLASH}"
    return [f"(?:{prefix}){_PATH}" for prefix in (host_part, *origins)]


def _compile() -> tuple[re.Pattern[str], re.Pattern[str]]:
    # Lookaheads, so that every match is found even where matches overlap (two secrets
    # sharing characters): the regions are merged by `scrub`. Longest literal first, so that a
    # secret containing another is matched whole where both start.
    literal = "|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True))
    secret = f"{literal}|{_SLACK_SHAPED}" if literal else _SLACK_SHAPED
    urls = "|".join(_url_patterns(_api_urls))
    return re.compile(f"(?=({secret}))"), re.compile(f"(?=({urls}))")


_patterns = _compile()


def _variants(secret: str) -> set[str]:
    """The secret as it may be written: as is, trimmed, URL-encoded, JSON-escaped."""
    found = {secret, secret.strip()}
    found |= {quote(s, safe="") for s in list(found)}
    found |= {json.dumps(s)[1:-1] for s in list(found)}
    return {s for s in found if s}


def _add(values: Iterable[str | _HasSecret | None], api_url: str | None = None) -> None:
    global _patterns
    with _lock:
        for value in values:
            if value is not None and not isinstance(value, str):
                value = value.get_secret_value()
            if value and len(value.strip()) >= MIN_SECRET_LENGTH:
                _secrets.update(_variants(value))
        if api_url:
            _api_urls.add(api_url)
        _patterns = _compile()


def scrub(text: str) -> str:
    """``text`` with every installed secret and Slack-token-shaped word turned into ``MARK``
    and every response URL into ``URL_MARK``; the markers already in it are kept as they are."""
    if not isinstance(text, str):
        text = str(text)
    secrets, urls = _patterns
    spans = [(m.start(1), m.end(1), MARK) for m in secrets.finditer(text)]
    spans += [(m.start(1), m.end(1), URL_MARK) for m in urls.finditer(text)]
    if not spans:
        return text
    spans += [(m.start(), m.end(), "") for m in _MARKS.finditer(text)]
    pieces: list[str] = []
    done = 0
    for start, end, replacement in _regions(spans):
        pieces += [text[done:start], replacement]
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def _regions(spans: list[tuple[int, int, str]]) -> Iterator[tuple[int, int, str]]:
    """Overlapping spans merged, each region with what replaces it. A region that is exactly
    one marker already in the text (a secret such as ``redacted`` inside it) is left alone; a
    match overlapping a marker takes the marker with it, so no marker is ever cut in two."""
    spans.sort(key=lambda span: (span[0], -span[1]))
    regions: list[tuple[int, int, list[tuple[int, int, str]]]] = []
    for span in spans:
        if regions and span[0] < regions[-1][1]:
            start, end, members = regions[-1]
            regions[-1] = (start, max(end, span[1]), [*members, span])
        else:
            regions.append((span[0], span[1], [span]))
    for start, end, members in regions:
        kinds = {kind for _, _, kind in members}
        if any(kind == "" and (s, e) == (start, end) for s, e, kind in members):
            continue  # a marker already written, or only matches inside one
        yield start, end, MARK if MARK in kinds else URL_MARK


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


def install(secrets: Iterable[str | _HasSecret | None], *, api_url: str | None = None) -> None:
    """Redact ``secrets`` (strings or ``SecretStr``; ``None`` and those under
    ``MIN_SECRET_LENGTH`` characters are skipped), Slack-token-shaped text and response URLs
    from every log record and uncaught-exception report from now on.

    ``api_url`` is the Web API base URL (SLACK_API_URL): response URLs are also looked for at
    ``hooks.<its domain>`` and on its origin outside its path (a stand-in's)."""
    global _state
    _add(secrets, api_url)
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
        _api_urls.clear()
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


def too_short(environ: Mapping[str, str] | None = None) -> list[str]:
    """The secret variables set (as written, matched case-insensitively) to a value under
    ``MIN_SECRET_LENGTH`` characters: such a value cannot be redacted and is no Slack secret.
    An empty or blank value counts as unset."""
    env = os.environ if environ is None else environ
    wanted = {name.lower() for name in SECRET_VARIABLES}
    return [
        name
        for name, value in env.items()
        if name.lower() in wanted and 0 < len(value.strip()) < MIN_SECRET_LENGTH
    ]


def api_url_from_environment(environ: Mapping[str, str] | None = None) -> str | None:
    """SLACK_API_URL, matched case-insensitively as the settings do; None when unset."""
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if name.upper() == "SLACK_API_URL" and value.strip():
            return value.strip()
    return None
