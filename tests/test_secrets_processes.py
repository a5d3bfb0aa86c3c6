"""Real `wsimg` processes never show the bot token, the app token or the signing secret, and
log no response_url, whatever fails, even at DEBUG; a secret too short to be redacted is
refused at start. Each process's whole output is captured (logging at DEBUG) and searched with
the scanner of tests/leaks.py, with the Slack traffic, the HTTP answers and the AWS calls.

The processes rely on ``bot/cli.py:main`` installing the redaction. A self-check proves the
scanner finds a token a process logs before ``main`` runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import redact
from bot.fakes.slack import HttpResult, SlackUser, SlackWebAPI
from bot.fakes.workspaces import WorkSpacesSimulator
from tests.conftest import APPROVER, BOT_TOKEN, GROUP, GROUP_MEMBER, SIGNING_SECRET
from tests.leaks import (
    APP_TOKEN,
    REFUSED_TOKEN,
    SECRETS,
    find_leaks,
    http_texts,
    response_url_leaks,
    slack_texts,
)
from tests.processes import STARTUP_TIMEOUT, free_port, process_env

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
