"""bot.redact: secrets and Slack-token-shaped text never reach a log handler or stderr."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from bot import redact

BOT = "xoxb-1234-5678-unit-test-bot-token"
SIGNING = "8f14e45fceea167a5a36dedd4bea2543"
APP = "xapp-1-A0UNIT-1-unit-test-app-token"


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    assert not redact.installed()
    yield
    redact.uninstall()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A handler on the root logger, added before install, at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_scrub_replaces_configured_values_their_encodings_and_token_shapes() -> None:
    redact.install([SIGNING, "with space/slash"])
    assert redact.scrub(f"a {SIGNING} b") == f"a {redact.MARK} b"
    assert redact.scrub(quote("with space/slash", safe="")) == redact.MARK
    assert redact.scrub("x=xoxp-99-abc-DEF y=xapp-1-A-2-b z=xoxe.xoxp-1-q") == (
        f"x={redact.MARK} y={redact.MARK} z=xoxe.{redact.MARK}"
    )
    # Not tokens: no body after the dash, or part of a longer word.
    assert redact.scrub("tokens start with xoxb-… and fooxoxb-1") == (
        "tokens start with xoxb-… and fooxoxb-1"
    )


def test_install_takes_strings_and_secretstr_skips_empty_and_accumulates() -> None:
    redact.install([SecretStr(SIGNING), None, "", "   "])
    redact.install(["second-secret-value"])
    assert redact.scrub(f"{SIGNING} second-secret-value ok") == (f"{redact.MARK} {redact.MARK} ok")


def test_a_secret_containing_another_is_redacted_whole() -> None:
    redact.install(["abcdefgh", "abcdefghijklmnop"])
    assert redact.scrub("abcdefghijklmnop") == redact.MARK


def test_secrets_sharing_characters_are_both_redacted_where_they_overlap() -> None:
    redact.install(["abcdefgh12", "12345678xyz"])
    assert redact.scrub("<abcdefgh12345678xyz>") == f"<{redact.MARK}>"


def test_secrets_under_eight_characters_are_not_redacted() -> None:
    """Redacting a one-letter secret turns every line into a puzzle that spells it out."""
    redact.install(["e", "abc/def", "  abcdefg  ", SIGNING])
    text = "the edge of abc/def and abcdefg and abc%2Fdef"
    assert redact.scrub(text) == text
    assert redact.scrub(f"{text} {SIGNING}") == f"{text} {redact.MARK}"
    assert redact.MIN_SECRET_LENGTH == 8
    redact.install(["12345678"])
    assert redact.scrub("x12345678x") == f"x{redact.MARK}x"


@pytest.mark.parametrize(
    "secret",
    ["redacted", "redacted1", "[redacted]", "[redacted", "o [redac", "ted] and", "response"],
)
def test_the_marker_is_never_redacted_again(secret: str, captured: io.StringIO) -> None:
    """A secret that is part of a marker, or overlaps one, never cuts a marker written before:
    records pass two layers (factory, then the handler filter), and logs are scrubbed again."""
    redact.install([secret, SIGNING], api_url="http://127.0.0.1:1/api/")
    once = redact.scrub(f"to [redacted] and {SIGNING} then http://127.0.0.1:1/response/ab12 go")
    assert redact.scrub(once) == once
    assert "[[" not in once and "]]" not in once and "]ed" not in once
    assert once.count(redact.MARK) + once.count(redact.URL_MARK) >= 3
    assert redact.scrub(redact.MARK) == redact.MARK
    assert redact.scrub(redact.URL_MARK) == redact.URL_MARK
    assert redact.scrub(f"{redact.MARK}{redact.URL_MARK}") == f"{redact.MARK}{redact.URL_MARK}"

    logging.getLogger("wsimg.test.marker").warning("again: %s %s", redact.MARK, SIGNING)
    line = captured.getvalue()
    assert line.count(redact.MARK) == 2 and "[[" not in line and SIGNING not in line


SLACK_HOOKS = [
    "https://hooks.slack.com/actions/T0A1B2C3D/1234567890123/AbCdEf0123456789xyzXYZ01",
    "https://hooks.slack.com/commands/T0A1B2C3D/1234567890123/AbCdEf0123456789xyzXYZ01",
    "https://hooks.slack-gov.com/actions/T0A1B2C3D/1234567890123/AbCdEf0123456789xyzXYZ01",
    "https://HOOKS.Slack.com:443/commands/T0A1B2C3D/1234567890123/AbCdEf0123456789xyzXYZ01",
]


def _written(url: str) -> list[str]:
    """A URL as log lines carry it: plain, in JSON, form-encoded, JSON inside a form, repr."""
    json_escaped = url.replace("/", "\\/")  # Slack's own JSON escapes slashes
    return [
        f"url: {url}, body: {{}}",
        json.dumps({"response_url": url}),
        f'{{"response_url":"{json_escaped}"}}',
        f"text=updates&response_url={quote(url, safe='')}&trigger_id=1.2",
        "payload=" + quote(json.dumps({"response_url": json_escaped}), safe=""),
        repr({"body": f'{{"response_url":"{json_escaped}"}}'}),
    ]


@pytest.mark.parametrize("url", SLACK_HOOKS)
def test_slack_response_urls_are_redacted_however_they_are_written(url: str) -> None:
    redact.install([])
    for text in _written(url):
        clean = redact.scrub(text)
        assert redact.URL_MARK in clean, text
        assert "AbCdEf0123456789" not in clean and "1234567890123" not in clean, clean


def test_response_urls_on_the_api_domain_and_a_stand_ins_origin_are_redacted() -> None:
    """Where ``bot.inbound`` accepts a response URL: hooks.<the API's domain>, and the API's
    own origin outside the API path (the Slack stand-in's /response/<id>)."""
    redact.install([], api_url="https://slack.example.org/api/")
    redact.install([], api_url="http://127.0.0.1:43210/api/")
    for url in (
        "https://hooks.slack.example.org/actions/T1/2/abc123",
        "http://127.0.0.1:43210/response/0123456789abcdef0123",
    ):
        for text in _written(url):
            clean = redact.scrub(text)
            assert redact.URL_MARK in clean and "abc123" not in clean, clean
            assert "0123456789abcdef" not in clean, clean
    kept = (
        "http://127.0.0.1:43210/api/chat.postMessage",  # a Web API call: useful, not a capability
        "https://slack.example.org/api/auth.test",
        "http://127.0.0.1:43211/response/abc",  # another origin
        "https://hooks.slack.com.example.net/actions/T1/2/abc",  # not Slack's host
        "https://api.slack.com/apis/connections/socket",
        "see hooks.slack.com for webhooks",
    )
    for text in kept:
        assert redact.scrub(text) == text


@pytest.fixture
def library_loggers_at_debug() -> Iterator[None]:
    """Bolt sets its loggers' levels when an App is built (an earlier test may have built
    one): these records must be made whatever ran before; restored afterwards."""
    loggers = [logging.getLogger(n) for n in ("slack_sdk.webhook.client", "slack_bolt.App")]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    for logger in loggers:
        logger.disabled = False
        logger.setLevel(logging.DEBUG)  # setLevel also clears logging's isEnabledFor cache
    yield
    for logger, level, disabled in saved:
        logger.setLevel(level)
        logger.disabled = disabled


@pytest.mark.usefixtures("library_loggers_at_debug")
def test_debug_records_of_slack_sdk_and_bolt_carry_no_response_url(captured: io.StringIO) -> None:
    url = SLACK_HOOKS[0]
    redact.install([BOT])
    logging.getLogger("slack_sdk.webhook.client").debug(
        "Sending a request - url: %s, body: %s, headers: %s", url, {"text": "hi"}, {}
    )
    logging.getLogger("slack_bolt.App").debug("body: %s", f"response_url={quote(url, safe='')}")
    text = captured.getvalue()
    assert "AbCdEf0123456789" not in text
    assert text.count(redact.URL_MARK) == 2


def test_records_from_any_library_logger_are_redacted(captured: io.StringIO) -> None:
    redact.install([SIGNING, BOT, APP])
    logging.getLogger("slack_sdk.web.base_client").debug("headers %s", {"x": BOT})
    logging.getLogger("slack_bolt.unit.child").info(f"inline {SIGNING}")
    logging.getLogger("deep.child.logger").warning("%(secret)s", {"secret": APP})
    text = captured.getvalue()
    assert BOT not in text and SIGNING not in text and APP not in text
    assert text.count(redact.MARK) == 3


def test_a_handler_added_after_install_sees_redacted_records() -> None:
    redact.install([SIGNING])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("wsimg.test.late")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("late %s", SIGNING)
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == f"late {redact.MARK}\n"


def test_exception_text_is_redacted_and_exc_info_dropped_only_then(
    captured: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    redact.install([BOT])
    log = logging.getLogger("wsimg.test.exc")
    try:
        raise RuntimeError(f"failed with {BOT}")
    except RuntimeError:
        log.exception("first")
    try:
        raise RuntimeError("nothing secret")
    except RuntimeError:
        log.exception("second")
    first, second = caplog.records
    assert first.exc_info is None and first.exc_text is not None
    assert f"RuntimeError: failed with {redact.MARK}" in first.exc_text
    assert second.exc_info is not None  # untouched: formatters may render it as they like
    assert BOT not in captured.getvalue()
    assert "RuntimeError: nothing secret" in captured.getvalue()


def test_stack_info_and_unformattable_messages_are_redacted(captured: io.StringIO) -> None:
    redact.install([SIGNING])
    log = logging.getLogger("wsimg.test.odd")
    log.warning("one %s two %s", SIGNING)  # too few arguments
    log.info(SIGNING, stack_info=True)
    text = captured.getvalue()
    assert SIGNING not in text
    assert "arguments that do not fit the message" in text
    assert "--- Logging error ---" not in text


def test_a_clean_record_keeps_its_arguments(caplog: pytest.LogCaptureFixture) -> None:
    redact.install([SIGNING])
    caplog.set_level(logging.INFO)
    logging.getLogger("wsimg.test.clean").info("count %d", 3)
    [record] = caplog.records
    assert record.args == (3,) and record.getMessage() == "count 3"


def test_records_made_without_the_factory_are_redacted_by_the_root_handler_filter(
    captured: io.StringIO,
) -> None:
    redact.install([SIGNING])
    record = logging.makeLogRecord(
        {"name": "remote", "msg": f"via socket {SIGNING}", "levelno": logging.WARNING}
    )
    logging.getLogger().handle(record)
    assert captured.getvalue() == f"remote via socket {redact.MARK}\n"


def test_uncaught_exceptions_are_printed_redacted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)
    redact.install([BOT])
    try:
        raise KeyError(BOT)
    except KeyError:
        sys.excepthook(*sys.exc_info())

    def fail() -> None:
        raise ValueError(BOT)

    thread = threading.Thread(target=fail, name="leaky-thread")
    thread.start()
    thread.join()
    err = capsys.readouterr().err
    assert BOT not in err
    assert f"KeyError: '{redact.MARK}'" in err
    assert "Exception in thread leaky-thread" in err
    assert f"ValueError: {redact.MARK}" in err


def test_someone_elses_excepthook_is_still_called(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    redact.install([BOT])

    def fail() -> None:
        raise ValueError("x")

    thread = threading.Thread(target=fail)
    thread.start()
    thread.join()
    assert [type(e) for e in seen] == [ValueError]


def test_uninstall_restores_everything(captured: io.StringIO) -> None:
    factory, hook, thread_hook = (
        logging.getLogRecordFactory(),
        sys.excepthook,
        threading.excepthook,
    )
    handlers = list(logging.getLogger().handlers)
    redact.install([SIGNING])
    redact.install([BOT])  # twice: still one layer
    assert all(
        len([f for f in h.filters if isinstance(f, redact.RedactingFilter)]) == 1 for h in handlers
    )
    redact.uninstall()
    assert logging.getLogRecordFactory() is factory
    assert sys.excepthook is hook and threading.excepthook is thread_hook
    assert not any(isinstance(f, redact.RedactingFilter) for h in handlers for f in h.filters)
    assert redact.scrub(SIGNING) == SIGNING  # forgotten
    assert redact.scrub(BOT) == redact.MARK  # still token-shaped


def test_secrets_from_environment_matches_names_case_insensitively() -> None:
    env = {
        "SLACK_BOT_TOKEN": BOT,
        "slack_signing_secret": SIGNING,
        "Slack_App_Token": APP,
        "SLACK_API_URL": "http://127.0.0.1/api/",
        "OTHER": "x",
    }
    assert sorted(redact.secrets_from_environment(env)) == sorted([BOT, SIGNING, APP])
    assert redact.secrets_from_environment({"SLACK_BOT_TOKEN": " "}) == []


def test_too_short_names_each_secret_variable_set_under_eight_characters() -> None:
    env = {
        "SLACK_SIGNING_SECRET": "e",
        "slack_bot_token": "xoxb-1",
        "SLACK_APP_TOKEN": APP,
        "OTHER_SECRET": "x",
    }
    assert redact.too_short(env) == ["SLACK_SIGNING_SECRET", "slack_bot_token"]
    assert redact.too_short({"SLACK_APP_TOKEN": "", "SLACK_BOT_TOKEN": "  "}) == []  # unset
    assert redact.too_short({"SLACK_SIGNING_SECRET": " 1234567 "}) == ["SLACK_SIGNING_SECRET"]
    assert redact.too_short({"SLACK_SIGNING_SECRET": "12345678"}) == []


def test_api_url_from_environment_matches_the_name_case_insensitively() -> None:
    assert redact.api_url_from_environment({"slack_api_url": " http://x/api/ "}) == "http://x/api/"
    assert redact.api_url_from_environment({"SLACK_API_URL": ""}) is None
    assert redact.api_url_from_environment({}) is None
