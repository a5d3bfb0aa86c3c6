"""The bot token, the app token and the signing secret never show, whatever fails; no
response_url is logged, even at DEBUG; a secret too short to be redacted is refused at start.

Many failure paths are driven through the real app (in this process, logging captured at DEBUG;
real `wsimg` processes: test_secrets_processes.py); then everything captured is searched for
the three secrets (tests/leaks.py): log records and their exceptions, every Web API call the
Slack stand-in recorded and its answer, every response_url payload, the app's HTTP answers, the
AWS calls, and the database, which holds the error texts later shown in Slack.

In this process the redaction is installed as `wsimg` installs it, from the environment (the
secrets and SLACK_API_URL). Self-checks prove the scanner finds a planted secret and that DEBUG
logs do carry response URLs when nothing redacts them.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from slack_sdk.http_retry import builtin_handlers

from bot import redact
from bot.aws.gateway import WorkSpacesGateway
from bot.config import Settings, load_settings
from bot.errors import ConfigError
from bot.fakes.slack import STALE_SECONDS, HttpResult, SlackUser, SlackWebAPI
from bot.slack.server import MAX_BODY_BYTES
from storage import crud
from storage.db import unit_of_work
from tests.conftest import (
    APPROVER,
    BOT_TOKEN,
    GROUP_MEMBER,
    REGIONS,
    SIGNING_SECRET,
    World,
)
from tests.leaks import (
    APP_TOKEN,
    SECRETS,
    WINDOW,
    aws_texts,
    database_texts,
    find_leaks,
    http_texts,
    log_texts,
    response_url_leaks,
    slack_texts,
)

# --------------------------------------------------------------------------------------------
# The scanner catches what it must
# --------------------------------------------------------------------------------------------


def test_the_scanner_finds_a_secret_anywhere_it_looks(
    world: World, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Without redaction, a secret planted in each kind of evidence is found there."""
    assert not redact.installed()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("wsimg.test").warning("plain %s", BOT_TOKEN)
    logging.getLogger("slack_sdk.web.deep.child").debug("child %s", SIGNING_SECRET[:WINDOW])
    try:
        raise RuntimeError(f"inside {APP_TOKEN}")
    except RuntimeError:
        logging.getLogger("wsimg.test").exception("only the exception has it")
    leaks = find_leaks(log_texts(caplog.records, caplog.text), SECRETS)
    for name in SECRETS:
        assert any(name in leak for leak in leaks), (name, leaks)
    assert any("exception" in leak and "SLACK_APP_TOKEN" in leak for leak in leaks)

    world.slack.set_channel("C0PLANT", "plant")
    world.services.slack.chat_postMessage(channel="C0PLANT", text=f"oops {quote(APP_TOKEN)}")
    assert find_leaks(slack_texts(world.slack), SECRETS)
    answer = HttpResult(
        status=200, headers={}, body=f'{{"text": "{BOT_TOKEN}"}}', json=None, elapsed=0
    )
    assert find_leaks(http_texts([answer]), SECRETS)
    with unit_of_work(world.services.engine) as session:
        crud.record_event(session=session, kind="x", actor="U1", detail={"e": SIGNING_SECRET})
    assert find_leaks(database_texts(world.services.engine), SECRETS)
    print(f"stderr: {SIGNING_SECRET[3:20]}", file=sys.stderr)
    assert find_leaks([("stderr", capfd.readouterr().err)], SECRETS)
    assert not find_leaks([("clean", "xoxb-… [redacted] do-not-log")], SECRETS)


# --------------------------------------------------------------------------------------------
# Fixtures: one SQLite database is enough here; redaction as `wsimg` installs it
# --------------------------------------------------------------------------------------------


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/wsimg.db"


@pytest.fixture
def redacted(monkeypatch: pytest.MonkeyPatch, slack: SlackWebAPI) -> Iterator[None]:
    for name, value in {**SECRETS, "SLACK_API_URL": slack.api_url}.items():
        monkeypatch.setenv(name, value)
    redact.install(redact.secrets_from_environment(), api_url=redact.api_url_from_environment())
    yield
    redact.uninstall()


