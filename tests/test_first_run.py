"""A first run as a new user tries it: every bad value stops `wsimg` with one line that names
the variable and says what to do, exit code 2, never a traceback (README, Configuration).

Each case runs `python -m bot …` as a process, in an environment cleaned of the machine's
SLACK_*, WSIMG_*, AWS_* and database settings, against the real fakes where one is needed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from botocore.retries.standard import ExponentialBackoff

from bot.aws.gateway import WorkSpacesGateway
from bot.fakes.slack import SlackWebAPI
from bot.fakes.workspaces import CLEARED_ENV, WorkSpacesSimulator
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.processes import WsimgProcess, free_port, process_env

REFUSED_TOKEN = "xoxb-1111-not-the-token-slack-knows"
PASSWORD = "pg-password-never-shown"
_OURS = ("SLACK_", "WSIMG_", "AWS_", "DATABASE_URL", "LOG_LEVEL", "PORT")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV and not k.startswith(_OURS)}
    # The default database (sqlite:///wsimg.db) lands in the test's folder, never elsewhere.
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/wsimg.db"
    env.update(extra)
    return env


def _wsimg(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "bot", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _stopped(result: subprocess.CompletedProcess[str], variable: str) -> str:
    """The one line a bad ``variable`` gives: exit 2, nothing else on stderr or stdout."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    [line] = lines
    assert line.startswith("wsimg: ") and variable in line, line
    assert result.stdout == ""
    return line


# -- DATABASE_URL ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("history",), ("db", "upgrade")], ids=" ".join)
def test_a_database_url_that_is_no_url_names_database_url(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    result = _wsimg(*command, env=_env(tmp_path, DATABASE_URL="nonsense"), cwd=tmp_path)
    line = _stopped(result, "DATABASE_URL")
    assert "sqlite:///" in line and "postgresql://" in line  # what to write instead
    assert "nonsense" not in line  # a URL is never echoed: it may carry a password


def test_a_database_wsimg_does_not_run_on_names_database_url(tmp_path: Path) -> None:
    env = _env(tmp_path, DATABASE_URL=f"mysql://wsimg:{PASSWORD}@127.0.0.1/wsimg")
    line = _stopped(_wsimg("history", env=env, cwd=tmp_path), "DATABASE_URL")
    assert "SQLite or PostgreSQL" in line and PASSWORD not in line


@pytest.mark.parametrize("command", [("history",), ("db", "upgrade")], ids=" ".join)
def test_a_postgresql_url_nothing_listens_on_names_database_url_without_its_password(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    port = free_port()
    url = f"postgresql://wsimg:{PASSWORD}@127.0.0.1:{port}/wsimg"
    env = _env(tmp_path, DATABASE_URL=url)
    line = _stopped(_wsimg(*command, env=env, cwd=tmp_path), "DATABASE_URL")
    assert f"127.0.0.1:{port}" in line
    assert "Connection refused" in line and "server runs" in line
    assert PASSWORD not in line and "***" in line


@pytest.mark.parametrize("command", [("history",), ("db", "upgrade")], ids=" ".join)
def test_a_sqlite_file_in_a_folder_that_does_not_exist_names_database_url(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    env = _env(tmp_path, DATABASE_URL=f"sqlite:///{missing}/wsimg.db")
    line = _stopped(_wsimg(*command, env=env, cwd=tmp_path), "DATABASE_URL")
    assert f"{missing}" in line and "does not exist" in line and "create the folder" in line
    assert not missing.exists()


# -- regions --------------------------------------------------------------------------------


def test_a_region_that_is_no_region_name_names_wsimg_regions(tmp_path: Path) -> None:
    env = _env(tmp_path, WSIMG_REGIONS="us east 1!")
    line = _stopped(_wsimg("updates", env=env, cwd=tmp_path), "WSIMG_REGIONS")
    assert "did you mean us-east-1?" in line


@pytest.mark.parametrize("variable", ["WSIMG_REGIONS", "AWS_REGION"])
def test_a_region_without_workspaces_suggests_the_nearest(tmp_path: Path, variable: str) -> None:
    env = _env(tmp_path, **{variable: "eu-wset-1"})
    line = _stopped(_wsimg("updates", env=env, cwd=tmp_path), variable)
    assert "'eu-wset-1' is not a region where Amazon WorkSpaces is offered" in line
    assert "did you mean eu-west-1?" in line


# -- WSIMG_DIGEST_CRON ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "channel", "command"),
    [
        ("bad cron", "", ("digest", "--dry-run")),  # no digest channel: refused all the same
        ("61 9 * * *", "", ("worker",)),
        ("0 9 * *", "C0OPS", ("serve",)),
    ],
    ids=["digest --dry-run", "worker", "serve with a digest channel"],
)
def test_a_bad_digest_cron_names_wsimg_digest_cron(
    tmp_path: Path, cron: str, channel: str, command: tuple[str, ...]
) -> None:
    env = _env(
        tmp_path,
        WSIMG_DIGEST_CRON=cron,
        WSIMG_REGIONS="us-east-1",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        **({"WSIMG_DIGEST_CHANNEL": channel} if channel else {}),
    )
    line = _stopped(_wsimg(*command, env=env, cwd=tmp_path), "WSIMG_DIGEST_CRON")
    assert "minute hour day-of-month month day-of-week" in line
    assert "/wsimg" not in line  # not Slack's help text


# -- Slack tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [("serve",), ("worker",), ("digest", "--channel", "C0OPS")], ids=" ".join
)
def test_a_bot_token_slack_refuses_names_slack_bot_token(
    tmp_path: Path, slack: SlackWebAPI, command: tuple[str, ...]
) -> None:
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=REFUSED_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        WSIMG_REGIONS="us-east-1",
        WSIMG_SCHEDULER="off",
        PORT=str(free_port()),
    )
    line = _stopped(_wsimg(*command, env=env, cwd=tmp_path), "SLACK_BOT_TOKEN")
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in line and "xoxb-" in line
    assert REFUSED_TOKEN not in line
    assert [(c.method, c.error) for c in slack.calls] == [("auth.test", "invalid_auth")]


