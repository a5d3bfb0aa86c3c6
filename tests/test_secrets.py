"""The bot token, the app token and the signing secret never show, whatever fails; no
response_url is logged, even at DEBUG; a secret too short to be redacted is refused at start.

Many failure paths are driven through the real app (in this process, logging captured at DEBUG)
and through real `wsimg` processes (their whole output captured, logging at DEBUG); then
everything captured is searched for the three secrets: log records and their exceptions, the
process's stdout/stderr, every Web API call the Slack stand-in recorded and its answer, every
response_url payload, the app's HTTP answers, the AWS calls, and the database, which holds
the error texts later shown in Slack.

In this process the redaction is installed as `wsimg` installs it, from the environment (the
secrets and SLACK_API_URL); the process tests rely on ``bot/cli.py:main`` doing that. Self-checks
prove the scanner finds a planted secret and that DEBUG logs do carry response URLs when
nothing redacts them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import time
import traceback
import types
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
import sqlalchemy as sa
from slack_sdk.http_retry import builtin_handlers

from bot import redact
from bot.aws.gateway import WorkSpacesGateway
from bot.config import Settings, load_settings
from bot.errors import ConfigError
from bot.fakes.slack import STALE_SECONDS, HttpResult, SlackUser, SlackWebAPI
from bot.fakes.workspaces import WorkSpacesSimulator
from bot.slack.server import MAX_BODY_BYTES
from storage import crud
from storage.db import unit_of_work
from tests.conftest import (
    APPROVER,
    BOT_TOKEN,
    GROUP,
    GROUP_MEMBER,
    REGIONS,
    SIGNING_SECRET,
    World,
)
from tests.processes import STARTUP_TIMEOUT, free_port, process_env

APP_TOKEN = "xapp-1-A0WSIMG-4242-test-app-token-do-not-log"
# A bot token Slack refuses (revoked, or of another workspace): still a secret.
REFUSED_TOKEN = "xoxb-9999-refused-bot-token-do-not-log"
SECRETS = {
    "SLACK_BOT_TOKEN": BOT_TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "SLACK_APP_TOKEN": APP_TOKEN,
}
WINDOW = 12  # any 12 characters in a row of a secret count as a leak


# --------------------------------------------------------------------------------------------
# The scanner
# --------------------------------------------------------------------------------------------


def _needles(secret: str) -> set[str]:
    """The secret, its encodings, and every WINDOW-long piece of it (a truncated leak)."""
    forms = {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}
    pieces = {secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1)}
    return forms | pieces


def find_leaks(found: Iterable[tuple[str, str]], secrets: dict[str, str]) -> list[str]:
    """``where: NAME`` for each (where, text) holding a piece of a secret."""
    needles = {name: _needles(value) for name, value in secrets.items()}
    leaks = []
    for where, text in found:
        for name, pieces in needles.items():
            hit = next((p for p in pieces if p in text), None)
            if hit is not None:
                start = text.index(hit)
                excerpt = text[max(0, start - 80) : start + len(hit) + 40]
                leaks.append(f"{where}: {name} in …{excerpt!r}…")
    return leaks


def _dump(value: Any) -> str:
    return json.dumps(value, default=repr, sort_keys=True)


def _exc_text(exc_info: Any) -> str:
    return "".join(traceback.format_exception(*exc_info))


def log_texts(records: Iterable[logging.LogRecord], formatted: str) -> Iterator[tuple[str, str]]:
    """Everything a log handler or formatter could write from these records."""
    yield "log text", formatted
    for record in records:
        where = f"log record {record.name}:{record.lineno}"
        try:
            message = record.getMessage()
        except Exception as exc:  # noqa: BLE001 (a broken record is shown, not fatal)
            message = f"<unformattable: {exc!r}>"
        yield where, message
        yield f"{where} attributes", repr(vars(record))
        if record.exc_info and record.exc_info[0] is not None:
            yield f"{where} exception", _exc_text(record.exc_info)


def slack_texts(slack: SlackWebAPI) -> Iterator[tuple[str, str]]:
    """Everything the app sent to Slack and Slack answered, as the stand-in recorded it."""
    for call in slack.calls:
        yield f"Slack {call.method} call", _dump(dataclasses.asdict(call))
    for response in slack.responses:
        yield "response_url payload", _dump(response._asdict())
    for rejected in slack.rejected_responses:
        yield "refused response_url payload", _dump(rejected)
    for entry in slack.timeline:
        yield f"Slack timeline {entry.kind}", _dump(dataclasses.asdict(entry))
    for message in slack.posts():
        yield "Slack channel message", _dump(dataclasses.asdict(message))
    yield "Slack ephemerals", _dump(slack.ephemerals())


def aws_texts(simulator: WorkSpacesSimulator) -> Iterator[tuple[str, str]]:
    for call in simulator.calls:
        yield f"AWS {call.operation} call", _dump(dataclasses.asdict(call))


def http_texts(results: Iterable[HttpResult]) -> Iterator[tuple[str, str]]:
    for result in results:
        yield f"HTTP answer {result.status}", _dump([result.headers, result.body])


def database_texts(engine: sa.Engine) -> Iterator[tuple[str, str]]:
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows = connection.execute(sa.select(table)).all()
            yield f"database table {table.name}", _dump([list(row) for row in rows])


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


def response_url_leaks(
    found: Iterable[tuple[str, str]], results: Iterable[HttpResult]
) -> list[str]:
    """``where: url`` for each text holding a response_url of ``results``, or its id (the
    stand-in's last path segment), plain, percent-encoded or JSON-escaped."""
    urls = {r.response_url for r in results if r.response_url}
    assert urls, "no request carried a response_url: nothing to look for"
    needles = {
        url: {
            url,
            quote(url, safe=""),
            url.replace("/", "\\/"),
            url.rsplit("/", 1)[1],
        }
        for url in urls
    }
    return [
        f"{where}: {url}"
        for where, text in found
        for url, forms in needles.items()
        if any(form in text for form in forms)
    ]


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


# --------------------------------------------------------------------------------------------
# Real processes
# --------------------------------------------------------------------------------------------

# `wsimg` exactly as deployed, except that logging is set up at DEBUG before `main` runs (its
# basicConfig then leaves it alone), so that everything any library can log is written.
DEBUG_MAIN = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG,"
    " format='%(asctime)s %(levelname)s %(name)s: %(message)s')\n"
    "{prelude}"
    "from bot.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _wsimg(*args: str, env: dict[str, str], log: Path, prelude: str = "") -> subprocess.Popen:
    code = DEBUG_MAIN.format(prelude=prelude)
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-c", code, *args], env=env, stdout=out, stderr=out
        )


