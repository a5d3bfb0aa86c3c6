"""Hostile and broken input, sent as Slack sends it (signed, over HTTP) to the real app.

Property-based: hypothesis generates slash-command text, slash-command forms, interactive
payloads of every broken shape, forged values on our own action ids, and real offer keys used by
the wrong people or on the wrong buttons. Whatever arrives, for every request:

* the HTTP status is below 500;
* no CreateUpdatedWorkspaceImage reaches the WorkSpaces simulator;
* no UpdateRequest row is written;
* nothing is logged at ERROR (the app logs every unexpected exception there, see
  handlers/errors.py; so do Bolt and waitress), checked once every listener the request
  started, the lazy ones included, has finished;
* where the request is ours and well-formed enough, the user gets an answer Slack accepts;
* the app still serves: /healthz answers 200 after every request, and after every run a normal
  `/wsimg updates` by an approver still answers with the listing.

Runs are derandomized (a fixed seed, no example database), so CI sees the same inputs every
time. Each property counts the requests it sent; one database parametrization alone sends more
than 500 generated requests. ``test_minimal_hostile_inputs`` holds the smallest input that shows
each defect found so far, next to neighbours that work, one subtest each.

Why a local fixture rather than ``world``: Bolt runs the lazy listeners in a thread pool after
the ack, and the invariants can only be checked once they have finished. ``world`` keeps no
handle on the app, so ``hostile`` builds the same world (same settings, simulator, fake Slack
and database parametrization) around an app whose listener pool it can wait on.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlmodel import func, select

from bot.config import Settings
from bot.fakes.slack import HttpResult, SlackWebAPI, find_buttons
from bot.fakes.workspaces import WorkSpacesSimulator
from bot.slack import limits
from bot.slack.ids import CLOSE_VIEW, REASON_BLOCK, REASON_INPUT, Action
from bot.slack.inbound import USER_ID
from storage.db import session_scope
from storage.models import Offer, UpdateRequest
from tests.conftest import (
    APPROVER,
    GROUP,
    GROUP_MEMBER,
    OUTSIDER,
    REGIONS,
    TrackingExecutor,
    World,
    running_world,
)

CREATE = "CreateUpdatedWorkspaceImage"
SUBCOMMANDS = ("updates", "status", "history", "digest", "subscribe", "unsubscribe")
# Actions whose listener always answers at the response_url (the others may open a modal).
ANSWERED_ACTIONS = (Action.APPROVE, Action.PAGE, Action.SNOOZE, Action.OPEN)
OTHER_CHANNEL = "C0OTHER"
SETTLE_SECONDS = 30.0

# Examples per property and database; their sum is what one parametrization sends.
TEXT_EXAMPLES_EACH = 25  # x 7 families of text
FORM_EXAMPLES = 100
PAYLOAD_EXAMPLES = 130
FORGED_EXAMPLES_EACH = 20  # x 7 action id prefixes
MISUSED_EXAMPLES = 80


def _run_settings(max_examples: int) -> hypothesis_settings:
    return hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# --------------------------------------------------------------------------------------------
# The world, with a handle on the listeners the app starts
# --------------------------------------------------------------------------------------------


class _LoggedError(AssertionError):
    """The app logged at ERROR. There is one subclass per logged exception type so that
    hypothesis tells the defects apart, and shrinks and reports each of them."""


_LOGGED_CLASSES: dict[str, type[_LoggedError]] = {}


def _logged_error_class(name: str) -> type[_LoggedError]:
    if name not in _LOGGED_CLASSES:
        _LOGGED_CLASSES[name] = type(f"LoggedError_{name}", (_LoggedError,), {})
    return _LOGGED_CLASSES[name]


@dataclass
class Hostile:
    """The fake world, the real keys of three listings, and the checks every request passes."""

    world: World
    executor: TrackingExecutor  # the app's listener pool
    caplog: pytest.LogCaptureFixture
    health_url: str
    keys: dict[str, list[str]] = field(default_factory=dict)
    sent: int = 0

    @property
    def slack(self) -> SlackWebAPI:
        return self.world.slack

    def response_url(self, *, user_id: str = APPROVER) -> str:
        return self.slack.new_response_url(channel="C0OPS", user_id=user_id)

    # -- sending (each clears the log capture: the checks look at what this request logged) --

    def post(self, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> Any:
        self.caplog.clear()
        self.sent += 1
        return self.world.user.post(body, content_type=content_type)

    def post_payload(self, payload: Any) -> Any:
        raw = payload if isinstance(payload, str) else json.dumps(payload)
        return self.post(urlencode({"payload": raw}).encode())

    def command(self, text: str, *, user_id: str = APPROVER, channel_id: str = "C0OPS") -> Any:
        self.caplog.clear()
        self.sent += 1
        return self.world.command(text, user_id=user_id, channel_id=channel_id)

    # -- the invariants -----------------------------------------------------------------------

    def check(
        self, result: HttpResult, *, answer_at: str | None = None, ack_answers: bool = False
    ) -> None:
        """Every invariant, once all the listeners this request started have finished.

        ``answer_at``: the response_url where the user must have been answered;
        ``ack_answers``: the answer must be in the ack itself (the help text).
        """
        raised, running = self.executor.settle(SETTLE_SECONDS)
        assert result.status < 500, f"HTTP {result.status}: {result.body[:300]!r}"
        assert running == 0, f"{running} listener(s) still running after {SETTLE_SECONDS}s"
        assert not raised, f"a listener raised: {raised!r}"
        self._nothing_logged_at_error()
        assert self.world.simulator.count(CREATE) == 0, "CreateUpdatedWorkspaceImage was called"
        assert _update_requests(self.world) == 0, "an UpdateRequest row was written"
        assert _healthz(self.health_url) == 200, "/healthz no longer answers 200"
        if ack_answers:
            ack = result.json if isinstance(result.json, dict) else {}
            assert result.status == 200 and (ack.get("text") or ack.get("blocks")), (
                f"no answer in the ack: HTTP {result.status} {result.body[:200]!r}"
            )
        if answer_at is not None:
            refused = [r for r in self.slack.rejected_responses if answer_at.endswith(r[0])]
            assert not refused, f"Slack refused the answer: {refused[0][2]}"
            assert result.status == 200, f"HTTP {result.status}, no answer: {result.body[:200]!r}"
            assert self.slack.responses_for(answer_at), "the user was never answered"

    def _nothing_logged_at_error(self) -> None:
        errors = [r for r in self.caplog.records if r.levelno >= logging.ERROR]
        if not errors:
            return
        first = errors[0].exc_info
        kind = first[0].__name__ if first and first[0] else "message"
        lines = []
        for record in errors:
            exc = record.exc_info[1] if record.exc_info else None
            detail = f" [{type(exc).__name__}: {str(exc)[:300]}]" if exc is not None else ""
            lines.append(f"{record.name}: {record.getMessage()[:200]}{detail}")
        raise _logged_error_class(kind)("the app logged at ERROR:\n  " + "\n  ".join(lines))

    def still_serves(self) -> None:
        """A normal `/wsimg updates` by an approver still answers with the listing."""
        self.caplog.clear()
        listing = self.world.listing()
        self.executor.settle(SETTLE_SECONDS)
        text = json.dumps(listing["blocks"])
        assert "Win-Hostile-A" in text and "Win-Hostile-B" in text, text[:500]
        actions = [b["action_id"] or "" for b in find_buttons(listing["blocks"])]
        assert any(a.startswith(Action.APPROVE.value) for a in actions), actions
        assert _healthz(self.health_url) == 200
        self._nothing_logged_at_error()
        assert self.world.simulator.count(CREATE) == 0
        assert _update_requests(self.world) == 0


def _update_requests(world: World) -> int:
    with session_scope(world.services.engine) as session:
        return int(session.exec(select(func.count()).select_from(UpdateRequest)).one())


def _healthz(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback URL)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def hostile(
    settings: Settings,
    simulator: WorkSpacesSimulator,
    slack: SlackWebAPI,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Hostile]:
    """``world`` built as tests/conftest.py builds it, around an app we can wait on; with
    images to list and the offer keys of real listings (several users, channels, regions).

    The per-user command limits (bot/slack/limits.py, tested in tests/test_load.py) are lifted: this
    suite sends hundreds of commands from a few users to see every one handled, not refused."""
    caplog.set_level(logging.ERROR)
    unlimited = limits.Rate(burst=10**6, per_minute=10**6)
    monkeypatch.setattr(limits, "LISTINGS", unlimited)
    monkeypatch.setattr(limits, "OTHER_COMMANDS", unlimited)
    with running_world(settings, simulator, slack) as world:
        yield _seeded(world, caplog)


def _seeded(world: World, caplog: pytest.LogCaptureFixture) -> Hostile:
    """The checks, with images to list and the offer keys of real listings."""
    simulator, executor = world.simulator, world.listeners
    hostile = Hostile(
        world=world,
        executor=executor,
        caplog=caplog,
        health_url=world.events_url.replace("/slack/events", "/healthz"),
    )
    simulator.add_image(region="us-east-1", name="Win-Hostile-A")
    simulator.add_image(region="eu-west-1", name="Win-Hostile-B")
    simulator.add_image(region="us-east-1", name="Lnx-Hostile", platform="LINUX")
    simulator.add_image(region="eu-west-1", name="Win-Hostile-Busy", state="PENDING")
    mine = world.listing()
    world.listing(user_id=OUTSIDER)
    world.answer(world.command("updates", user_id=OUTSIDER, channel_id=OTHER_CHANNEL))
    world.listing("updates us-east-1")
    executor.settle(SETTLE_SECONDS)
    with session_scope(world.services.engine) as session:
        offers = list(session.exec(select(Offer)))
    hostile.keys = {
        "approve": [
            b["value"]
            for b in find_buttons(mine["blocks"])
            if (b["action_id"] or "").startswith(Action.APPROVE.value)
        ],
        # Offers nobody may update: the Linux image, the image still PENDING.
        "not_updatable": [o.key for o in offers if o.not_updatable_reason],
        "updatable": [o.key for o in offers if not o.not_updatable_reason],
        "all": [o.key for o in offers],
    }
    assert hostile.keys["approve"] and hostile.keys["not_updatable"], hostile.keys
    simulator.clear_calls()
    return hostile


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------

# Anything unicode holds except surrogates (which no UTF-8 body can carry).
ANY_CHAR = st.characters(codec="utf-8")
CONTROL = st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs"])
# What breaks things downstream: NUL (PostgreSQL text), separators, bidi override, BOM,
# zero-width space, a terminal escape, the top of the code space.
SPECIALS = ("\x00", "\x01", "\x7f", "\r\n", "\x1b[2J", "\x85", "\u2028", "\u202e", "\ufeff")
SPECIALS += ("\u200b", "\ufffd", "\U0010ffff", "%00", "\\0")
SQL_LIKE = ("%", "_", "%%", "_%", "\\", "\\%", "\\_", "'", '"', "' OR '1'='1", "%' --", "*")
SQL_LIKE += ("'; DROP TABLE update_request; --", "[a-z]%", "$1", "?", ":key", "%(key)s")
NUMBERS = ("-5", "-0", "0", "+7", "5.5", "1e9", "NaN", "inf", "0x10", "1_000")
# 20 digits; Arabic-Indic three, superscript two, full-width 12: isdecimal() but not ASCII
NUMBERS += ("99999999999999999999", "\u0663", "\u00b2", "\uff11\uff12")
MARKUP = ("<!channel>", "<!here>", "<@UAPPROVER>", "<#C0OPS>", "*bold*", "`x`", "&amp;", "&lt;")
ZONES = ("UTC", "utc", "Europe/Berlin", "America/Argentina", "America/", "Nope/Nowhere")
ZONES += ("../etc/passwd", "/etc/passwd", "Europe/Berlin/..", "posix/Europe/Berlin")
ZONES += ("right/UTC", "Etc/GMT+14", "Europe\\Berlin", "Europe//Berlin", "a/" + "b" * 300)
MINUTES_60 = ",".join(str(n) for n in range(60))  # a valid minute field of 170 characters
HOURS_24 = ",".join(str(n) for n in range(24))
CRON_FIELDS = ("*", "*/0", "*/5", "0", "60", "-1", "1-0", "0-59/999999999999999999999", "L")
CRON_FIELDS += ("?", "last", "mon-fri", "sun-sat", "mon#6", "5L", "1,,2", "JAN")
CRON_FIELDS += (MINUTES_60, HOURS_24)
# Each field mostly valid for its place, so that many generated crons are valid ones.
CRON_BY_FIELD = (
    ("0", "*/5", "59", "0-59/7", MINUTES_60, MINUTES_60),
    ("*", "8", "0-23", HOURS_24),
    ("*", "1", "31", "last", "1-31/2"),
    ("*", "1", "12", "JAN", "1-12/3"),
    ("*", "mon-fri", "sat-sun", "mon#6", "0-6", "sun"),
)


def _repeat(piece: str, n: int) -> str:
    return (piece * (n // max(len(piece), 1) + 1))[:n]


# Up to 20k characters, by repetition (hypothesis does not draw text that long cheaply).
LONG_TEXT = st.builds(_repeat, st.text(ANY_CHAR, min_size=1, max_size=12), st.integers(1, 20_000))
# Digit strings up to 20k long; the lengths around int()'s 4300-digit limit are drawn often.
BIG_NUMBER = st.one_of(st.sampled_from((20, 4300, 4301, 20_000)), st.integers(1, 20_000)).map(
    lambda n: "9" * n
)
REGION_LIKE = st.one_of(
    st.sampled_from((*REGIONS, "US-EAST-1", "us-east-1 ", "ap-south-9", "us-gov-west-1")),
    st.from_regex(r"[a-z]{2}-[a-z]{3,9}-[0-9]{1,2}", fullmatch=True),
)
HOSTILE_TEXT = st.lists(
    st.one_of(st.text(ANY_CHAR, max_size=8), st.sampled_from(SPECIALS)), min_size=1, max_size=6
).map("".join)
# Words that look like form syntax, in case a body is parsed by sniffing rather than decoding.
FORM_SYNTAX = ("payload", "payload={}", "&payload=1", "command=/other", "text=", "=", "&", "+")
JUNK_WORD = st.one_of(
    HOSTILE_TEXT,
    st.text(CONTROL, min_size=1, max_size=6),
    st.sampled_from(SQL_LIKE + NUMBERS + MARKUP + ZONES + CRON_FIELDS + ("quiet",)),
    st.sampled_from(FORM_SYNTAX),
    st.sampled_from(SPECIALS),
    st.integers().map(str),
    BIG_NUMBER,
    REGION_LIKE,
    LONG_TEXT,
)
SEPARATOR = st.sampled_from((" ", "  ", "\t", "\n", " \u3000 ", "\xa0"))
SUBCOMMAND = st.one_of(
    st.sampled_from(SUBCOMMANDS),
    st.sampled_from(SUBCOMMANDS).map(str.upper),
    st.sampled_from(("help", "", "approve", "update", "statuses", "--help", "?")),
)
TIMES_OF_DAY = st.one_of(
    st.sampled_from(("08:30", "00:00", "23:59", "24:00", "23:60", "-1:30", "8:30:00", ":")),
    st.just("\u0660\u0668:\u0663\u0660"),  # 08:30 in Arabic-Indic digits
    st.builds("{}:{}".format, st.one_of(BIG_NUMBER, st.integers().map(str)), BIG_NUMBER),
)


def _subcommand(text: str) -> str:
    words = text.split()
    return words[0].lower() if words else "help"


@st.composite
def schedules(draw: st.DrawFn) -> list[str]:
    """`subscribe` arguments: a time of day or a 5-field cron (valid or not), a zone, quiet."""
    form = draw(st.sampled_from(("time", "cron", "cron", "junk")))
    if form == "time":
        words = [draw(TIMES_OF_DAY)]
    elif form == "cron":
        words = [
            draw(st.sampled_from(valid if draw(st.integers(0, 7)) else CRON_FIELDS))
            for valid in CRON_BY_FIELD
        ]
    else:
        words = draw(st.lists(JUNK_WORD, max_size=6))
    if draw(st.booleans()):
        words.append(draw(st.one_of(st.sampled_from(ZONES), JUNK_WORD.map(lambda w: f"{w}/x"))))
    if draw(st.booleans()):
        words.append(draw(st.sampled_from(("quiet", "QUIET", "quiet!"))))
    return words


ARGUMENT = st.one_of(
    st.sampled_from(NUMBERS + SQL_LIKE + SPECIALS + FORM_SYNTAX),
    BIG_NUMBER,
    HOSTILE_TEXT,
    JUNK_WORD,
)
# One family of command text per subcommand, and one for anything else.
TEXT_FAMILIES = (*SUBCOMMANDS, "anything")


@st.composite
def command_texts(draw: st.DrawFn, family: str) -> str:
    """``family`` with junk arguments (`history -5`, `history 99999999999999999999`,
    `status %`, `subscribe` and random words, `updates <random region>`...); for "anything":
    random unicode, control characters, very long text, unknown words."""
    if family == "anything":
        return draw(
            st.one_of(
                st.text(ANY_CHAR, max_size=200),
                HOSTILE_TEXT,
                LONG_TEXT,
                st.builds(" ".join, st.lists(JUNK_WORD, min_size=1, max_size=4)),
                st.builds(" ".join, st.lists(SUBCOMMAND, min_size=1, max_size=3)),
            )
        )
    verb = draw(st.sampled_from((family, family, family.upper(), family.title())))
    if family == "subscribe" and draw(st.integers(0, 3)):
        args = draw(schedules())
    elif family == "updates" and draw(st.booleans()):
        args = [draw(REGION_LIKE)]
    else:
        args = draw(st.lists(ARGUMENT, max_size=3))
    return draw(SEPARATOR).join([verb, *args])


JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(ANY_CHAR, max_size=20),
)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
JSON_NOT_STRING = JSON_VALUE.filter(lambda v: not isinstance(v, str))

# Where a fresh, valid response_url of the fake Slack goes when the request is sent; and a
# response_url of the fake Slack that it never handed out (it answers 404).
FRESH_URL = "<fresh response_url>"
UNKNOWN_URL = "<unknown response_url>"
# Unusable response_urls. None beyond 127.0.0.1, which the tests may not reach, and no closed
# port either: slack_sdk retries a refused connection after a second, every time.
BAD_RESPONSE_URLS = ("", "not a url", "ftp://127.0.0.1/x", "//x", UNKNOWN_URL)
COMMAND_FIELDS = ("token", "team_id", "team_domain", "channel_id", "channel_name", "user_id")
COMMAND_FIELDS += ("user_name", "command", "text", "api_app_id", "is_enterprise_install")
COMMAND_FIELDS += ("response_url", "trigger_id")


def _fill(value: Any, url: str) -> Any:
    """``value`` with FRESH_URL replaced by ``url`` (and UNKNOWN_URL by a sibling of it)."""
    if value == FRESH_URL:
        return url
    if value == UNKNOWN_URL:
        return url.rsplit("/", 1)[0] + "/0000"
    if isinstance(value, dict):
        return {k: _fill(v, url) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, url) for v in value]
    return value


@dataclass(frozen=True)
class Form:
    """A slash command's request body: form-encoded (each field possibly twice) or JSON."""

    fields: dict[str, Any]
    encoding: str  # "form", "form-twice" or "json"
    content_type: str
    junk_last: bool = False  # with "form-twice": the junk copy of each field comes last

    def body(self, url: str) -> bytes:
        fields = _fill(self.fields, url)
        if self.encoding == "json":
            return json.dumps(fields).encode()
        pairs = [(k, str(v)) for k, v in fields.items()]
        if self.encoding == "form-twice":
            junk = [(k, "junk") for k, _ in pairs]
            pairs = [*pairs, *junk] if self.junk_last else [*junk, *pairs]
        return urlencode(pairs).encode()

    @property
    def well_formed(self) -> bool:
        """What Slack could have sent for /wsimg, with a subcommand that is answered later."""
        f = self.fields
        return (
            self.encoding == "form"
            and self.content_type == "application/x-www-form-urlencoded"
            and f.get("command") == "/wsimg"
            and f.get("response_url") == FRESH_URL
            and f.get("user_id") in (APPROVER, OUTSIDER)
            and f.get("channel_id") == "C0OPS"
            and f.get("team_id") == "T0WSIMG"  # this installation's (bot/slack/installation.py)
            and f.get("api_app_id") == "A0WSIMG"
            and isinstance(f.get("text"), str)
            and _subcommand(f["text"]) in SUBCOMMANDS
        )


