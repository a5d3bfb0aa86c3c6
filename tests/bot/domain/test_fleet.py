"""The shared fleet scan: listings read what the last scan saw, concurrent listings share one
scan, the listing says how old it is, `/wsimg updates refresh` and the scheduler's tick scan
again (issue 10, first part). Through the real app, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.config import Settings
from bot.domain import fleet
from bot.fakes.slack import SlackWebAPI, find_buttons
from bot.fakes.workspaces import WorkSpacesSimulator
from bot.jobs.scheduler import scan_job
from bot.runtime import build_services
from storage import fleet as store
from storage.db import unit_of_work
from storage.models import utcnow
from tests.conftest import APPROVER, World, running_world

DESCRIBE = "DescribeWorkspaceImages"


@pytest.fixture
def kept(settings: Settings, simulator: WorkSpacesSimulator, slack: SlackWebAPI) -> Iterator[World]:
    """A world whose listings read a scan up to 15 minutes old (the production default)."""
    with running_world(settings.model_copy(update={"scan_seconds": 900}), simulator, slack) as w:
        yield w


def _text(message: dict[str, Any]) -> str:
    return str(message["blocks"])


def test_two_concurrent_listings_share_one_scan(world: World) -> None:
    sim = world.simulator
    for n in range(30):  # two pages in one region
        sim.add_image(region="us-east-1", name=f"Win-Shared-{n:02}")
    world.listing()
    one_scan = sim.count(DESCRIBE)
    sim.clear_calls()

    hold = sim.hold(DESCRIBE)
    answers: list[dict[str, Any]] = []
    first = threading.Thread(target=lambda: answers.append(world.listing()))
    first.start()
    assert hold.wait_until_blocked()
    second = threading.Thread(target=lambda: answers.append(world.listing(user_id="U0OTHER")))
    second.start()
    time.sleep(0.5)  # the second is waiting for the first one's scan
    hold.release()
    first.join(30)
    second.join(30)

    assert sim.count(DESCRIBE) == one_scan
    assert len(answers) == 2
    assert all("30 images have a WorkSpaces update available" in _text(a) for a in answers)


def test_the_listing_says_how_old_the_scan_is_and_refresh_scans_again(kept: World) -> None:
    sim = kept.simulator
    sim.add_image(region="us-east-1", name="Win-Kept")
    first = kept.listing()
    assert "As AWS showed it just now" in _text(first)
    scanned = sim.count(DESCRIBE)

    later = sim.add_image(region="us-east-1", name="Win-Later")
    again = kept.listing()  # read from the snapshot: no AWS call, the new image not yet seen
    assert sim.count(DESCRIBE) == scanned
    assert later not in _text(again)

    fresh = kept.listing("updates refresh")
    assert sim.count(DESCRIBE) > scanned
    assert later in _text(fresh)


def test_the_listings_refresh_button_scans_again_with_the_same_filters(kept: World) -> None:
    sim = kept.simulator
    sim.add_image(region="us-east-1", name="Win-Kept")
    sim.add_image(region="us-east-1", name="Linux-Other")
    first = kept.listing("updates us-east-1 win-*")
    [refresh] = [b for b in find_buttons(first["blocks"]) if b["text"] == "Refresh"]
    later = sim.add_image(region="us-east-1", name="Win-Later")
    scanned = sim.count(DESCRIBE)

    fresh = kept.answer(kept.click(refresh))

    assert sim.count(DESCRIBE) > scanned  # scanned again
    assert later in _text(fresh) and "Linux-Other" not in _text(fresh)
    assert "named `win-*`" in _text(fresh) and "us-east-1" in _text(fresh)
    assert fresh["replace_original"] is True
    # A click from another channel than the listing's (a forged payload) scans nothing.
    sim.clear_calls()
    forged = kept.user.click(refresh["action_id"], refresh["value"], user_id=APPROVER,
                             channel_id="C0ELSEWHERE")  # fmt: skip
    assert "no longer valid" in _text(kept.answer(forged))
    assert sim.count(DESCRIBE) == 0


def test_the_scheduler_tick_scans_once_for_every_process(kept: World) -> None:
    sim = kept.simulator
    sim.add_image(region="us-east-1", name="Win-Tick")
    other = build_services(kept.services.settings, name_lookup_pause=0)  # a second process
    try:
        scan_job(kept.services)
        scanned = sim.count(DESCRIBE)
        assert scanned > 0
        scan_job(other)  # its tick finds the scan fresh: nothing asked
        assert sim.count(DESCRIBE) == scanned
    finally:
        other.engine.dispose()


class _Queries:
    """Which threads send SQL to the engine while the block runs."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.threads: set[int] = set()
        self.count = 0

    def _seen(self, *_args: Any) -> None:
        self.threads.add(threading.get_ident())
        self.count += 1

    def __enter__(self) -> _Queries:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def _fresh_in_threads(
    world: World, count: int, *, max_age: timedelta = timedelta(0)
) -> tuple[list[threading.Thread], list[object]]:
    ended: list[object] = []

    def one() -> None:
        try:
            fleet.fresh(world.services, max_age=max_age)
            ended.append("fresh")
        except BaseException as exc:  # noqa: BLE001 (shown by the assertion)
            ended.append(exc)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, ended