def _finish(proc: subprocess.Popen, timeout: float = STARTUP_TIMEOUT) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise


@pytest.fixture
def fakes() -> Iterator[tuple[WorkSpacesSimulator, SlackWebAPI]]:
    with (
        WorkSpacesSimulator(pending_seconds=3600) as simulator,
        SlackWebAPI(bot_token=BOT_TOKEN) as slack,
    ):
        slack.set_usergroup(GROUP, [GROUP_MEMBER])
        yield simulator, slack


def _check_process(log: Path, slack: SlackWebAPI, secrets: dict[str, str] = SECRETS) -> str:
    text = log.read_text(errors="replace")
    assert text.strip(), "the process wrote nothing: the capture is not working"
    leaks = find_leaks([(log.name, text), *slack_texts(slack)], secrets)
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
    return text


@pytest.mark.parametrize(
    "bad", [{"WSIMG_POLL_SECONDS": "abc"}, {"WSIMG_TIMEZONE": "Mars/Olympus"}, {"PORT": "-1"}]
)
def test_serve_with_a_bad_setting(
    fakes: tuple[WorkSpacesSimulator, SlackWebAPI], tmp_path: Path, bad: dict[str, str]
) -> None:
    simulator, slack = fakes
    env = process_env(simulator, slack, f"sqlite:///{tmp_path}/w.db", **SECRETS, **bad)
    log = tmp_path / "serve.log"
    assert _finish(_wsimg("serve", env=env, log=log)) == 2
    text = _check_process(log, slack)
    assert "Configuration error" in text


def test_serve_whose_bot_token_slack_refuses(
    fakes: tuple[WorkSpacesSimulator, SlackWebAPI], tmp_path: Path
) -> None:
    simulator, slack = fakes
    env = process_env(simulator, slack, f"sqlite:///{tmp_path}/w.db", SLACK_BOT_TOKEN=REFUSED_TOKEN)
    log = tmp_path / "serve.log"
    assert _finish(_wsimg("serve", env=env, log=log)) != 0
    assert [c.error for c in slack.calls if c.method == "auth.test"] == ["invalid_auth"]
    _check_process(log, slack, {**SECRETS, "SLACK_BOT_TOKEN": REFUSED_TOKEN})


