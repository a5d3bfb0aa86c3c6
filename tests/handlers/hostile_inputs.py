"""What the hostile-input suite (test_hostile_input.py) sends: hypothesis strategies for
slash-command text and forms, interactive payloads of every broken shape, forged values on our
own action ids and real offer keys used by the wrong people; and how a forged click is sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from bot.slack.ids import CLOSE_VIEW, REASON_BLOCK, REASON_INPUT, Action
from tests.conftest import APPROVER, GROUP, GROUP_MEMBER, OUTSIDER, REGIONS
from tests.handlers.hostile import Hostile

SUBCOMMANDS = ("updates", "status", "history", "digest", "subscribe", "unsubscribe")
# Actions whose listener always answers at the response_url (the others may open a modal).
ANSWERED_ACTIONS = (Action.APPROVE, Action.PAGE, Action.SNOOZE, Action.OPEN)

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


def subcommand(text: str) -> str:
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


def fill(value: Any, url: str) -> Any:
    """``value`` with FRESH_URL replaced by ``url`` (and UNKNOWN_URL by a sibling of it)."""
    if value == FRESH_URL:
        return url
    if value == UNKNOWN_URL:
        return url.rsplit("/", 1)[0] + "/0000"
    if isinstance(value, dict):
        return {k: fill(v, url) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, url) for v in value]
    return value


@dataclass(frozen=True)
class Form:
    """A slash command's request body: form-encoded (each field possibly twice) or JSON."""

    fields: dict[str, Any]
    encoding: str  # "form", "form-twice" or "json"
    content_type: str
    junk_last: bool = False  # with "form-twice": the junk copy of each field comes last

    def body(self, url: str) -> bytes:
        fields = fill(self.fields, url)
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
            and subcommand(f["text"]) in SUBCOMMANDS
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


def base_payload(kind: str, action_id: str, value: Any) -> dict[str, Any]:
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
    payload = base_payload(kind, draw(ACTION_IDS), value)
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


def click(hostile: Hostile, forged: Forged) -> tuple[Any, str]:
    """Send a forged click as Slack would; returns (result, response_url)."""
    value = forged.value
    if forged.key_from is not None:
        keys = hostile.keys[forged.key_from]
        key = keys[forged.key_index % len(keys)]
        value = key if value is None else KEY_MUTATIONS[value](key)
    url = hostile.response_url(user_id=forged.user)
    payload = base_payload("block_actions", f"{forged.action.value}{forged.suffix}", value)
    payload["response_url"] = url
    payload["user"] = {"id": forged.user, "username": "someone", "team_id": "T0WSIMG"}
    if value == MISSING:
        del payload["actions"][0]["value"]
    return hostile.post_payload(payload), url