@st.composite
def command_forms(draw: st.DrawFn) -> Form:
    """A slash command with fields missing, of junk or of the wrong type, extra fields, the
    command misspelt, response_urls nobody can answer at, odd content types."""
    encoding = draw(st.sampled_from(("form", "form", "form-twice", "json")))
    fields: dict[str, Any] = {
        "token": "fake-verification-token",
        "team_id": "T0WSIMG",
        "team_domain": "wsimg-demo",
        "channel_id": "C0OPS",
        "channel_name": "c0ops",
        "user_id": draw(st.sampled_from((APPROVER, OUTSIDER))),
        "user_name": "someone",
        "command": "/wsimg",
        "text": draw(st.sampled_from(("updates", "history", "status", "help", "history 3"))),
        "api_app_id": "A0WSIMG",
        "is_enterprise_install": "false",
        "response_url": FRESH_URL,
        "trigger_id": "1.2.abc",
    }
    junk = (
        JSON_VALUE
        if encoding == "json"
        else st.one_of(HOSTILE_TEXT, LONG_TEXT, st.sampled_from(SQL_LIKE))
    )
    changes = draw(
        st.dictionaries(st.sampled_from(COMMAND_FIELDS), st.one_of(st.none(), junk), max_size=5)
    )
    for name, value in changes.items():
        if value is None:
            fields.pop(name, None)  # left out
        else:
            fields[name] = value
    if draw(st.booleans()):
        commands = ("/wsimg", "/WSIMG", "/wsimg ", " /wsimg", "/other", "", "wsimg")
        fields["command"] = draw(st.sampled_from(commands))
    if draw(st.integers(0, 4)) == 0:
        fields["response_url"] = draw(st.sampled_from(BAD_RESPONSE_URLS))
    extra = draw(
        st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=2)
    )
    for name, value in extra.items():
        fields.setdefault(name, value)
    form_type = "application/x-www-form-urlencoded"
    content_type = draw(
        st.sampled_from(
            (form_type, form_type, "application/json", "text/plain", "", f"{form_type}; x=y")
        )
    )
    if encoding == "json" and draw(st.booleans()):
        content_type = "application/json"
    return Form(fields, encoding, content_type, draw(st.booleans()))