def test_an_app_token_that_is_not_xapp_names_slack_app_token(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=REFUSED_TOKEN,  # a bot token pasted in the wrong place
        WSIMG_REGIONS="us-east-1",
    )
    line = _stopped(_wsimg("serve", env=env, cwd=tmp_path), "SLACK_APP_TOKEN")
    assert "xapp-" in line and REFUSED_TOKEN not in line


def test_a_port_in_use_names_port(
    tmp_path: Path, slack: SlackWebAPI, simulator: WorkSpacesSimulator
) -> None:
    port = free_port()
    env = process_env(
        simulator, slack, f"sqlite:///{tmp_path}/w.db", PORT=str(port), WSIMG_SCHEDULER="off"
    )
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", port))  # noqa: S104 (where `wsimg serve` listens)
        busy.listen()
        result = _wsimg("serve", env=env, cwd=tmp_path)
    # serve logs its start (at INFO) before it binds: the last line is the one that says why.
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"wsimg: Configuration error: PORT {port}:")
    assert "cannot listen there (Address already in use)" in result.stderr


# -- LOG_LEVEL and the library lines ---------------------------------------------------------


def test_a_bad_log_level_names_log_level(tmp_path: Path) -> None:
    env = _env(tmp_path, LOG_LEVEL="loud")
    line = _stopped(_wsimg("history", env=env, cwd=tmp_path), "LOG_LEVEL")
    assert "LOG_LEVEL 'loud' is not a log level" in line and "WARNING" in line


def test_alembic_says_nothing_unless_log_level_asks(tmp_path: Path) -> None:
    quiet = _wsimg("db", "upgrade", env=_env(tmp_path), cwd=tmp_path)
    asked = _wsimg(
        "db",
        "upgrade",
        env=_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/other.db", LOG_LEVEL="info"),
        cwd=tmp_path,
    )
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.startswith("database at revision ")
    assert asked.returncode == 0 and "INFO alembic.runtime.migration: Running upgrade" in (
        asked.stderr
    )


