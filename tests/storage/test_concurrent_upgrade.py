"""Several processes migrating one empty database at once (all replicas starting together):
every one of them must succeed, on SQLite and on PostgreSQL (where storage.db takes an
advisory lock)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bot.fakes.workspaces import CLEARED_ENV
from storage.db import make_engine, schema_status

PROCESSES = 3
TIMEOUT_S = 120

# Connects, says it is ready, and waits for the start signal: the processes then really
# start migrating together.
_ENSURE_SCHEMA = """
import os, sys, time
from pathlib import Path
from storage.db import ensure_schema, make_engine
engine = make_engine(os.environ["DATABASE_URL"])
engine.connect().close()
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
(ready / str(os.getpid())).touch()
while not go.exists():
    time.sleep(0.002)
ensure_schema(engine)
engine.dispose()
"""


def _env(database_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in CLEARED_ENV and not k.startswith(("SLACK_", "WSIMG_", "AWS_"))
    }
    env["DATABASE_URL"] = database_url
    return env


def _run_together(
    commands: list[list[str]],
    env: dict[str, str],
    ready: Path | None = None,
    go: Path | None = None,
) -> None:
    processes = [
        subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for command in commands
    ]
    if ready is not None and go is not None:
        deadline = time.monotonic() + TIMEOUT_S
        while len(list(ready.iterdir())) < len(processes) and time.monotonic() < deadline:
            if any(p.poll() is not None for p in processes):
                break  # one died before the start: its output says why, below
            time.sleep(0.01)
        go.touch()
    outputs = [p.communicate(timeout=TIMEOUT_S) for p in processes]
    for process, (out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, f"exit {process.returncode}\n{out}\n{err}"


def _assert_at_head(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        current, head = schema_status(engine)
    finally:
        engine.dispose()
    assert current == head


def test_concurrent_db_upgrade_processes_all_succeed(database_url: str) -> None:
    command = [sys.executable, "-m", "bot", "db", "upgrade"]
    _run_together([command] * PROCESSES, _env(database_url))
    _assert_at_head(database_url)


def test_concurrent_ensure_schema_on_an_empty_database_all_succeed(
    database_url: str, tmp_path: Path
) -> None:
    ready, go = tmp_path / "ready", tmp_path / "go"
    ready.mkdir()
    command = [sys.executable, "-c", _ENSURE_SCHEMA, str(ready), str(go)]
    _run_together([command] * PROCESSES, _env(database_url), ready, go)
    _assert_at_head(database_url)