INTERACTION_TYPES = ("block_actions", "view_submission", "view_closed", "shortcut")
INTERACTION_TYPES += ("message_action", "block_suggestion", "interactive_message")
INTERACTION_TYPES += ("dialog_submission", "dialog_cancellation", "dialog_suggestion")
INTERACTION_TYPES += ("workflow_step_edit", "event_callback", "url_verification")
INTERACTION_TYPES += ("app_rate_limited", "BLOCK_ACTIONS", "")
PREFIXES = tuple(action.value for action in Action)
ACTION_IDS = st.one_of(
    st.sampled_from(PREFIXES),
    st.builds("{}:{}".format, st.sampled_from(PREFIXES), st.text(ANY_CHAR, max_size=8)),
    st.sampled_from(("wsimg.", "wsimg", "wsimg.approveX", "WSIMG.APPROVE:0", ":0", "")),
    st.text(ANY_CHAR, max_size=20),
)
PAYLOAD_KEYS = ("type", "user", "actions", "team", "response_url", "channel", "container")
PAYLOAD_KEYS += ("trigger_id", "view", "callback_id", "enterprise", "is_enterprise_install")
PAYLOAD_KEYS += ("message", "state")


def _base_payload(kind: str, action_id: str, value: Any) -> dict[str, Any]:
    """An interaction payload as Slack sends it, for ``kind``."""
    payload: dict[str, Any] = {
        "type": kind,
        "user": {"id": APPROVER, "username": "approver", "team_id": "T0WSIMG"},
        "api_app_id": "A0WSIMG",
        "token": "fake-verification-token",
        "container": {"type": "message", "message_ts": "1.2", "channel_id": "C0OPS"},
        "trigger_id": "1.2.abc",
        "team": {"id": "T0WSIMG", "domain": "wsimg-demo"},
        "channel": {"id": "C0OPS", "name": "c0ops"},
        "response_url": FRESH_URL,
        "actions": [{"action_id": action_id, "block_id": "b", "value": value, "type": "button"}],
    }
    if kind in ("view_submission", "view_closed"):  # our reason modal, with forged metadata
        payload["view"] = {
            "id": "V1",
            "callback_id": CLOSE_VIEW,
            "private_metadata": json.dumps({"request": value, "cancel": False}),
            "state": {"values": {REASON_BLOCK: {REASON_INPUT: {"value": "because"}}}},
        }
    if kind in ("shortcut", "message_action", "dialog_submission", "dialog_cancellation"):
        payload["callback_id"] = action_id
    if kind in ("block_suggestion", "dialog_suggestion"):
        payload["action_id"], payload["value"] = action_id, value
    return payload


