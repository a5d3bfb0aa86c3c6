"""`wsimg bench --quick`: a smoke run of the benchmark. Every figure is printed with PASS or
MISS; no figure is asserted (timings are the benchmark's to report, not a test's)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from bot.fakes.workspaces import CLEARED_ENV

FIGURES = (
    "acknowledgement p95 over",
    "cold scan time ÷ critical path",
    "warm listing (snapshot): command → first page",
    "DescribeWorkspaceImages calls per cold scan ÷ Σ⌈n/25⌉",
    "DescribeWorkspaceImages calls for",
    "poller calls per pass for",
    "peak RSS of one process at",
    "digest build at",
    "bulk approvals in one click",
)


def test_quick_bench_prints_every_figure_with_pass_or_miss() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in CLEARED_ENV and not k.startswith(("SLACK_", "WSIMG_", "AWS_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "bench", "--quick"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == len(FIGURES), result.stdout
    for figure in FIGURES:
        row = next((r for r in rows if figure in r), None)
        assert row is not None, (figure, result.stdout)
        assert re.search(r"\| (PASS|MISS)[^|]* \|$", row), row


def test_bench_refuses_sizes_it_cannot_run() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "bench", "--regions", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--regions must be 1 to 12" in result.stderr
