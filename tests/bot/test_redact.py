"""bot.redact: secrets and Slack-token-shaped text never reach a log handler or stderr."""

from __future__ import annotations

import io
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
    redact.install(["abcdef", "abcdefghijkl"])
    assert redact.scrub("abcdefghijkl") == redact.MARK


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