def test_serve_in_socket_mode_whose_app_token_slack_refuses(
    fakes: tuple[WorkSpacesSimulator, SlackWebAPI], tmp_path: Path
) -> None:
    simulator, slack = fakes
    env = process_env(simulator, slack, f"sqlite:///{tmp_path}/w.db", SLACK_APP_TOKEN=APP_TOKEN)
    log = tmp_path / "serve.log"
    assert _finish(_wsimg("serve", env=env, log=log)) != 0
    assert [c.error for c in slack.calls if c.method == "apps.connections.open"]
    _check_process(log, slack)


def test_serve_answering_through_slack_and_aws_failures(
    fakes: tuple[WorkSpacesSimulator, SlackWebAPI], tmp_path: Path
) -> None:
    simulator, slack = fakes
    image = simulator.add_image(region="us-east-1", name="Win-Secret-Process")
    env = process_env(simulator, slack, f"sqlite:///{tmp_path}/w.db", WSIMG_APPROVERS=GROUP)
    port = int(env["PORT"])
    log = tmp_path / "serve.log"
    proc = _wsimg("serve", env=env, log=log)
    try:
        user = SlackUser(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, slack)
        _wait_until_serving(proc, log)
        results = [user.post(b"text=updates", signature="v0=" + "1" * 64)]

        def answer(result: HttpResult) -> dict[str, Any]:
            results.append(result)
            return slack.wait_for_response(
                result.response_url, lambda p: bool(p.get("blocks")), timeout=30
            )

        simulator.deny("DescribeWorkspaceImages")
        answer(user.command("updates", user_id=GROUP_MEMBER))
        simulator.allow("DescribeWorkspaceImages")
        listing = answer(user.command("updates", user_id=GROUP_MEMBER))
        [button] = [
            b
            for b in user.find_buttons(listing["blocks"])
            if b["action_id"].startswith("wsimg.approve")
        ]
        slack.inject("usergroups.users.list", "internal_error", status=500)
        refused = answer(user.click_button(button, user_id=GROUP_MEMBER))
        slack.fail("chat.postMessage", "invalid_auth", times=2)
        simulator.fail_next("CreateUpdatedWorkspaceImage", "AccessDeniedException")
        answer(user.click_button(button, user_id=GROUP_MEMBER))
        slack.fail("chat.postMessage", "invalid_auth")
        failed = answer(user.command("digest", user_id=GROUP_MEMBER))
    finally:
        proc.terminate()
        _finish(proc)
    text = _check_process(log, slack)
    leaks = find_leaks(http_texts(results), SECRETS)
    assert not leaks, leaks
    assert not response_url_leaks([(log.name, text)], results)
    assert redact.URL_MARK in text  # the process logged them at DEBUG, redacted
    assert results[0].status == 401
    assert "may not approve" in json.dumps(refused)
    assert "Slack did not take the digest" in json.dumps(failed)
    assert [c.params["SourceImageId"] for c in simulator.calls if "Create" in c.operation] == [
        image
    ]
    assert "invalid_auth" in text and "AccessDenied" in text