@st.composite
def broken_payloads(draw: st.DrawFn) -> Any:
    """The ``payload=`` of an interaction: not JSON, not an object, or an object with fields
    missing or of the wrong type, or of a type no listener is registered for."""
    shape = draw(st.sampled_from(("not-json", "not-object", "object", "object", "object")))
    if shape == "not-json":
        deep = ("[" * 5000, '{"a":' * 3000)
        return draw(
            st.one_of(
                st.text(ANY_CHAR, max_size=60),
                st.sampled_from(("{", '{"type":', "null,", "\x00", *deep)),
            )
        )
    if shape == "not-object":
        return json.dumps(draw(JSON_VALUE.filter(lambda v: not isinstance(v, dict))))
    kind = draw(st.one_of(st.sampled_from(INTERACTION_TYPES), st.text(max_size=12)))
    value = draw(st.one_of(st.text(max_size=30), JSON_VALUE))
    payload = _base_payload(kind, draw(ACTION_IDS), value)
    for name in draw(st.sets(st.sampled_from(PAYLOAD_KEYS), max_size=4)):
        payload.pop(name, None)
    payload.update(draw(st.dictionaries(st.sampled_from(PAYLOAD_KEYS), JSON_VALUE, max_size=3)))
    actions = payload.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        action = actions[0]
        for name in draw(st.sets(st.sampled_from(("action_id", "value", "type", "block_id")))):
            if draw(st.booleans()):
                del action[name]
            else:
                action[name] = draw(JSON_NOT_STRING)
        if draw(st.integers(0, 5)) == 0:
            actions.append(draw(JSON_VALUE))
    return payload


