"""/wsimg updates over one page: a summary per account and region first, each group's button
opening its images; filters (region, account, name glob) in any order; bad filters refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from bot.domain.pages import Entry, GroupSummary, ListingPage
from bot.fakes.slack import SlackUser, blocks_to_text, find_buttons, validate_blocks
from bot.runtime import build_services
from bot.slack import listing_view
from storage.db import session_scope
from storage.models import Listing, Offer
from tests.bot.digest_kit import following
from tests.conftest import APPROVER, SIGNING_SECRET, World, serve

REGIONS3 = ["us-east-1", "eu-west-1", "ap-south-1"]
ACCOUNT = "123456789012"  # the simulator's account: the one the credentials reach


class Three:
    """The real app with three configured regions, driven by signed HTTP like Slack."""

    def __init__(self, world: World, user: SlackUser) -> None:
        self.world, self.user = world, user

    def ask(self, text: str, channel_id: str = "C0OPS") -> dict[str, Any]:
        result = self.user.command(text, user_id=APPROVER, channel_id=channel_id)
        assert result.status == 200
        return self.world.slack.wait_for_response(
            result.response_url, lambda payload: bool(payload.get("blocks")), timeout=30
        )

    def open(self, button: dict[str, Any]) -> list[dict[str, Any]]:
        """The pages a button leads to: the one it opens and every Next after it."""
        result = self.user.click(
            button["action_id"], button["value"], user_id=APPROVER, channel_id="C0OPS"
        )
        page = self.world.slack.wait_for_response(result.response_url, timeout=30)
        return [page, *following(self.world, self.user, page, "C0OPS")]


@pytest.fixture
def three(world: World) -> Iterator[Three]:
    settings = world.services.settings.model_copy(update={"regions": REGIONS3})
    services = build_services(settings)
    url, server = serve(services)
    try:
        yield Three(world, SlackUser(url, SIGNING_SECRET, world.slack))
    finally:
        server.stop()
        services.engine.dispose()


def _text(message: dict[str, Any]) -> str:
    return blocks_to_text(message["blocks"])


def _openers(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in find_buttons(message["blocks"]) if b["action_id"].startswith("wsimg.open")]


def _fleet(world: World) -> dict[str, dict[str, str]]:
    """300 images in 3 regions, half of them Win11, half Win10."""
    images: dict[str, dict[str, str]] = {}
    for region in REGIONS3:
        for n in range(100):
            name = f"Win11-{region}-{n}" if n % 2 else f"Win10-{region}-{n}"
            image = world.simulator.add_image(region=region, name=name)
            images[image] = {"region": region, "account": ACCOUNT, "name": name}
    return images


def test_300_images_in_3_regions_answer_with_a_summary_whose_groups_open_every_image(
    world: World, three: Three
) -> None:
    images = _fleet(world)

    summary = three.ask("updates")

    assert validate_blocks(summary["blocks"]) == []
    text = _text(summary)
    assert "300 images have a WorkSpaces update available" in text
    assert not any(image in text for image in images)  # counts and a few names, no buttons
    assert not any(
        b["action_id"].startswith("wsimg.approve") for b in find_buttons(summary["blocks"])
    )
    for region in REGIONS3:
        assert f"{region}-" in text.split(f"{region} · account")[1].split("List them")[0]
    openers = _openers(summary)
    assert len(openers) == 3
    for region in REGIONS3:
        assert f"{region} · account {ACCOUNT}: 100 images with an update" in text

    reached: set[str] = set()
    for opener in openers:
        pages = three.open(opener)
        first = _text(pages[0])
        on_first = {image for image in images if image in first}
        # The group's first page holds only that group's images.
        assert len({(images[i]["region"], images[i]["account"]) for i in on_first}) == 1
        for page in pages:
            assert validate_blocks(page["blocks"]) == []
            listed = _text(page)
            reached |= {image for image in images if image in listed}
    assert reached == set(images)

    # Next on the summary pages through every image too.
    nexts = [b for b in find_buttons(summary["blocks"]) if b["action_id"].startswith("wsimg.page")]
    assert len(nexts) == 1
    pages = three.open(nexts[0])
    listed = "\n".join(_text(page) for page in pages)
    assert all(image in listed for image in images)


def test_filters_narrow_the_listing_in_any_order_and_combine_with_refresh(
    world: World, three: Three
) -> None:
    images = _fleet(world)

    def wanted(region: str | None, account: str | None, prefix: str | None) -> set[str]:
        return {
            image
            for image, about in images.items()
            if (region is None or about["region"] == region)
            and (account is None or about["account"] == account)
            and (prefix is None or about["name"].lower().startswith(prefix))
        }

    # 100 images of one account in one region: no summary of one line, its pages at once.
    first = three.ask(f"updates {ACCOUNT} eu-west-1")
    assert f"in account {ACCOUNT}" in _text(first) and "page 1 of" in _text(first)
    assert not _openers(first)
    pages = [first, *following(three.world, three.user, first, "C0OPS")]
    reached = {i for page in pages for i in images if i in _text(page)}
    assert reached == wanted("eu-west-1", ACCOUNT, None)

    # A glob, case-insensitive, in any order with `refresh`: 150 images, a summary.
    summary = three.ask("updates refresh WIN11-*")
    text = _text(summary)
    assert "150 images have a WorkSpaces update available" in text
    assert "named `WIN11-*`" in text
    reached: set[str] = set()
    for opener in _openers(summary):
        for listed in three.open(opener):
            reached |= {image for image in images if image in _text(listed)}
    assert reached == wanted(None, None, "win11-")

    # All three together: 5 images fit one page, shown as today with their buttons.
    page = three.ask("updates win10-*-? ap-south-1 " + ACCOUNT)
    text = _text(page)
    assert not _openers(page)
    shown = {i for i in images if i in text}
    assert shown == {
        i for i in wanted("ap-south-1", ACCOUNT, "win10-") if len(images[i]["name"]) == 18
    }
    assert len(shown) == 5
    assert all(three.world.image_button(page, image, "approve") for image in shown)


def test_a_filter_matching_nothing_says_so(world: World, three: Three) -> None:
    _fleet(world)
    text = _text(three.ask("updates Linux-*"))
    assert "No image named `Linux-*` in your configured regions has" in text
    text = _text(three.ask("updates 999999999999 eu-west-1"))
    assert "No image in account 999999999999 in `eu-west-1` has" in text


@pytest.mark.parametrize(
    ("words", "answer"),
    [
        ("updates mars-north-1", "not one of the configured regions"),
        ("updates 111111111111 222222222222", "at most one account"),
        ("updates eu-west-1 us-east-1", "at most one region"),
        ("updates Win-* Linux-*", "at most one image name pattern"),
        ("updates " + "W" * 65 + "*", "at most 64 characters"),
    ],
)
def test_a_bad_filter_gets_one_line_and_changes_nothing(
    world: World, words: str, answer: str
) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Untouched")
    text = _text(world.listing(words))
    assert answer in text and "\n" not in text.strip()
    assert world.simulator.count("DescribeWorkspaceImages") == 0
    with session_scope(world.services.engine) as session:
        assert session.exec(select(Listing)).all() == []


def test_the_summary_shows_where_updates_stand_never_who_or_why(world: World, three: Three) -> None:
    images = {
        world.simulator.add_image(region=region, name=f"Win-Mixed-{n}")
        for region in ("us-east-1", "eu-west-1")
        for n in range(15)
    }
    summary = three.ask("updates", channel_id="C0ELSEWHERE")
    opener = _openers(summary)[0]
    result = three.user.click(
        opener["action_id"], opener["value"], user_id=APPROVER, channel_id="C0ELSEWHERE"
    )
    page = world.slack.wait_for_response(result.response_url, timeout=30)
    approve, snooze = (
        next(b for b in find_buttons(page["blocks"]) if b["action_id"].startswith(prefix))
        for prefix in ("wsimg.approve", "wsimg.snooze")
    )
    for button in (approve, snooze):
        clicked = three.user.click(
            button["action_id"], button["value"], user_id=APPROVER, channel_id="C0ELSEWHERE"
        )
        world.slack.wait_for_response(clicked.response_url, timeout=30)

    text = _text(three.ask("updates"))
    assert "15 images with an update, 1 in flight, 1 snoozed" in text
    assert APPROVER not in text
    assert not any(image in text for image in images)


def test_a_summary_of_more_groups_than_a_message_holds_breaks_no_limit() -> None:
    listing = Listing(id="l" * 32, kind="updates", created_by=APPROVER, channel_id="C0OPS")
    offer = Offer(
        key="k",
        listing_id=listing.id,
        page=1,
        position=0,
        account_id=ACCOUNT,
        region="us-east-1",
        image_id="wsi-000000000",
        image_name="Win",
        platform="WINDOWS",
        listed_by=APPROVER,
    )
    groups = [
        GroupSummary(
            account_id=f"{n:012d}",
            region="us-east-1",
            count=30,
            overdue=1,
            in_flight=0,
            first_key=f"k{n}",
            position=n,
        )
        for n in range(80)
    ]
    page = ListingPage(
        listing=listing,
        page=1,
        pages=80,
        total_images=2400,
        total_regions=1,
        entries=[Entry(offer=offer, request=None)],
        groups=groups,
    )
    message = listing_view.listing(page)
    assert len(message["blocks"]) <= 50
    assert validate_blocks(message["blocks"]) == []
    text = blocks_to_text(message["blocks"])
    assert "more accounts and regions" in text and "Next" in text
