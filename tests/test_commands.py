"""The command line as people run it: `wsimg demo`, `wsimg updates`, `wsimg db upgrade`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.fakes.workspaces import CLEARED_ENV, WorkSpacesSimulator
from storage.db import make_engine, schema_status
from tests.conftest import APPROVER, World


def _wsimg(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "bot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in CLEARED_ENV and not k.startswith(("SLACK_", "WSIMG_", "AWS_"))
    }
    env.update(extra)
    return env


def test_demo_prints_the_listing_the_approval_the_follow_up_and_the_rollout() -> None:
    result = _wsimg("demo", env=_clean_env())
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    out = result.stdout
    assert "/wsimg updates" in out
    assert "have a WorkSpaces update available" in out
    assert "approved the WorkSpaces update of" in out
    assert "reply in thread" in out and "is AVAILABLE" in out

    # The rollout, after the AVAILABLE follow-up and in its thread: the plan, each step a click
    # on its button with Slack's confirm dialog, and what it changed.
    rollout, _, bulk = (
        out.partition("is AVAILABLE, updated from")[2]
        .partition("> bob in #random")[0]
        .partition("> alice in #it-ops: /wsimg updates eu-west-1")
    )
    assert "Rollout of" in rollout, out
    for label in ("Point 2 bundles", "Rebuild 5 WorkSpaces", "Share with 1 account", "Retire"):
        assert f"> alice in #it-ops clicked [{label}" in rollout, (label, out)
    assert rollout.count("Slack asked first:") == 4, out
    assert "bundles pointed by @alice" in rollout, out
    assert "on the new image" in rollout, out
    # Two WorkSpaces a wave: two waves take the four idle ones while the connected one waits,
    # then a third takes it once its user disconnected.
    waves = [int(n) for n in re.findall(r"Rebuild of `wsi-\w+` — \w+: wave (\d+):", rollout)]
    assert waves[0] == 1 and 2 in waves, out
    assert re.search(r"wave 1: 0 of 5 rebuilt, 2 rebuilding, 1 skipped \(connected\)", rollout)
    assert re.search(r"wave 2: 4 of 5 rebuilt, 1 skipped \(connected\)", rollout), out
    assert "done: wave 3: 5 of 5 rebuilt, 0 failed" in rollout, out
    assert "shared by @alice" in rollout, out
    assert re.search(r"the new image with \d{12}\.", rollout), out
    assert "source retired by @alice" in rollout, out
    assert "Shared: the source with no account" in rollout, out

    # Then every update of one region approved with one click: one batch, two building at a
    # time, the others queued, all AVAILABLE in the end, each follow-up in the batch's thread.
    assert re.search(r"clicked \[Approve all (\d+)\]", bulk), out
    count = int(re.search(r"clicked \[Approve all (\d+)\]", bulk).group(1))  # type: ignore[union-attr]
    assert f'Slack asked first: "Approve {count} updates?"' in bulk, out
    assert f"approved the WorkSpaces updates of {count} images" in bulk, out
    assert "queued" in bulk and "2 building" in bulk, out
    assert f"+ {count} AVAILABLE" in bulk, out
    assert bulk.count("↳ reply in thread") >= count, out

    # Then the channel's digest and alice's Home tab, each saying how old the scan it shows is.
    digest = bulk.partition("> alice in #it-ops: /wsimg digest")[2]
    assert ":calendar: WorkSpaces image digest" in digest, out
    assert re.search(r"digest — .*\n\s+As AWS showed it just now \(\d\d:\d\d UTC\)", digest), out
    home = digest.partition("> alice opened wsimg's Home tab")[2]
    assert re.search(
        r"Fleet · \d+ images have a WorkSpaces update available in 2 regions, as AWS showed "
        r"it just now",
        home,
    ), out


def test_updates_prints_the_listing_and_json(tmp_path: Path) -> None:
    with WorkSpacesSimulator() as simulator:
        win = simulator.add_image(region="us-east-1", name="Win-Cli")
        linux = simulator.add_image(region="eu-west-1", name="Linux-Cli", platform="LINUX")
        simulator.add_image(region="eu-west-1", name="Current", update_available=False)
        env = _clean_env(**simulator.environment(), WSIMG_REGIONS="us-east-1,eu-west-1")

        text = _wsimg("updates", env=env)
        data = _wsimg("updates", "--json", env=env)
        one = _wsimg("updates", "--region", "eu-west-1", "--json", env=env)

    assert text.returncode == 0, text.stderr
    assert win in text.stdout and linux in text.stdout and "cannot be updated" in text.stdout
    images = json.loads(data.stdout)["images"]
    assert {i["image_id"]: i["updatable"] for i in images} == {win: True, linux: False}
    assert [i["image_id"] for i in json.loads(one.stdout)["images"]] == [linux]


def test_db_upgrade_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    for _ in range(2):
        result = _wsimg("db", "upgrade", env=_clean_env(DATABASE_URL=url))
        assert result.returncode == 0, result.stderr
        current, head = schema_status(make_engine(url))
        assert current == head
        assert f"database at revision {head}" in result.stdout


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_serve_and_worker_without_a_token_say_what_is_missing(tmp_path: Path, command: str) -> None:
    result = _wsimg(command, env=_clean_env(DATABASE_URL=f"sqlite:///{tmp_path}/x.db"))
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in result.stderr


def test_digest_dry_run_prints_the_digest_without_slack(tmp_path: Path) -> None:
    with WorkSpacesSimulator() as simulator:
        win = simulator.add_image(region="us-east-1", name="Win-Morning")
        simulator.add_image(region="us-east-1", name="Current", update_available=False)
        env = _clean_env(
            **simulator.environment(),
            WSIMG_REGIONS="us-east-1",
            DATABASE_URL=f"sqlite:///{tmp_path}/wsimg.db",
            SLACK_API_URL="http://127.0.0.1:9/api/",  # nothing listens: any Slack call fails
        )
        result = _wsimg("digest", "--dry-run", env=env)
        without_channel = _wsimg("digest", env=env)

    assert result.returncode == 0, result.stderr
    assert "WorkSpaces image digest — 1 image has a WorkSpaces update available" in result.stdout
    assert "Win-Morning" in result.stdout and win in result.stdout
    assert "[ Approve ]" in result.stdout and "[ Snooze 7 days ]" in result.stdout
    assert "Current" not in result.stdout
    assert without_channel.returncode == 2
    assert "--channel or WSIMG_DIGEST_CHANNEL" in without_channel.stderr


def test_history_json_exports_every_request_with_its_events(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Audited")
    world.approve(image)
    env = _clean_env(DATABASE_URL=world.services.settings.database_url)

    exported = _wsimg("history", "--json", env=env)
    text = _wsimg("history", env=env)

    assert exported.returncode == 0, exported.stderr
    [request] = json.loads(exported.stdout)["requests"]
    assert request["source_image_id"] == image and request["state"] == "pending"
    assert request["requested_by"] == APPROVER and request["approved_by"] == APPROVER
    kinds = [(e["kind"], e["actor"]) for e in request["events"]]
    assert kinds[:3] == [("requested", APPROVER), ("approved", APPROVER), ("submitting", "wsimg")]
    assert ("created", "wsimg") in kinds
    assert all(e["at"] for e in request["events"])
    assert text.returncode == 0 and "Win-Audited" in text.stdout and "approved by" in text.stdout