def test_threads_waiting_for_a_scan_run_here_do_not_ask_the_database_meanwhile(
    world: World,
) -> None:
    """Eight refreshes at once in one process: one scan, and while it waits for AWS nobody
    looks at the database (each waiter looked every 50 ms before). All eight end with it."""
    sim = world.simulator
    sim.add_image(region="us-east-1", name="Win-Waited")
    fleet.fresh(world.services, max_age=timedelta(0))
    one_scan = sim.count(DESCRIBE)
    sim.clear_calls()
    hold = sim.hold(DESCRIBE)
    threads, ended = _fresh_in_threads(world, 8)
    assert hold.wait_until_blocked()
    with _Queries(world.services.engine) as queries:
        time.sleep(0.5)  # ten looks per waiter, had they polled
    hold.release()
    for thread in threads:
        thread.join(30)

    assert queries.count == 0, queries.count
    assert ended == ["fresh"] * 8
    assert sim.count(DESCRIBE) == one_scan


def test_while_another_process_scans_one_thread_here_looks_for_its_end(world: World) -> None:
    """Another process holds the scan: of eight threads here that want it, one looks at the
    scan's row; when that scan ends, all eight return without scanning themselves."""
    sim = world.simulator
    sim.add_image(region="us-east-1", name="Win-Elsewhere")
    started = utcnow()
    with unit_of_work(world.services.engine) as session:
        store.scan_row(session=session)
    with unit_of_work(world.services.engine) as session:
        assert store.claim_scan(
            session=session, worker="another-process", now=started, stale_before=started
        )
    threads, ended = _fresh_in_threads(world, 8)
    with _Queries(world.services.engine) as queries:
        time.sleep(0.5)
    with unit_of_work(world.services.engine) as session:
        assert store.finish_scan(
            session=session,
            worker="another-process",
            started_at=started,
            finished_at=utcnow(),
            failures=[],
            gone=[],
        )
    for thread in threads:
        thread.join(30)

    assert queries.count > 0 and len(queries.threads) == 1, queries.threads
    assert ended == ["fresh"] * 8
    assert sim.count(DESCRIBE) == 0


def test_once_a_recent_enough_scan_is_known_here_asking_again_reads_nothing(
    kept: World,
) -> None:
    """A process that saw a scan finish knows when it began: eight listings' worth of threads
    for which it is recent enough (WSIMG_SCAN_SECONDS) return at once, without a query and
    without waiting their turn; one that wants it newer (refresh) still scans."""
    sim = kept.simulator
    sim.add_image(region="us-east-1", name="Win-Known")
    fleet.fresh(kept.services, max_age=timedelta(seconds=900))
    scanned = sim.count(DESCRIBE)

    with _Queries(kept.services.engine) as queries:
        threads, ended = _fresh_in_threads(kept, 8, max_age=timedelta(seconds=900))
        for thread in threads:
            thread.join(30)

    assert ended == ["fresh"] * 8
    assert queries.count == 0, queries.count
    assert sim.count(DESCRIBE) == scanned
    fleet.fresh(kept.services, max_age=timedelta(0))
    assert sim.count(DESCRIBE) > scanned