@dataclass(frozen=True)
class Forged:
    """A click on one of our buttons. ``value`` is the value sent (MISSING: no value field);
    with ``key_from``, a real key of that kind, as is (``value`` None) or mangled (``value``
    one of KEY_MUTATIONS)."""

    action: Action
    suffix: str
    value: Any
    user: str
    key_from: str | None = None
    key_index: int = 0


MISSING = "<no value field>"
NON_APPROVERS = (OUTSIDER, "UNOBODY", "", GROUP, "uapprover", "UAPPROVER ", " UAPPROVER")
NON_APPROVERS += ("UAPPROVER\n", "<@UAPPROVER>", "UAPPROVER,UOUTSIDER", "W0EXTERNAL")
NON_APPROVERS += ("UOUT\x00SIDER", "U" + "X" * 100)
SUFFIXES = st.one_of(
    st.sampled_from(("", ":0", ":1", ":2", ":-1", ":abc", ":99999999999999999999", ":\u0663")),
    BIG_NUMBER.map(lambda n: f":{n}"),
    st.text(ANY_CHAR, max_size=10).map(lambda t: f":{t}"),
)
KEY_MUTATIONS: dict[str, Callable[[str], str]] = {
    "like-tail": lambda key: key[:-3] + "%",
    "like-one": lambda key: key[:-1] + "_",
    "like-all": lambda key: "%",
    "escaped-like": lambda key: key.replace("_", "\\_").replace("-", "%"),
    "upper": str.upper,
    "lower": str.lower,
    "space-after": lambda key: key + " ",
    "space-before": lambda key: " " + key,
    "zero-width": lambda key: key + "\u200b",
    "doubled": lambda key: key + key,
    "cut": lambda key: key[:-1],
    "quoted": lambda key: f"'{key}'",
    "sql-or": lambda key: f"{key}' OR '1'='1",
    "json": lambda key: json.dumps({"key": key}),
}