def test_the_worker_logs_its_own_lines_not_the_libraries(
    tmp_path: Path, slack: SlackWebAPI, simulator: WorkSpacesSimulator
) -> None:
    env = process_env(simulator, slack, f"sqlite:///{tmp_path}/w.db")
    env = {k: v for k, v in env.items() if k != "LOG_LEVEL"}
    worker = WsimgProcess("worker", env, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
    finally:
        assert worker.stop() == 0
    text = worker.log.read_text()
    assert "INFO wsimg: scheduler running" in text
    assert "alembic" not in text and "apscheduler" not in text, text
    assert "Traceback" not in text


# -- the command line itself -----------------------------------------------------------------


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    result = _wsimg("--version", env=_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wsimg {metadata.version('wsimg')}\n"


@pytest.mark.parametrize(
    ("command", "variables"),
    [
        (
            ("serve",),
            (
                "SLACK_BOT_TOKEN",
                "SLACK_SIGNING_SECRET",
                "SLACK_APP_TOKEN",
                "SLACK_API_URL",
                "DATABASE_URL",
                "WSIMG_REGIONS",
                "WSIMG_APPROVERS",
                "WSIMG_DIGEST_CRON",
                "WSIMG_SCHEDULER",
                "PORT",
                "AWS_RETRY_MODE",
                "AWS_MAX_ATTEMPTS",
                "LOG_LEVEL",
            ),
        ),
        (
            ("worker",),
            (
                "SLACK_BOT_TOKEN",
                "SLACK_API_URL",
                "DATABASE_URL",
                "WSIMG_REGIONS",
                "WSIMG_DIGEST_CHANNEL",
                "WSIMG_POLL_SECONDS",
                "AWS_MAX_ATTEMPTS",
                "LOG_LEVEL",
            ),
        ),
        (("demo",), ("LOG_LEVEL",)),
        (("db", "upgrade"), ("DATABASE_URL", "LOG_LEVEL")),
    ],
    ids=["serve", "worker", "demo", "db upgrade"],
)
def test_help_lists_the_variables_each_command_reads(
    tmp_path: Path, command: tuple[str, ...], variables: tuple[str, ...]
) -> None:
    result = _wsimg(*command, "--help", env=_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = result.stdout.partition("\nenvironment")[2]
    assert listed, result.stdout
    for variable in variables:
        assert f"\n  {variable} " in listed, (variable, result.stdout)
    if command == ("db", "upgrade"):
        assert "SLACK_BOT_TOKEN" not in listed and "PORT" not in listed


def test_updates_into_head_stops_quietly_when_head_has_enough(
    tmp_path: Path, simulator: WorkSpacesSimulator
) -> None:
    # About 200 kB of JSON: far more than a pipe holds, so `head` leaves before it is written.
    for n in range(600):
        simulator.add_image(region="us-east-1", name=f"Win-Fleet-{n:03d}")
    env = _env(tmp_path, **simulator.environment(), WSIMG_REGIONS="us-east-1")
    result = subprocess.run(
        [
            "/bin/bash",
            "-c",
            '"$0" -m bot updates --json | head -n 3; echo "wsimg exited ${PIPESTATUS[0]}" >&2',
            sys.executable,
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.splitlines() == ["{", '  "images": [', "    {"]
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.stderr == "wsimg exited 141\n"  # as a process SIGPIPE ended


# -- AWS_RETRY_MODE and AWS_MAX_ATTEMPTS -----------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"), [("AWS_RETRY_MODE", "fast"), ("AWS_MAX_ATTEMPTS", "0")]
)
def test_a_bad_retry_setting_names_it(tmp_path: Path, variable: str, value: str) -> None:
    env = _env(tmp_path, WSIMG_REGIONS="us-east-1", **{variable: value})
    _stopped(_wsimg("updates", env=env, cwd=tmp_path), variable)


def test_aws_max_attempts_is_honoured_by_updates(
    tmp_path: Path, simulator: WorkSpacesSimulator
) -> None:
    image = simulator.add_image(region="us-east-1", name="Win-Retried")
    env = _env(tmp_path, **simulator.environment(), WSIMG_REGIONS="us-east-1")

    simulator.throttle("DescribeWorkspaceImages", times=1)
    once = _wsimg("updates", "--json", env={**env, "AWS_MAX_ATTEMPTS": "1"}, cwd=tmp_path)
    tries_once = simulator.count("DescribeWorkspaceImages")
    simulator.clear_calls()
    simulator.throttle("DescribeWorkspaceImages", times=1)
    twice = _wsimg("updates", "--json", env={**env, "AWS_MAX_ATTEMPTS": "2"}, cwd=tmp_path)

    assert once.returncode == 1 and tries_once == 1  # no retry: the throttling is reported
    assert json.loads(once.stdout)["failures"][0]["code"] == "Throttling"
    assert twice.returncode == 0 and simulator.count("DescribeWorkspaceImages") == 2
    assert [i["image_id"] for i in json.loads(twice.stdout)["images"]] == [image]


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's retry decisions but skip its jittered sleeps (up to seconds each)."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


def test_standard_mode_and_five_attempts_stay_the_default(
    simulator: WorkSpacesSimulator, no_backoff: None
) -> None:
    simulator.throttle("DescribeWorkspaceImages", times=10)
    listing = WorkSpacesGateway(regions=["us-east-1"]).list_images()
    assert [f.error.code for f in listing.failures] == ["Throttling"]
    assert simulator.count("DescribeWorkspaceImages") == 5


def test_the_environment_sets_the_retry_mode_and_attempts_of_every_client(
    simulator: WorkSpacesSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def retries() -> dict[str, object]:
        gateway = WorkSpacesGateway(regions=["us-east-1"])
        # The client as the gateway builds it, with the Config it passes to boto3.
        client = gateway._build_client("workspaces", "us-east-1", gateway._session)
        return dict(client.meta.config.retries)

    default = retries()
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    from_environment = retries()
    explicit = WorkSpacesGateway(regions=["us-east-1"], retry_mode="legacy", max_attempts=2)

    assert default == {"mode": "standard", "total_max_attempts": 5}
    assert from_environment == {"mode": "adaptive", "total_max_attempts": 7}
    assert dict(
        explicit._build_client("sts", "us-east-1", explicit._session).meta.config.retries
    ) == {"mode": "legacy", "total_max_attempts": 2}  # what a caller passes still wins