def _wait_until_serving(proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while "serving HTTP" not in log.read_text(errors="replace"):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


# Planted in a `wsimg serve` process: code that fails with the secrets in its exception.
LEAKY = (
    "import os\n"
    "def leaky(*args, **kwargs):\n"
    "    raise RuntimeError('boom: ' + ' '.join(os.environ[n] for n in ("
    "'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET')) + ' {app_token}')\n"
    "import bot.{module}\n"
    "bot.{module}.{function} = leaky\n"
)


def test_serve_logs_a_handler_exception_carrying_the_secrets_redacted(
    fakes: tuple[WorkSpacesSimulator, SlackWebAPI], tmp_path: Path
) -> None:
    """Needs `wsimg` to install the redaction (bot/cli.py:main)."""
    simulator, slack = fakes
    env = process_env(simulator, slack, f"sqlite:///{tmp_path}/w.db")
    log = tmp_path / "serve.log"
    prelude = LEAKY.format(app_token=APP_TOKEN, module="domain.listing", function="list_updates")
    proc = _wsimg("serve", env=env, log=log, prelude=prelude)
    try:
        _wait_until_serving(proc, log)
        user = SlackUser(f"http://127.0.0.1:{env['PORT']}/slack/events", SIGNING_SECRET, slack)
        asked = user.command("updates", user_id=APPROVER)
        answer = slack.wait_for_response(
            asked.response_url, lambda p: bool(p.get("blocks")), timeout=30
        )
        assert "went wrong" in json.dumps(answer)
    finally:
        proc.terminate()
        _finish(proc)
    assert f"boom: {redact.MARK}" in _check_process(log, slack)


def test_serve_crashing_with_the_secrets_in_its_exception(
    fakes: tuple[WorkSpacesSimulator, SlackWebAPI], tmp_path: Path
) -> None:
    """An uncaught exception is printed by sys.excepthook, not logged: redacted all the same."""
    simulator, slack = fakes
    env = process_env(simulator, slack, f"sqlite:///{tmp_path}/w.db")
    log = tmp_path / "serve.log"
    prelude = LEAKY.format(app_token=APP_TOKEN, module="slack.server", function="make_server")
    assert _finish(_wsimg("serve", env=env, log=log, prelude=prelude)) == 1
    assert f"RuntimeError: boom: {redact.MARK}" in _check_process(log, slack)


def test_the_process_check_finds_a_secret_a_process_logs(
    fakes: tuple[WorkSpacesSimulator, SlackWebAPI], tmp_path: Path
) -> None:
    """The self-check for processes: logged before `main` runs, the token is not redacted."""
    simulator, slack = fakes
    env = process_env(simulator, slack, f"sqlite:///{tmp_path}/w.db", WSIMG_POLL_SECONDS="x")
    log = tmp_path / "serve.log"
    prelude = (
        "logging.getLogger('early').warning('%s', __import__('os').environ['SLACK_BOT_TOKEN'])\n"
    )
    assert _finish(_wsimg("serve", env=env, log=log, prelude=prelude)) == 2
    with pytest.raises(AssertionError, match="SLACK_BOT_TOKEN in"):
        _check_process(log, slack)


@pytest.mark.parametrize("variable", ["WSIMG_APPROVERS", "WSIMG_TIMEZONE"])
def test_a_secret_put_in_the_wrong_variable_is_not_echoed(
    fakes: tuple[WorkSpacesSimulator, SlackWebAPI], tmp_path: Path, variable: str
) -> None:
    simulator, slack = fakes
    env = process_env(simulator, slack, f"sqlite:///{tmp_path}/w.db", **{variable: BOT_TOKEN})
    log = tmp_path / "serve.log"
    assert _finish(_wsimg("serve", env=env, log=log)) == 2
    assert "Configuration error" in _check_process(log, slack)


SHORT = "Kq7#zW"  # six characters: too short to redact, and to be a Slack secret


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        ("serve", "SLACK_SIGNING_SECRET"),
        ("serve", "SLACK_BOT_TOKEN"),
        ("serve", "SLACK_APP_TOKEN"),
        ("updates", "SLACK_SIGNING_SECRET"),
        ("updates", "slack_bot_token"),  # the settings read names case-insensitively
    ],
)
def test_a_short_secret_is_refused_at_start(
    fakes: tuple[WorkSpacesSimulator, SlackWebAPI], tmp_path: Path, command: str, variable: str
) -> None:
    """One line naming the variable, exit 2, no traceback, the value nowhere, nothing done."""
    simulator, slack = fakes
    env = process_env(simulator, slack, f"sqlite:///{tmp_path}/w.db")
    env.pop(variable.upper(), None)
    env[variable] = SHORT
    done = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "bot", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"wsimg: {variable} is too short (under 8 characters)"), line
    assert "copy it again from the app's" in line
    assert SHORT not in done.stderr and "Traceback" not in done.stderr
    assert slack.calls == [] and simulator.calls == []
    assert not (tmp_path / "w.db").exists()


DEMO_SECRET = "0123456789abcdef-demo-signing-secret"
DEMO_TOKEN_PART = "demo-bot-token-part"
DEMO_PRELUDE = (
    "import types, bot.demo\n"
    f"tokens = {{16: {DEMO_SECRET!r}, 8: {DEMO_TOKEN_PART!r}}}\n"
    "bot.demo.secrets = types.SimpleNamespace(token_hex=tokens.__getitem__)\n"
)


def test_demo_transcript_and_logs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WSIMG_", "AWS_"))}
    env["PORT"] = str(free_port())
    log = tmp_path / "demo.log"
    assert _finish(_wsimg("demo", env=env, log=log, prelude=DEMO_PRELUDE), timeout=180) == 0
    text = log.read_text(errors="replace")
    assert "reply in thread" in text
    secrets = {"demo SLACK_BOT_TOKEN": "xoxb-demo-" + DEMO_TOKEN_PART, "demo secret": DEMO_SECRET}
    leaks = find_leaks([("demo output", text)], secrets)
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