@st.composite
def forged_clicks(draw: st.DrawFn, action: Action) -> Forged:
    """``action`` with values nobody was given: random, oversized, SQL/LIKE metacharacters, a
    real key mangled, not a string, none; clicked by approvers and others."""
    user = draw(st.sampled_from((APPROVER, APPROVER, GROUP_MEMBER, *NON_APPROVERS)))
    source = draw(st.sampled_from(("random", "long", "sql", "key", "non-string", "missing")))
    value: Any = {
        "random": st.one_of(st.text(ANY_CHAR, max_size=80), HOSTILE_TEXT),
        "long": LONG_TEXT,
        "sql": st.sampled_from(SQL_LIKE),
        "key": st.sampled_from(sorted(KEY_MUTATIONS)),
        "non-string": JSON_NOT_STRING,
        "missing": st.just(MISSING),
    }[source]
    return Forged(
        action=action,
        suffix=draw(SUFFIXES),
        value=draw(value),
        user=user,
        key_from="approve" if source == "key" else None,
        key_index=draw(st.integers(0, 50)),
    )


@st.composite
def misused_keys(draw: st.DrawFn) -> Forged:
    """Real keys from real listings, clicked by someone who may not, or on another button."""
    key_from = draw(st.sampled_from(("approve", "all", "updatable", "not_updatable")))
    action = draw(st.sampled_from(list(Action)))
    if action is Action.APPROVE and key_from != "not_updatable":
        users = NON_APPROVERS  # an approver's click on a real, updatable key is a real approval
    else:
        users = (APPROVER, GROUP_MEMBER, *NON_APPROVERS)
    return Forged(
        action=action,
        suffix=draw(SUFFIXES),
        value=None,
        user=draw(st.sampled_from(users)),
        key_from=key_from,
        key_index=draw(st.integers(0, 50)),
    )


def _click(hostile: Hostile, forged: Forged) -> tuple[Any, str]:
    """Send a forged click as Slack would; returns (result, response_url)."""
    value = forged.value
    if forged.key_from is not None:
        keys = hostile.keys[forged.key_from]
        key = keys[forged.key_index % len(keys)]
        value = key if value is None else KEY_MUTATIONS[value](key)
    url = hostile.response_url(user_id=forged.user)
    payload = _base_payload("block_actions", f"{forged.action.value}{forged.suffix}", value)
    payload["response_url"] = url
    payload["user"] = {"id": forged.user, "username": "someone", "team_id": "T0WSIMG"}
    if value == MISSING:
        del payload["actions"][0]["value"]
    return hostile.post_payload(payload), url


# --------------------------------------------------------------------------------------------
# The properties
# --------------------------------------------------------------------------------------------


def _sent_at_least(hostile: Hostile, examples: int) -> None:
    # Hypothesis may stop a little short of max_examples (duplicates); most must have run.
    assert hostile.sent >= examples * 9 // 10, f"only {hostile.sent} requests were sent"


def test_slash_command_text_of_any_kind(hostile: Hostile, subtests: pytest.Subtests) -> None:
    """A subtest per family of text, so that each subcommand gets its share of examples and a
    defect in one family does not stop the others from running."""
    for family in TEXT_FAMILIES:
        with subtests.test(msg=family):

            @_run_settings(TEXT_EXAMPLES_EACH)
            @given(
                text=command_texts(family),
                user=st.sampled_from((APPROVER, GROUP_MEMBER, OUTSIDER)),
                channel=st.sampled_from(("C0OPS", OTHER_CHANNEL, "D0DIRECT")),
            )
            def run(text: str, user: str, channel: str) -> None:
                result = hostile.command(text, user_id=user, channel_id=channel)
                later = _subcommand(text) in SUBCOMMANDS  # else the help text, in the ack
                answer_at = result.response_url if later else None
                hostile.check(result, answer_at=answer_at, ack_answers=not later)

            run()
    _sent_at_least(hostile, TEXT_EXAMPLES_EACH * len(TEXT_FAMILIES))
    hostile.still_serves()


def test_slash_command_forms_with_fields_missing_or_of_the_wrong_type(hostile: Hostile) -> None:
    @_run_settings(FORM_EXAMPLES)
    @given(form=command_forms())
    def run(form: Form) -> None:
        url = hostile.response_url()
        result = hostile.post(form.body(url), content_type=form.content_type)
        hostile.check(result, answer_at=url if form.well_formed else None)

    run()
    _sent_at_least(hostile, FORM_EXAMPLES)
    hostile.still_serves()


