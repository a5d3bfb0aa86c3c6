"""The Home tab through the real app: shown when opened (a signed app_home_opened event),
refreshed when a rollout moves, Pause and Resume clicked on it, and each person shown only what
they may see. Signed HTTP, real boto3 against the simulator, SQLite and PostgreSQL.

Four eyes are on, so that a request can wait for a decision: APPROVER asks, GROUP_MEMBER (an
approver through the user group) decides and runs the rollout; OUTSIDER, no approver, may ask.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from bot.config import Settings
from bot.domain.ports import FleetGlance, Home, HomeRollout
from bot.fakes.slack import Message, SlackUser, find_buttons, validate_home_view
from bot.jobs import rollouts
from bot.jobs.scheduler import poll_job
from bot.runtime import build_services
from bot.slack import home_view
from bot.slack.inbound import Malformed, check, check_body
from bot.slack.render import blocks_to_text
from storage import fleet as fleet_store
from storage import rollouts as store
from storage.db import session_scope, unit_of_work
from storage.models import Rollout, State, UpdateRequest, utcnow
from tests.conftest import APPROVER, GROUP_MEMBER, OUTSIDER, SIGNING_SECRET, World

DECIDER = GROUP_MEMBER  # approves APPROVER's requests and runs their rollout (four eyes)
NOBODY = "U0NOBODY"  # no approver, asked for nothing
PRIVATE = "C0PRIVATE"
OPS = "C0OPS"
REGION = "us-east-1"
API_URL = "https://slack.com/api/"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"four_eyes": True, "rebuild_batch": 2})


# -- building the world -------------------------------------------------------------------------


def _requested(world: World, image: str, *, user_id: str, channel_id: str = OPS) -> UpdateRequest:
    listing = world.answer(world.command("updates", user_id=user_id, channel_id=channel_id))
    button = world.approve_button(listing, image)
    result = world.user.click(
        button["action_id"], button["value"], user_id=user_id, channel_id=channel_id
    )
    world.slack.wait_for_response(result.response_url, timeout=15)
    world.settle()
    [request] = world.requests(image)
    assert request.state == State.requested
    return request


def _approved(world: World, request: UpdateRequest) -> UpdateRequest:
    assert request.channel_id and request.message_ts
    message = world.slack.message(request.channel_id, request.message_ts)
    assert message is not None
    [approve] = [b for b in find_buttons(message.blocks) if b["text"] == "Approve"]
    world.user.click_button(
        approve, user_id=DECIDER, message=message, channel_id=request.channel_id
    )
    world.settle()
    request = world.reload(request)
    assert request.state == State.pending, request.state
    return request


def _in_thread(world: World, request: UpdateRequest, marker: str) -> Message:
    assert request.channel_id and request.message_ts
    found = [
        m
        for m in world.slack.thread(request.channel_id, request.message_ts)
        if marker in str(m.blocks)
    ]
    assert found, f"no {marker!r} message in the thread"
    return found[-1]


def _click_in_thread(world: World, message: Message, kind: str) -> None:
    [button] = [
        b
        for b in find_buttons(message.blocks)
        if b["action_id"].startswith(f"wsimg.rollout.{kind}")
    ]
    world.user.click_button(button, user_id=DECIDER, message=message, channel_id=message.channel)
    world.settle()


def _rebuilding(world: World) -> UpdateRequest:
    """APPROVER's update of an image on a bundle of four WorkSpaces, AVAILABLE, its bundle
    pointed and its first wave (two WorkSpaces) rebuilding."""
    sim = world.simulator
    source = sim.add_image(region=REGION, name="Win-Home-Rollout")
    bundle = sim.add_bundle(region=REGION, name="Finance", image_id=source)
    for n in range(4):
        sim.add_workspace(region=REGION, bundle_id=bundle, user_name=f"user{n}")
    request = _approved(world, _requested(world, source, user_id=APPROVER))
    sim.complete_pending()
    world.poll()
    request = world.reload(request)
    assert request.state == State.available
    _click_in_thread(world, _in_thread(world, request, "Rollout of"), "bundles")
    _click_in_thread(world, _in_thread(world, request, "Rollout of"), "rebuild")
    assert _rollout(world, request).state == "rebuilding"
    return request


def _rollout(world: World, request: UpdateRequest) -> Rollout:
    with session_scope(world.services.engine) as session:
        found = store.get(session=session, rollout_id=request.id)
    assert found is not None
    return found


def _fleet_in_flight(world: World) -> dict[str, UpdateRequest]:
    """A rollout rebuilding, an image building, and OUTSIDER's request waiting in a private
    channel."""
    rolling = _rebuilding(world)
    building = _approved(
        world,
        _requested(
            world, world.simulator.add_image(region=REGION, name="Win-Home-Build"), user_id=APPROVER
        ),
    )
    secret = world.simulator.add_image(region=REGION, name="Win-Payroll-Secret")
    waiting = _requested(world, secret, user_id=OUTSIDER, channel_id=PRIVATE)
    return {"rolling": rolling, "building": building, "waiting": waiting}


# -- reading the Home tab -----------------------------------------------------------------------


def _opened(world: World, user_id: str) -> dict[str, Any]:
    """``user_id`` opens the Home tab; the Home then shown to them."""
    before = len(world.slack.home_versions(user_id))
    result = world.user.open_home(user_id=user_id)
    assert result.status == 200, result.body
    world.settle()
    versions = world.slack.home_versions(user_id)
    assert len(versions) > before, "the Home tab was not published"
    return versions[-1]


def _text(view: dict[str, Any]) -> str:
    """The view as a person reads it (code spans without their backticks)."""
    return blocks_to_text(view["blocks"]).replace("`", "")


def _buttons(view: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in find_buttons(view["blocks"]) if b["action_id"].startswith(kind)]


# -- what it shows --------------------------------------------------------------------------------


def test_opening_home_shows_what_waits_what_builds_and_the_rollout_with_pause(
    world: World,
) -> None:
    made = _fleet_in_flight(world)

    view = _opened(world, DECIDER)

    assert validate_home_view({"type": "home", "blocks": view["blocks"]}) == []
    text = _text(view)
    waiting, building = made["waiting"], made["building"]
    assert "Waiting for a decision · 1" in text and "Win-Payroll-Secret" in text
    assert waiting.short_id in text
    assert "Building · 1" in text and f"building {building.new_image_id}" in text
    rolling = made["rolling"]
    assert f"Rebuild of {rolling.new_image_id}" in text
    assert "rebuilding: wave 1: 0 of 4 rebuilt, 2 rebuilding" in text
    assert "Finished lately · 1" in text  # the rollout's update itself, AVAILABLE
    [pause] = _buttons(view, "wsimg.rollout.pause")
    assert pause["value"] == rolling.id and pause["text"] == "Pause"

    # With four eyes, the update's own requester sees the rollout but no Pause to click.
    mine = _opened(world, APPROVER)
    assert f"Rebuild of {rolling.new_image_id}" in _text(mine)
    assert _buttons(mine, "wsimg.rollout") == []


def _wave_back(world: World) -> None:
    """The poll sees the rebuilds under way (REBUILDING), they end, and the next poll goes on."""
    rollouts.run(world.services)
    world.simulator.complete_pending()
    rollouts.run(world.services)


def test_a_wave_finishing_updates_the_home_of_a_user_who_opened_it(world: World) -> None:
    rolling = _rebuilding(world)
    first = _opened(world, DECIDER)
    assert "wave 1: 0 of 4 rebuilt, 2 rebuilding" in _text(first)

    _wave_back(world)

    second = world.slack.wait_for_home(DECIDER, lambda view: view != first)
    assert "wave 2: 2 of 4 rebuilt, 2 rebuilding" in _text(second)
    _wave_back(world)
    done = world.slack.wait_for_home(DECIDER, lambda view: "Rollouts · 0" in _text(view))
    assert f"Rebuild of {rolling.new_image_id}" not in _text(done)
    # Nobody opened it again: the job refreshed it. Who never opened it was shown none.
    assert len(world.slack.calls_to("views.publish")) == 3
    assert world.slack.home(OUTSIDER) is None


def test_a_request_requested_approved_and_built_updates_an_opened_home(world: World) -> None:
    opened = _opened(world, DECIDER)
    assert "Waiting for a decision · 0" in _text(opened)
    image = world.simulator.add_image(region=REGION, name="Win-Home-Moves")

    request = _requested(world, image, user_id=APPROVER)  # asked: the Home shows it waiting
    waiting = world.slack.wait_for_home(DECIDER, lambda v: "Win-Home-Moves" in _text(v))
    assert "Waiting for a decision · 1" in _text(waiting)

    _approved(world, request)  # approved: building
    building = world.slack.wait_for_home(DECIDER, lambda v: "Building · 1" in _text(v))
    assert "Waiting for a decision · 0" in _text(building)

    world.simulator.complete_pending()
    poll_job(world.services)  # the scheduler's poll: built, followed up
    done = world.slack.wait_for_home(DECIDER, lambda v: "Building · 0" in _text(v))
    assert "Win-Home-Moves" in _text(done)  # now among the finished


def test_another_process_redraws_a_home_opened_through_this_one(world: World) -> None:
    rolling = _rebuilding(world)
    first = _opened(world, DECIDER)
    # A worker: its own notifier, which has shown nobody a Home; the database says who opened.
    worker = build_services(world.services.settings, name_lookup_pause=0)
    try:
        rollouts.run(worker)
        world.simulator.complete_pending()
        rollouts.run(worker)
    finally:
        worker.engine.dispose()
    later = world.slack.wait_for_home(DECIDER, lambda view: view != first)
    assert f"Rebuild of {rolling.new_image_id}" in _text(later)
    assert "wave 2" in _text(later)
    assert world.slack.home(OUTSIDER) is None


def test_pause_and_resume_on_the_home_tab_work_and_show_in_the_thread(world: World) -> None:
    rolling = _rebuilding(world)
    [pause] = _buttons(_opened(world, DECIDER), "wsimg.rollout.pause")

    assert world.user.click_home(pause, user_id=DECIDER).status == 200
    world.settle()

    rollout = _rollout(world, rolling)
    assert rollout.state == "paused" and DECIDER in (rollout.paused_reason or "")
    view = world.slack.home(DECIDER)
    assert view is not None and "paused" in _text(view)
    [resume] = _buttons(view, "wsimg.rollout.resume")
    progress = _in_thread(world, rolling, "Rebuild of")
    assert "paused" in _text({"blocks": progress.blocks})  # the thread shows it too

    world.user.click_home(resume, user_id=DECIDER)
    world.settle()
    assert _rollout(world, rolling).state == "rebuilding"
    view = world.slack.home(DECIDER)
    assert view is not None and _buttons(view, "wsimg.rollout.pause")


def test_clicks_on_the_home_tab_that_may_not_are_refused_there(world: World) -> None:
    rolling = _rebuilding(world)
    [pause] = _buttons(_opened(world, DECIDER), "wsimg.rollout.pause")
    _opened(world, APPROVER)
    _opened(world, OUTSIDER)

    # The requester (four eyes) and someone who is no approver, with the same button.
    for user_id, why in ((APPROVER, "someone other than"), (OUTSIDER, "may not approve")):
        world.user.click_home(pause, user_id=user_id)
        world.settle()
        view = world.slack.home(user_id)
        assert view is not None and why in _text(view), _text(view)
    # A button the Home tab never shows (forged): refused, the source image untouched.
    retire = {"action_id": "wsimg.rollout.retire:x", "value": rolling.id, "text": "Retire"}
    world.user.click_home(retire, user_id=DECIDER)
    world.settle()
    view = world.slack.home(DECIDER)
    assert view is not None and "does not work on the Home tab" in _text(view)

    assert _rollout(world, rolling).state == "rebuilding"
    assert not [c for c in world.simulator.calls if c.operation == "DeleteWorkspaceImage"]


# -- who sees what ------------------------------------------------------------------------------


def test_a_non_approver_sees_only_their_own_requests(world: World) -> None:
    made = _fleet_in_flight(world)
    waiting = made["waiting"]

    nobody = _text(_opened(world, NOBODY))
    outsider = _text(_opened(world, OUTSIDER))
    approver = _text(_opened(world, DECIDER))

    # Someone else's request from a private channel: not its name, id, image or channel.
    for secret in ("Win-Payroll-Secret", waiting.short_id, waiting.source_image_id, PRIVATE):
        assert secret not in nobody
    assert "Waiting for a decision · 0" in nobody and "you asked for" in nobody
    # Its requester sees it; not the approvers' requests, their build or their rollout.
    assert "Win-Payroll-Secret" in outsider and waiting.short_id in outsider
    for theirs in ("Win-Home-Build", "Win-Home-Rollout", "Rebuild of"):
        assert theirs not in outsider
    assert "Rollouts · 0" in outsider and "Building · 0" in outsider
    # An approver sees every channel's.
    assert "Win-Payroll-Secret" in approver and "Win-Home-Build" in approver


def test_the_messages_tab_and_another_workspace_show_no_home(world: World) -> None:
    _requested(world, world.simulator.add_image(region=REGION, name="Win-Mine"), user_id=OUTSIDER)

    assert world.user.open_home(user_id=OUTSIDER, tab="messages").status == 200
    elsewhere = SlackUser(world.events_url, SIGNING_SECRET, world.slack, team_id="T0OTHER")
    assert elsewhere.open_home(user_id=OUTSIDER).status == 403
    world.settle()

    assert world.slack.calls_to("views.publish") == []


# -- the view and the shape checks, without the app ---------------------------------------------


def _request(n: int, state: State) -> UpdateRequest:
    now = utcnow()
    return UpdateRequest(
        id=f"{n:032x}",
        state=state.value,
        account_id="123456789012",
        region=REGION,
        source_image_id=f"wsi-{n:09d}",
        source_image_name=f"Win-<{n}>-" + "x" * 200,  # escaped, and long
        requested_by=APPROVER,
        approved_by=DECIDER,
        channel_id=OPS,
        new_image_id=f"wsi-{n + 1:09d}",
        created_at=now - timedelta(minutes=n),
        approved_at=now,
        completed_at=now,
    )


def test_a_home_of_a_large_fleet_stays_within_slacks_limits_and_says_what_it_left_out() -> None:
    rollouts_ = [
        HomeRollout(
            rollout=Rollout(
                id=f"{n:032x}",
                account_id="123456789012",
                region=REGION,
                source_image_id=f"wsi-{n:09d}",
                new_image_id=f"wsi-{n + 1:09d}",
                state="paused",
                paused_reason=f"paused by <@{DECIDER}>",
            ),
            request=_request(n, State.available),
            progress=None,
            may_decide=True,
        )
        for n in range(40)
    ]
    home = Home(
        user_id=DECIDER,
        everything=True,
        waiting=[_request(n, State.requested) for n in range(60)],
        building=[_request(n, State.pending) for n in range(60)],
        rollouts=rollouts_,
        finished=[_request(n, State.error) for n in range(10)],
        as_of=utcnow(),
        notice=":warning: something to say first",
        fleet=FleetGlance(updates=9_999, regions=33, scanned_at=utcnow() - timedelta(hours=5)),
    )

    view = home_view.home(home)

    assert validate_home_view(view) == []
    text, raw = _text(view), json.dumps(view)
    assert text.startswith("WorkSpaces image updates")
    assert "something to say first" in text
    assert (
        "9999 images have a WorkSpaces update available in 33 regions, as AWS showed it 5 h" in text
    )
    assert text.count("…and 45 more: /wsimg status all lists every one.") == 2  # 60 each
    assert "…and 25 more" in text  # of 40 rollouts
    assert len(find_buttons(view["blocks"])) == 15  # a Resume for each rollout shown
    assert "Win-&lt;1&gt;-" in raw and "Win-<1>" not in raw  # AWS names are shown, not parsed
    assert f"paused by <@{DECIDER}>" in raw  # the mention wsimg wrote stays one


def _event(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "event_callback",
        "team_id": "T0WSIMG",
        "api_app_id": "A0WSIMG",
        "event": {"type": "app_home_opened", "user": APPROVER, "tab": "home", "channel": "D1"},
        "authorizations": [{"team_id": "T0WSIMG", "user_id": "U0BOT", "is_bot": True}],
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    "changes",
    [
        {"event": "x"},
        {"event": {"type": "message", "user": APPROVER}},
        {"event": {"type": ["app_home_opened"], "user": APPROVER}},
        {"event": {"type": "app_home_opened", "user": "U" * 40}},
        {"event": {"type": "app_home_opened", "user": APPROVER, "view": "x"}},
        {"authorizations": "x"},
        {"authorizations": [{"team_id": {"id": "T"}}]},
        {"user": {"id": APPROVER}},
        {"team_id": "t-lower"},
        {"is_ext_shared_channel": "yes"},
    ],
)
def test_events_of_another_shape_are_refused_before_bolt(changes: dict[str, Any]) -> None:
    body = _event(**changes)
    with pytest.raises(Malformed):
        check(json.dumps(body).encode(), "application/json", api_url=API_URL)
    with pytest.raises(Malformed):
        check_body(body, api_url=API_URL)  # Socket Mode


def test_a_home_click_needs_no_response_url_and_any_other_click_still_does() -> None:
    home_click = {
        "type": "block_actions",
        "user": {"id": APPROVER},
        "container": {"type": "view", "view_id": "V1"},
        "view": {"id": "V1", "type": "home"},
        "actions": [{"action_id": "wsimg.rollout.pause:1", "value": "r"}],
    }
    check_body(home_click, api_url=API_URL)
    check_body(_event(), api_url=API_URL)
    for other in (
        {**home_click, "view": {"id": "V1", "type": "modal"}},
        {**home_click, "channel": {"id": OPS}},
        {**home_click, "container": {"type": "message"}},
    ):
        with pytest.raises(Malformed, match="response_url"):
            check_body(other, api_url=API_URL)


def _scan_began(world: World, ago: timedelta) -> None:
    """As if the last fleet scan had begun ``ago`` (and finished then)."""
    with unit_of_work(world.services.engine) as session:
        scan = fleet_store.scan_row(session=session)
        scan.started_at = scan.finished_at = utcnow() - ago
        session.add(scan)


def test_the_home_tab_says_how_many_images_the_last_scan_saw_with_an_update_and_when(
    world: World,
) -> None:
    """Read from the shared scan, never scanned for; the same line for everyone (anyone may
    `/wsimg updates`)."""
    for n in range(3):
        world.simulator.add_image(region=REGION, name=f"Win-Glance-{n}")
    world.simulator.add_image(region="eu-west-1", name="Win-Glance-West")
    world.simulator.add_image(region=REGION, name="Win-Current", update_available=False)

    before = _text(_opened(world, NOBODY))
    assert "Fleet · not scanned yet: /wsimg updates asks AWS" in before
    assert world.simulator.count("DescribeWorkspaceImages") == 0  # opening it scans nothing
    with session_scope(world.services.engine) as session:
        assert fleet_store.last_scan(session=session) is None  # nor writes anything

    world.listing()
    _scan_began(world, timedelta(minutes=20, seconds=5))
    for viewer in (NOBODY, DECIDER):
        seen = _text(_opened(world, viewer))
        assert "Fleet · 4 images have a WorkSpaces update available in 2 regions, as AWS " in seen
        assert "showed it 20 min ago (" in seen and "running" not in seen
        assert "/wsimg updates refresh asks AWS again" in seen
    # While another scan runs, the counts may mix it with the last one: the line says so.
    with unit_of_work(world.services.engine) as session:
        now = utcnow()
        assert fleet_store.claim_scan(
            session=session, worker="elsewhere", now=now, stale_before=now
        )
    assert "20 min ago (" in (during := _text(_opened(world, NOBODY)))
    assert "A scan is running now." in during
