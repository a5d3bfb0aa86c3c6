"""How a scan stores what it saw (bot/domain/fleet.py ``_scan``, storage/fleet.py): page by
page while it waits for AWS, only the images that changed, the gone ones removed from the
account-regions it read whole, never after it lost its claim, and a failed write ends the scan
without keeping the claim. Real boto3 against the simulator, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from bot.domain import fleet
from bot.errors import WsimgError
from storage import fleet as store
from storage.db import session_scope, unit_of_work
from storage.models import FleetImage, FleetScan
from tests.conftest import World

DESCRIBE = "DescribeWorkspaceImages"
EAST, WEST = "us-east-1", "eu-west-1"


def _scan(world: World) -> None:
    fleet.fresh(world.services, max_age=timedelta(0))


def _rows(world: World) -> dict[str, FleetImage]:
    with session_scope(world.services.engine) as session:
        return {row.image_id: row for row in store.images(session=session)}


def _scan_row(world: World) -> FleetScan:
    with session_scope(world.services.engine) as session:
        return store.scan_row(session=session)


def test_a_rescan_writes_only_what_changed_and_forgets_what_is_gone(world: World) -> None:
    sim = world.simulator
    ids = [sim.add_image(region=EAST, name=f"Win-Kept-{n:02}") for n in range(30)]  # two pages
    west = sim.add_image(region=WEST, name="Win-West")
    _scan(world)
    first = _rows(world)
    assert set(first) == {*ids, west}

    renamed, withdrawn, removed = ids[0], ids[1], ids[29]
    sim.rename(renamed, "Win-Renamed")
    sim.withdraw_update(withdrawn)
    sim.remove_image(removed)
    added = sim.add_image(region=WEST, name="Win-Added")
    _scan(world)
    second = _rows(world)

    assert set(second) == {*ids, west, added} - {removed}
    assert second[renamed].name == "Win-Renamed"
    assert second[withdrawn].update_available is False
    started = _scan_row(world).started_at
    for changed in (renamed, withdrawn, added):
        assert second[changed].scanned_at == started
    # The others were not written again: they keep the first scan's stamp.
    unchanged = set(second) - {renamed, withdrawn, added}
    assert unchanged and all(second[i].scanned_at == first[i].scanned_at for i in unchanged)
    assert all(first[i].scanned_at < started for i in unchanged)


def test_a_region_that_cannot_be_read_keeps_what_was_stored(world: World) -> None:
    sim = world.simulator
    east = sim.add_image(region=EAST, name="Win-East")
    west = sim.add_image(region=WEST, name="Win-West")
    _scan(world)

    sim.remove_image(west)
    sim.remove_image(east)
    sim.deny(DESCRIBE, region=WEST)
    _scan(world)

    assert set(_rows(world)) == {west}  # gone from the east; the west could not be read
    assert any(f.startswith(f"{WEST} ") for f in _scan_row(world).failures)


def test_a_write_that_fails_ends_the_scan_and_frees_its_claim(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.simulator.add_image(region=EAST, name="Win-East")
    real = store.store_images

    def broken(**kwargs: Any) -> bool:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(store, "store_images", broken)
    with pytest.raises(RuntimeError, match="disk is full"):
        _scan(world)
    assert _scan_row(world).running_by is None
    assert _rows(world) == {}

    monkeypatch.setattr(store, "store_images", real)
    _scan(world)
    assert len(_rows(world)) == 1


def test_a_scan_that_lost_its_claim_stores_nothing_more(world: World) -> None:
    sim = world.simulator
    sim.add_image(region=EAST, name="Win-East")
    _scan(world)
    before = _scan_row(world)
    sim.add_image(region=EAST, name="Win-Late")

    def stolen() -> None:  # another process took the claim over meanwhile
        with unit_of_work(world.services.engine) as session:
            session.execute(update(FleetScan).values(running_by="someone-else"))

    hold = sim.hold(DESCRIBE)
    done: list[BaseException | None] = []

    def run() -> None:
        try:
            _scan(world)
            done.append(None)
        except (WsimgError, RuntimeError) as exc:
            done.append(exc)

    scan = threading.Thread(target=run)
    scan.start()
    assert hold.wait_until_blocked()
    stolen()
    hold.release()
    scan.join(30)

    assert done == [None]
    assert "Win-Late" not in {row.name for row in _rows(world).values()}
    after = _scan_row(world)
    assert after.running_by == "someone-else"  # its claim, not freed by the one that lost it
    assert after.started_at == before.started_at