def test_interactive_payloads_of_every_broken_shape(hostile: Hostile) -> None:
    @_run_settings(PAYLOAD_EXAMPLES)
    @given(payload=broken_payloads())
    def run(payload: Any) -> None:
        result = hostile.post_payload(_fill(payload, hostile.response_url()))
        hostile.check(result)

    run()
    _sent_at_least(hostile, PAYLOAD_EXAMPLES)
    hostile.still_serves()


def _answered(forged: Forged) -> bool:
    """Whether the clicker must get an answer: one of our buttons, within what Slack sends (an
    action_id over 255 characters, a value over 2000 or a user that is no Slack user ID never
    comes from Slack: a 400 will do)."""
    fits = (
        len(forged.action.value + forged.suffix) <= 255
        and (forged.value is None or (isinstance(forged.value, str) and len(forged.value) <= 2000))
        and isinstance(forged.user, str)
        and USER_ID.fullmatch(forged.user) is not None
    )
    return forged.action in ANSWERED_ACTIONS and fits


def test_our_action_ids_with_forged_values(hostile: Hostile, subtests: pytest.Subtests) -> None:
    """A subtest per action id prefix (bot/slack/ids.py), each with its share of examples."""
    for action in Action:
        with subtests.test(msg=action.value):

            @_run_settings(FORGED_EXAMPLES_EACH)
            @given(forged=forged_clicks(action))
            def run(forged: Forged) -> None:
                result, url = _click(hostile, forged)
                hostile.check(result, answer_at=url if _answered(forged) else None)

            run()
    _sent_at_least(hostile, FORGED_EXAMPLES_EACH * len(Action))
    hostile.still_serves()


def test_real_keys_clicked_by_the_wrong_people_or_on_the_wrong_button(hostile: Hostile) -> None:
    @_run_settings(MISUSED_EXAMPLES)
    @given(forged=misused_keys())
    def run(forged: Forged) -> None:
        result, url = _click(hostile, forged)
        hostile.check(result, answer_at=url if _answered(forged) else None)

    run()
    _sent_at_least(hostile, MISUSED_EXAMPLES)
    hostile.still_serves()


# --------------------------------------------------------------------------------------------
# The smallest input that shows each defect found, next to neighbours that work
# --------------------------------------------------------------------------------------------

Case = Callable[[Hostile], tuple[Any, str | None]]
DIGITS_OVER_LIMIT = "9" * 4301  # int() refuses more than 4300 digits (Python >= 3.11)
LONG_CRON = f"{MINUTES_60} * * * *"  # a valid cron of 178 characters


def _text(text: str, **kwargs: str) -> Case:
    def send(hostile: Hostile) -> tuple[Any, str | None]:
        result = hostile.command(text, **kwargs)
        return result, result.response_url if _subcommand(text) in SUBCOMMANDS else None

    return send


def _forged(
    action: Action, value: Any = None, *, suffix: str = ":0", user: str = APPROVER, key: str = ""
) -> Case:
    def send(hostile: Hostile) -> tuple[Any, str | None]:
        result, url = _click(hostile, Forged(action, suffix, value, user, key or None))
        return result, url if action in ANSWERED_ACTIONS else None

    return send


def _payload(payload: Any) -> Case:
    return lambda hostile: (hostile.post_payload(_fill(payload, hostile.response_url())), None)


def _json(body: dict[str, Any]) -> Case:
    def send(hostile: Hostile) -> tuple[Any, None]:
        data = json.dumps(_fill(body, hostile.response_url())).encode()
        return hostile.post(data, content_type="application/json"), None

    return send


def _form(**fields: str | None) -> Case:
    def send(hostile: Hostile) -> tuple[Any, None]:
        body = {"command": "/wsimg", "text": "history", "user_id": APPROVER, "team_id": "T0WSIMG"}
        body.update({"channel_id": "C0OPS", "api_app_id": "A0WSIMG", "response_url": FRESH_URL})
        body.update(fields)
        form = {k: v for k, v in _fill(body, hostile.response_url()).items() if v is not None}
        return hostile.post(urlencode(form).encode()), None

    return send


CLICK = {"type": "block_actions", "user": {"id": APPROVER}, "response_url": FRESH_URL}
APPROVE_CLICK = {"action_id": "wsimg.approve:0", "value": "k"}
VIEW = {
    "type": "view_submission",
    "user": {"id": APPROVER, "team_id": "T0WSIMG"},
    "team": {"id": "T0WSIMG"},
    "api_app_id": "A0WSIMG",
    "view": {"id": "V1", "type": "modal", "callback_id": "other", "state": {"values": {}}},
}
URL_ENTRY = {"block_id": "b", "action_id": "a", "channel_id": "C0OPS", "response_url": FRESH_URL}


def _view_with_metadata(metadata: str) -> dict[str, Any]:
    """The reason modal submitted with ``metadata``, a Slack response URL in response_urls."""
    view = {**VIEW["view"], "callback_id": CLOSE_VIEW, "private_metadata": metadata}
    return {**VIEW, "view": view, "response_urls": [URL_ENTRY]}


def _approve_real_key(**changes: Any) -> Case:
    """A click on a real Approve key with ``changes`` to the payload Slack sends."""

    def send(hostile: Hostile) -> tuple[Any, None]:
        key = hostile.keys["approve"][0]
        payload = {**_base_payload("block_actions", f"{Action.APPROVE.value}:0", key), **changes}
        return hostile.post_payload(_fill(payload, hostile.response_url())), None

    return send


def _not_this_installation(case: Case) -> Case:
    """Signed by Slack, but for another workspace, org or app: 403 before any listener runs."""

    def run(hostile: Hostile) -> tuple[HttpResult, str | None]:
        result, _ = case(hostile)
        assert result.status == 403, result.body[:200]
        return result, None

    return run