# Loggers some code may have quietened (`wsimg` sets botocore to WARNING): all at DEBUG here.
DEBUG_LOGGERS = (
    "slack_sdk",
    "slack_bolt",
    "botocore",
    "boto3",
    "urllib3",
    "waitress",
    "apscheduler",
    "sqlalchemy.engine",
    "bot",
    "handlers",
    "storage",
)


class Evidence:
    """What one test collects; ``check()`` fails the test on any piece of a secret."""

    def __init__(
        self, world: World, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
    ) -> None:
        self.world, self.caplog, self.capfd = world, caplog, capfd
        self.http: list[HttpResult] = []
        self.texts: list[tuple[str, str]] = []
        caplog.set_level(logging.DEBUG)
        # Also their children given a level of their own (Bolt gives its App logger root's).
        existing = [
            name
            for name, logger in logging.root.manager.loggerDict.items()
            if isinstance(logger, logging.Logger) and logger.level > logging.DEBUG
        ]
        for name in (*DEBUG_LOGGERS, *existing):
            if any(name == top or name.startswith(f"{top}.") for top in DEBUG_LOGGERS):
                caplog.set_level(logging.DEBUG, logger=name)

    def command(self, text: str, *, user_id: str = APPROVER) -> HttpResult:
        result = self.world.command(text, user_id=user_id)
        self.http.append(result)
        return result

    def click(self, button: dict[str, Any], *, user_id: str = APPROVER) -> HttpResult:
        result = self.world.click(button, user_id=user_id)
        self.http.append(result)
        return result

    def answer(self, result: HttpResult) -> dict[str, Any]:
        return self.world.answer(result)

    def check(self, secrets: dict[str, str] = SECRETS) -> None:
        out, err = self.capfd.readouterr()
        world = self.world
        found = [
            *log_texts(self.caplog.records, self.caplog.text),
            ("stdout", out),
            ("stderr", err),
            *slack_texts(world.slack),
            *aws_texts(world.simulator),
            *http_texts(self.http),
            *database_texts(world.services.engine),
            *self.texts,
        ]
        leaks = find_leaks(found, secrets)
        assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
        assert self.caplog.records, "nothing was logged: the capture is not working"


