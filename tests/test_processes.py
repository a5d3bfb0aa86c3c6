"""`wsimg serve` as a real process: it serves Slack over HTTP, and a follow-up survives a kill."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.fakes.slack import SlackUser, SlackWebAPI
from bot.fakes.workspaces import CLEARED_ENV, WorkSpacesSimulator
from tests.conftest import APPROVER, BOT_TOKEN, SIGNING_SECRET

STARTUP_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServeProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = int(env["PORT"])

    def start(self) -> ServeProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"], env=self.env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/healthz", timeout=1
                ) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"wsimg serve did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"


@pytest.fixture
def fake_world(tmp_path: Path) -> Iterator[tuple[WorkSpacesSimulator, SlackWebAPI, dict[str, str]]]:
    with (
        WorkSpacesSimulator(pending_seconds=3600) as simulator,
        SlackWebAPI(bot_token=BOT_TOKEN) as slack,
    ):
        env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
        env.update(simulator.environment())
        env.update(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.api_url,
            DATABASE_URL=f"sqlite:///{tmp_path}/wsimg.db",
            WSIMG_REGIONS="us-east-1",
            WSIMG_APPROVERS=APPROVER,
            WSIMG_POLL_SECONDS="1",
            PORT=str(_free_port()),
        )
        env.pop("SLACK_APP_TOKEN", None)
        yield simulator, slack, env


def test_follow_up_arrives_after_a_kill_while_pending_without_a_second_create(
    fake_world: tuple[WorkSpacesSimulator, SlackWebAPI, dict[str, str]], tmp_path: Path
) -> None:
    simulator, slack, env = fake_world
    image = simulator.add_image(region="us-east-1", name="Win-Survivor")
    first = ServeProcess(env, tmp_path / "serve.log").start()
    user = SlackUser(first.events_url, SIGNING_SECRET, slack)

    asked = user.command("updates", user_id=APPROVER)
    listing = slack.wait_for_response(asked.response_url, lambda p: bool(p.get("blocks")), 30)
    [button] = [
        b
        for b in user.find_buttons(listing["blocks"])
        if b["action_id"].startswith("wsimg.approve")
    ]
    user.click_button(button, user_id=APPROVER)
    announced = slack.wait_for(
        lambda c: c.method == "chat.update" and "building" in json.dumps(c.args), timeout=30
    )
    first.kill()
    assert simulator.count("CreateUpdatedWorkspaceImage") == 1

    simulator.complete_pending()
    second = ServeProcess(env, tmp_path / "serve.log").start()
    try:
        reply = slack.wait_for(
            lambda c: c.method == "chat.postMessage" and bool(c.args.get("thread_ts")), timeout=30
        )
    finally:
        assert second.stop() == 0
    assert reply.args["thread_ts"] == announced.args["ts"]
    assert "AVAILABLE" in json.dumps(reply.args)
    assert simulator.count("CreateUpdatedWorkspaceImage") == 1
    assert image in json.dumps(reply.args)