def _not_from_slack(case: Case) -> Case:
    """Input real Slack never sends (NUL, an id that is no Slack ID, an action_id over 255):
    refused with 400 before any listener runs, so nobody is answered and nothing changes."""

    def run(hostile: Hostile) -> tuple[HttpResult, str | None]:
        result, _ = case(hostile)
        assert result.status == 400, result.body[:200]
        return result, None

    return run


MINIMAL_CASES: dict[str, Case] = {
    # neighbours that work
    "history-20-digits": _text("history 99999999999999999999"),
    "history-negative": _text("history -5"),
    "status-percent": _text("status %"),
    "status-underscore": _text("status _"),
    "updates-unknown-region": _text("updates xx-nowhere-9"),
    "subscribe-short-cron": _text("subscribe 0,15,30,45 8 * * mon-fri Europe/Berlin quiet"),
    "approve-key-with-like-wildcard": _forged(Action.APPROVE, "like-tail", key="approve"),
    "approve-key-upper-case": _forged(Action.APPROVE, "upper", key="approve"),
    "approve-real-key-by-outsider": _forged(Action.APPROVE, key="approve", user=OUTSIDER),
    "approve-not-updatable-by-approver": _forged(Action.APPROVE, key="not_updatable"),
    "page-20-digits": _forged(Action.PAGE, suffix=":99999999999999999999", key="all"),
    "command-response-url-unknown-to-slack": _form(response_url=UNKNOWN_URL),
    # D1: int() of more than 4300 digits raises ValueError
    "history-4301-digits": _text(f"history {DIGITS_OVER_LIMIT}"),
    "page-4301-digits": _not_from_slack(
        _forged(Action.PAGE, suffix=f":{DIGITS_OVER_LIMIT}", key="all")
    ),
    "subscribe-4301-digit-hour": _text(f"subscribe {DIGITS_OVER_LIMIT}:00"),
    # D2 (PostgreSQL): NUL in a value that reaches a query
    "status-nul": _not_from_slack(_text("status a\x00b")),
    "approve-value-nul": _not_from_slack(_forged(Action.APPROVE, "k\x00")),
    "confirm-value-nul": _not_from_slack(_forged(Action.CONFIRM, "\x00")),
    "approve-real-key-by-nul-user": _not_from_slack(
        _forged(Action.APPROVE, key="approve", user="U\x00X")
    ),
    # D3 (PostgreSQL): a value longer than its varchar column
    "subscribe-cron-over-128": _text(f"subscribe {LONG_CRON}"),
    "approve-real-key-by-100-char-user": _not_from_slack(
        _forged(Action.APPROVE, key="approve", user="U" * 100)
    ),
    "updates-by-41-char-user": _not_from_slack(_text("updates", user_id="U" * 41)),
    "subscribe-in-41-char-channel": _not_from_slack(_text("subscribe", channel_id="C" * 41)),
    # D4: signed payloads of the wrong shape crash Bolt's matchers or our listeners
    "action-without-action-id": _payload({**CLICK, "actions": [{"value": "k"}]}),
    "action-id-not-a-string": _payload({**CLICK, "actions": [{"action_id": 5}]}),
    "dialog-submission-on-our-callback-id": _payload(
        {**CLICK, "type": "dialog_submission", "callback_id": "wsimg.approve", "actions": True}
    ),
    "view-not-an-object": _payload({**CLICK, "type": "view_submission", "view": "x"}),
    "json-event-not-an-object": _json({"type": "event_callback", "event": "x", "team_id": "T"}),
    "json-command-text-a-number": _json(
        {"command": "/wsimg", "text": 5, "user_id": APPROVER, "response_url": FRESH_URL}
    ),
    # D5: a command or click without a usable response_url
    "command-without-response-url": _form(response_url=None),
    "command-response-url-not-a-url": _form(response_url="not a url"),
    "click-without-response-url": _payload(
        {"type": "block_actions", "user": {"id": APPROVER}, "actions": [APPROVE_CLICK]}
    ),
    # D6: Bolt takes any form body that contains "payload" for an interaction
    "status-payload": _text("status payload"),
    # D7: a view_submission's response URLs went unchecked, and deeply nested private_metadata
    # recursed until a 500 whose error answer went to the payload's URL
    "view-response-urls-not-slacks": _not_from_slack(
        _payload({**VIEW, "response_urls": [{**URL_ENTRY, "response_url": "http://127.0.0.1:9/"}]})
    ),
    "view-response-url-not-slacks": _not_from_slack(
        _payload({**VIEW, "response_url": "http://127.0.0.1:9/"})
    ),
    "view-metadata-2999-brackets": _not_from_slack(_payload(_view_with_metadata("[" * 2999))),
    "view-metadata-a-list": _not_from_slack(_payload(_view_with_metadata("[]"))),
    # D8: a signed request from another workspace was served (refused with 403, see
    # tests/bot/slack/test_workspace.py)
    "command-from-another-workspace": _not_this_installation(_form(team_id="T0OTHER")),
    "click-from-another-enterprise": _not_this_installation(
        _approve_real_key(enterprise={"id": "E0OTHER"})
    ),
    "click-from-another-app": _not_this_installation(_approve_real_key(api_app_id="A0OTHER")),
}


def test_minimal_hostile_inputs(hostile: Hostile, subtests: pytest.Subtests) -> None:
    """One subtest per case, in one world (a world per case costs more than the case)."""
    for name, case in MINIMAL_CASES.items():
        with subtests.test(msg=name):
            result, answer_at = case(hostile)
            hostile.check(result, answer_at=answer_at)
    hostile.still_serves()
