"""`/wsimg updates` while a fleet scan runs (issue 10, part 4), through the real app: a scan that
takes a while is followed by a progress message ("3 of 4 regions done…") that the listing
then replaces; none when the snapshot is fresh; a listing that joins another request's scan
says it waits for it. AWS is slow here because the simulator answers each call after a
latency, so the scans take long enough to be reported on."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bot.config import Settings
from bot.fakes.slack import SlackWebAPI
from bot.fakes.workspaces import WorkSpacesSimulator
from bot.slack.progress import SHOWN_AFTER_S
from storage import fleet as store
from storage.db import session_scope
from tests.conftest import World, running_world, wait_until

FOUR_REGIONS = ["us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-2"]
LATENCY = 0.3  # seconds each AWS call waits: four pages in a row take over a second
DESCRIBE = "DescribeWorkspaceImages"
PROGRESS = re.compile(r"Scanning the fleet… (\d+) of (\d+) regions done")


def _four_regions(
    settings: Settings, simulator: WorkSpacesSimulator, slack: SlackWebAPI, **changes: Any
) -> Iterator[World]:
    """Four regions of one, two, three and four pages of images."""
    for pages, region in enumerate(FOUR_REGIONS, start=1):
        for n in range(25 * pages):
            simulator.add_image(region=region, name=f"Win-{region}-{n:03}")
    changed = settings.model_copy(update={"regions": FOUR_REGIONS, **changes})
    with running_world(changed, simulator, slack) as world:
        yield world


@pytest.fixture
def four(settings: Settings, simulator: WorkSpacesSimulator, slack: SlackWebAPI) -> Iterator[World]:
    yield from _four_regions(settings, simulator, slack)


@pytest.fixture
def kept(settings: Settings, simulator: WorkSpacesSimulator, slack: SlackWebAPI) -> Iterator[World]:
    """``four``, whose listings read a scan up to 15 minutes old (the production default)."""
    yield from _four_regions(settings, simulator, slack, scan_seconds=900)


def _progress(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in payloads if not p.get("blocks")]


def _scan_seconds(world: World) -> float:
    with session_scope(world.services.engine) as session:
        row = store.scan_row(session=session)
    assert row.started_at is not None and row.finished_at is not None
    return (row.finished_at - row.started_at).total_seconds()


def test_a_slow_scan_shows_how_many_regions_are_done_then_the_listing_replaces_it(
    four: World,
) -> None:
    four.simulator.latency = LATENCY
    result = four.command("updates")
    assert result.status == 200
    listing = four.answer(result, timeout=60)

    payloads = four.slack.responses_for(result.response_url)
    progress = _progress(payloads)
    assert progress, "no progress message while a scan of over a second ran"
    for message in progress:
        match = PROGRESS.match(message["text"])
        assert match is not None, message["text"]
        assert int(match.group(2)) == 4
        assert 0 <= int(match.group(1)) <= 4
        assert message["replace_original"] is True
        assert message["response_type"] == "ephemeral"
    # At most once a second over the scan's own duration, within Slack's five uses of the
    # response_url (the listing needs one).
    assert len(progress) <= min(len(SHOWN_AFTER_S), math.floor(_scan_seconds(four)) + 1)
    # Progress first, the listing last, replacing it: what the user sees now is the listing.
    assert payloads[-1] == listing
    assert listing["replace_original"] is True
    shown = four.slack.current_message(result.response_url)
    assert shown is not None
    assert shown["blocks"] == listing["blocks"]
    assert "250 images have a WorkSpaces update available" in str(listing["blocks"])


def test_a_listing_from_a_fresh_snapshot_shows_no_progress(kept: World) -> None:
    kept.listing()  # the scan, kept for 15 minutes
    kept.simulator.latency = LATENCY  # a scan now would be slow enough to be reported on
    scanned = kept.simulator.count(DESCRIBE)

    result = kept.command("updates")
    listing = kept.answer(result, timeout=60)

    assert kept.simulator.count(DESCRIBE) == scanned  # no scan
    assert kept.slack.responses_for(result.response_url) == [listing]
    assert "replace_original" not in listing


def test_a_listing_that_joins_a_running_scan_says_it_waits_for_it(four: World) -> None:
    hold = four.simulator.hold(DESCRIBE)
    first = four.command("updates")
    assert hold.wait_until_blocked()
    second = four.command("updates", user_id="U0OTHER")

    def waiting() -> list[dict[str, Any]]:
        return [
            p
            for p in four.slack.responses_for(second.response_url)
            if p.get("text") == "Waiting for the fleet scan another request started…"
        ]

    try:
        said = wait_until(waiting, "the second listing saying it waits for the first one's scan")
    finally:
        hold.release()
    answers = [four.answer(first, timeout=60), four.answer(second, timeout=60)]

    assert said[0]["replace_original"] is True
    assert four.simulator.count(DESCRIBE) == 10  # one scan: 1 + 2 + 3 + 4 pages
    assert all("250 images have a WorkSpaces update available" in str(a["blocks"]) for a in answers)
    assert answers[1]["replace_original"] is True
    shown = four.slack.current_message(second.response_url)
    assert shown is not None and shown["blocks"] == answers[1]["blocks"]
