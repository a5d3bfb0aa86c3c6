"""`wsimg updates` in a terminal shows a progress bar on stderr while it scans, and nothing
extra when its output is piped (issue 10, part 4). The real command against the simulator;
the terminal is a pseudo-terminal (the pty module)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator

import pytest

from bot.fakes.workspaces import WorkSpacesSimulator
from tests.test_commands import _clean_env, _wsimg

REGIONS = ("us-east-1", "eu-west-1", "eu-central-1")


@pytest.fixture
def fleet_env() -> Iterator[dict[str, str]]:
    with WorkSpacesSimulator() as simulator:
        for region in REGIONS:
            for n in range(30):
                simulator.add_image(region=region, name=f"Win-{region}-{n:02}")
        simulator.latency = 0.05  # a scan of a few pages per region, as AWS is not instant
        yield _clean_env(**simulator.environment(), WSIMG_REGIONS=",".join(REGIONS))


def _in_a_terminal(env: dict[str, str]) -> tuple[int, str, str]:
    """`wsimg updates` with stderr on a pseudo-terminal, stdout on a pipe: (exit code, what
    the terminal showed, stdout)."""
    terminal, child_side = pty.openpty()
    termios.tcsetwinsize(terminal, (24, 100))  # a new pty is 0 columns wide: none to draw in
    shown: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the child's side is closed
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=read)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "updates"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=child_side,
            text=True,
        )
        os.close(child_side)
        reader.start()
        out, _ = process.communicate(timeout=120)
        reader.join(30)
    finally:
        os.close(terminal)
    return process.returncode, b"".join(shown).decode("utf-8", "replace"), out


def test_a_terminal_sees_a_progress_bar_while_the_fleet_is_scanned(
    fleet_env: dict[str, str],
) -> None:
    code, terminal, out = _in_a_terminal(fleet_env)
    assert code == 0, terminal
    assert "Scanning" in terminal
    assert "/3" in terminal  # of the three regions
    assert "region" in terminal
    assert "90 image(s) with a WorkSpaces update available" in out
    assert "Scanning" not in out


def test_piped_output_has_nothing_but_the_listing(fleet_env: dict[str, str]) -> None:
    result = _wsimg("updates", env=fleet_env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Scanning" not in result.stdout and "\r" not in result.stdout
    assert result.stdout.startswith("90 image(s) with a WorkSpaces update available")
