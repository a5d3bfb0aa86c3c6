"""The fleet scan's progress (bot/domain/fleet.py): whoever asks for a snapshot may watch the
scan it runs; nothing is told when the snapshot is fresh. The real gateway against the
simulator, SQLite and PostgreSQL (tests/handlers/test_scan_progress.py shows it in Slack)."""

from __future__ import annotations

import threading
from datetime import timedelta

from bot.domain import fleet
from tests.conftest import REGIONS, World


def test_a_scan_tells_each_region_done_and_the_images_seen(world: World) -> None:
    for n in range(30):
        world.simulator.add_image(region="us-east-1", name=f"Win-East-{n:02}")
    world.simulator.add_image(region="eu-west-1", name="Win-West")
    heard: list[fleet.Progress] = []
    lock = threading.Lock()

    def watch(progress: fleet.Progress) -> None:
        with lock:
            heard.append(progress)

    found = fleet.snapshot(world.services, max_age=timedelta(0), progress=watch)

    assert heard[0] == fleet.Progress(done=0, total=len(REGIONS), accounts=1, images=0)
    assert heard[-1] == fleet.Progress(done=2, total=2, accounts=1, images=31)
    assert [p.done for p in heard] == sorted(p.done for p in heard)
    assert not any(p.joined for p in heard)
    assert len(found.images) == 31


def test_a_fresh_snapshot_tells_nothing(world: World) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Kept")
    fleet.snapshot(world.services, max_age=timedelta(0))
    heard: list[fleet.Progress] = []

    with fleet.watching(heard.append):
        found = fleet.snapshot(world.services, max_age=timedelta(minutes=15))

    assert heard == []
    assert [image.name for image in found.images] == ["Win-Kept"]


def test_a_watching_block_reaches_a_scan_run_through_a_listing_path(world: World) -> None:
    world.simulator.add_image(region="eu-west-1", name="Win-Watched")
    heard: list[fleet.Progress] = []

    with fleet.watching(heard.append):
        fleet.snapshot(world.services, max_age=timedelta(0))
    fleet.snapshot(world.services, max_age=timedelta(0))  # after the block: nobody is told

    assert heard[-1] == fleet.Progress(done=2, total=2, accounts=1, images=1)
    assert len([p for p in heard if p.done == 2]) == 1