@pytest.fixture
def evidence(
    redacted: None,
    world: World,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> Evidence:
    return Evidence(world, caplog, capfd)


def test_redaction_covers_every_logger_and_exception_the_test_captures(
    evidence: Evidence,
) -> None:
    """The self-check with redaction on: the secrets logged on purpose arrive redacted."""
    logging.getLogger("slack_sdk.web.base_client").debug("token=%s", BOT_TOKEN)
    logging.getLogger("waitress").warning(f"secret {SIGNING_SECRET} inline")
    try:
        raise ValueError(APP_TOKEN)
    except ValueError:
        logging.getLogger("bot.anything").exception("failed")
    assert redact.MARK in evidence.caplog.text
    evidence.check()


def _debug_session(world: World, evidence: Evidence) -> None:
    """A list, an approval, a status and a digest: commands and a click, each with its URL."""
    image = world.simulator.add_image(region="us-east-1", name="Win-Url-Debug")
    listing = evidence.answer(evidence.command("updates"))
    evidence.answer(evidence.click(world.approve_button(listing, image)))
    evidence.answer(evidence.command("status"))
    evidence.answer(evidence.command("updates"))
    assert len({r.response_url for r in evidence.http}) == 4


def test_debug_logs_carry_no_response_url(evidence: Evidence) -> None:
    """Anyone holding a response_url can post to its channel for 30 minutes: none is logged,
    by slack_sdk, slack_bolt, waitress or wsimg, at DEBUG."""
    _debug_session(evidence.world, evidence)
    leaks = response_url_leaks(
        log_texts(evidence.caplog.records, evidence.caplog.text), evidence.http
    )
    assert not leaks, "response URLs logged:\n" + "\n".join(leaks)
    assert redact.URL_MARK in evidence.caplog.text  # they were logged, and redacted
    evidence.check()


def test_without_redaction_debug_logs_carry_the_response_urls(
    world: World, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """The self-check: the test above would see a response_url if one were logged."""
    assert not redact.installed()
    evidence = Evidence(world, caplog, capfd)
    _debug_session(world, evidence)
    assert response_url_leaks(log_texts(caplog.records, caplog.text), evidence.http)


# --------------------------------------------------------------------------------------------
# In-process failure paths
# --------------------------------------------------------------------------------------------

SLACK_FAILURES = {
    "invalid_auth": lambda slack, method, n: slack.fail(method, "invalid_auth", times=n),
    "http_500": lambda slack, method, n: slack.inject(
        method, "internal_error", status=500, times=n
    ),
    # RateLimitErrorRetryHandler retries 5 times; the sixth 429 is the error.
    "http_429": lambda slack, method, n: slack.rate_limit(method, times=6 * n, retry_after=0),
}


@pytest.fixture(autouse=True)
def _no_random_wait_after_a_429(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry-After: 0 then means no wait at all (slack_sdk adds up to a second at random)."""
    monkeypatch.setattr(builtin_handlers, "random", types.SimpleNamespace(random=lambda: 0.0))


@pytest.mark.parametrize("failure", sorted(SLACK_FAILURES))
def test_slack_failing_chat_post_message(evidence: Evidence, failure: str) -> None:
    world = evidence.world
    fail = SLACK_FAILURES[failure]
    image = world.simulator.add_image(region="us-east-1", name="Win-Secret-Post")

    # The announcement cannot be posted in the channel (it goes to the approver's DM).
    listing = evidence.answer(evidence.command("updates"))
    fail(world.slack, "chat.postMessage", 1)
    answer = evidence.answer(evidence.click(world.approve_button(listing, image)))
    assert "blocks" in answer

    # Nor the follow-up, when the image is ready.
    world.simulator.complete_pending()
    fail(world.slack, "chat.postMessage", 1)
    world.poll()

    # Nor the digest: a Slack error inside a handler.
    fail(world.slack, "chat.postMessage", 1)
    answer = evidence.answer(evidence.command("digest"))
    assert "Slack did not take the digest" in json.dumps(answer)
    assert [c for c in world.slack.calls if not c.ok]
    evidence.check()


@pytest.mark.parametrize("failure", sorted(SLACK_FAILURES))
def test_slack_failing_usergroups_users_list(evidence: Evidence, failure: str) -> None:
    world = evidence.world
    image = world.simulator.add_image(region="us-east-1", name="Win-Secret-Group")
    listing = evidence.answer(evidence.command("updates", user_id=GROUP_MEMBER))
    SLACK_FAILURES[failure](world.slack, "usergroups.users.list", 1)
    button = world.approve_button(listing, image)
    answer = evidence.answer(evidence.click(button, user_id=GROUP_MEMBER))
    assert "may not approve" in json.dumps(answer)
    assert [c for c in world.slack.calls if c.method == "usergroups.users.list" and not c.ok]
    evidence.check()


def test_aws_refusing_and_throttling_list_and_approve(evidence: Evidence) -> None:
    world, sim = evidence.world, evidence.world.simulator
    # Two attempts, not five: the throttling path is the same, the backoff much shorter.
    world.services.gateway = WorkSpacesGateway(regions=list(REGIONS), max_attempts=2)
    image = sim.add_image(region="us-east-1", name="Win-Secret-Aws")
    other = sim.add_image(region="us-east-1", name="Win-Secret-Aws-2")

    sim.deny("DescribeWorkspaceImages", region="eu-west-1")
    sim.throttle("DescribeWorkspaceImages", times=2, region="us-east-1")
    listing = evidence.answer(evidence.command("updates"))
    assert "throttling" in json.dumps(listing)
    sim.allow("DescribeWorkspaceImages")

    listing = evidence.answer(evidence.command("updates"))
    sim.fail_next("CreateUpdatedWorkspaceImage", "AccessDeniedException", "Not authorized")
    evidence.answer(evidence.click(world.approve_button(listing, image)))
    listing = evidence.answer(evidence.command("updates"))
    sim.throttle("CreateUpdatedWorkspaceImage", times=2)
    evidence.answer(evidence.click(world.approve_button(listing, other)))
    failures = [c for c in sim.calls if c.operation == "CreateUpdatedWorkspaceImage"]
    assert len(failures) == 3

    # The poller cannot see the pending images either.
    sim.deny("DescribeWorkspaceImages")
    world.poll()
    evidence.check()


def test_requests_not_signed_with_the_secret(evidence: Evidence) -> None:
    world = evidence.world
    body = urlencode({"command": "/wsimg", "text": "updates", "user_id": APPROVER}).encode()
    user = world.user
    for how in (
        {"sign": False},
        {"signature": "v0=" + "0" * 64},
        {"timestamp": int(time.time()) - STALE_SECONDS},
    ):
        evidence.http.append(user.post(body, **how))
    evidence.http.append(SlackUser(world.events_url, "not-the-secret", world.slack).post(body))
    evidence.http.append(user.post(b"\xff\xfe not utf-8"))
    evidence.http.append(user.post(b"payload=%7Bnot-json", sign=True))  # signed, unreadable
    evidence.texts.append(("waitress's answer to a body too large", _too_large(world.events_url)))
    assert [r.status for r in evidence.http][:5] == [401] * 5
    assert evidence.http[5].status == 400
    evidence.check()


def _too_large(url: str) -> str:
    """waitress's own error page for a body over its limit (it answers before reading it)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    text = answer.decode(errors="replace")
    assert text.startswith("HTTP/1.1 413"), text
    return text


def _leaky(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError(f"boom: {BOT_TOKEN} {APP_TOKEN} {SIGNING_SECRET}")


def test_exceptions_carrying_the_secrets_inside_handlers_and_jobs(
    evidence: Evidence, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = evidence.world
    image = world.simulator.add_image(region="us-east-1", name="Win-Secret-Raise")
    listing = evidence.answer(evidence.command("updates"))

    # In a lazy listener (after the ack).
    monkeypatch.setattr("bot.domain.listing.list_updates", _leaky)
    answer = evidence.answer(evidence.command("updates"))
    assert "went wrong" in json.dumps(answer)

    # In the ack itself (Bolt's error handler answers).
    monkeypatch.setattr("bot.slack.blocks.help_message", _leaky)
    ack = evidence.command("no-such-subcommand")
    world.slack.wait_for_response(ack.response_url, lambda p: "went wrong" in json.dumps(p))

    # In the follow-up job.
    evidence.answer(evidence.click(world.approve_button(listing, image)))
    world.simulator.complete_pending()
    monkeypatch.setattr(world.services.notifier, "follow_up", _leaky)
    world.poll()

    assert BOT_TOKEN not in evidence.caplog.text
    assert f"boom: {redact.MARK}" in evidence.caplog.text
    evidence.check()


def test_settings_errors_and_representations(
    evidence: Evidence, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = evidence.world.services.settings
    evidence.texts += [
        ("repr(settings)", repr(settings)),
        ("str(settings)", str(settings)),
        ("settings as JSON", settings.model_dump_json()),
        ("repr(services)", repr(evidence.world.services)),
    ]
    for name, value in {"WSIMG_POLL_SECONDS": "abc", "PORT": "99999"}.items():
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError) as caught:
            load_settings()
        monkeypatch.delenv(name)
        error = caught.value
        evidence.texts += [
            (f"ConfigError for {name}", f"{error} {error!r} {error.user_message}"),
            (f"traceback for {name}", "".join(traceback.format_exception(error))),
        ]
        logging.getLogger("wsimg").exception("bad settings", exc_info=error)
    evidence.texts.append(("settings from the environment", repr(Settings())))
    evidence.check()
