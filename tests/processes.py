"""Running `wsimg serve` and `wsimg worker` as real processes, as a deployment does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bot.fakes.slack import SlackWebAPI
from bot.fakes.workspaces import CLEARED_ENV, WorkSpacesSimulator
from tests.conftest import APPROVER, BOT_TOKEN, SIGNING_SECRET

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(
    simulator: WorkSpacesSimulator, slack: SlackWebAPI, database_url: str, **extra: str
) -> dict[str, str]:
    """The environment of a deployed wsimg, pointed at the fakes."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env = {k: v for k, v in env.items() if not k.startswith(("SLACK_", "WSIMG_"))}
    env.update(simulator.environment())
    env.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        DATABASE_URL=database_url,
        WSIMG_REGIONS="us-east-1",
        WSIMG_APPROVERS=APPROVER,
        WSIMG_POLL_SECONDS="1",
        WSIMG_SCAN_SECONDS="0",  # each listing sees what the test just put in the simulator
        PORT=str(free_port()),
    )
    env.update(extra)
    return env


class WsimgProcess:
    """`python -m bot <command>`; `serve` is ready when /healthz answers, `worker` when it
    logs that its scheduler runs."""

    def __init__(self, command: str, env: dict[str, str], log: Path) -> None:
        self.command, self.env, self.log = command, env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = int(env["PORT"])

    def start(self) -> WsimgProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                [sys.executable, "-m", "bot", self.command], env=self.env, stdout=out, stderr=out
            )
        return self

    def wait_ready(self) -> WsimgProcess:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            if self._ready():
                return self
            time.sleep(0.1)
        raise AssertionError(f"wsimg {self.command} did not start:\n{self.log.read_text()}")

    def _ready(self) -> bool:
        if self.command == "worker":
            return "scheduler running" in self.log.read_text()
        try:
            health = self.url("/healthz")  # always http://127.0.0.1
            with urllib.request.urlopen(health, timeout=1) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def events_url(self) -> str:
        return self.url("/slack/events")
