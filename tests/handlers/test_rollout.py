"""The rollout through the real app: the plan posted when the update is AVAILABLE, the bundles
pointed once, the WorkSpaces rebuilt in waves, the new image shared like the source, the
source retired. Signed HTTP, real boto3 against the simulator, SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update

from bot.domain import waves
from bot.domain.identity import HOST
from bot.fakes.slack.api import Message
from bot.fakes.slack.blockkit import find_buttons
from bot.jobs import rollouts
from storage import rollouts as store
from storage.db import session_scope, unit_of_work
from storage.models import RolloutStep, State, StepState, UpdateRequest
from tests.conftest import APPROVER, World

OTHER_APPROVER = "U0APPROVER2"
SHARED_WITH = "210987654321"
REGION = "us-east-1"


@dataclass
class Fleet:
    source: str
    bundles: list[str]
    elsewhere: str
    workspaces: list[str]


def _fleet(world: World, *, per_bundle: int = 2) -> Fleet:
    sim = world.simulator
    source = sim.add_image(region=REGION, name="Win-Rollout")
    other = sim.add_image(region=REGION, name="Win-Other", update_available=False)
    bundles = [sim.add_bundle(region=REGION, name=f"Finance-{n}", image_id=source) for n in (1, 2)]
    elsewhere = sim.add_bundle(region=REGION, name="Elsewhere", image_id=other)
    workspaces = [
        sim.add_workspace(region=REGION, bundle_id=bundle, user_name=f"user{b}{n}")
        for b, bundle in enumerate(bundles)
        for n in range(per_bundle)
    ]
    sim.add_workspace(region=REGION, bundle_id=elsewhere, user_name="outsider")
    sim.share_image(source, SHARED_WITH)
    return Fleet(source, bundles, elsewhere, workspaces)


def _available(world: World, image: str) -> UpdateRequest:
    request = world.approved(image)
    world.simulator.complete_pending()
    world.poll()
    request = world.reload(request)
    assert request.state == State.available
    return request


def _plan(world: World, request: UpdateRequest) -> Message:
    assert request.channel_id and request.message_ts
    plans = [
        m
        for m in world.slack.thread(request.channel_id, request.message_ts)
        if "Rollout of" in str(m.blocks)
    ]
    assert plans, "no rollout plan in the thread"
    return plans[-1]


def _button(blocks: Any, kind: str) -> dict[str, Any]:
    found = [b for b in find_buttons(blocks) if b["action_id"].startswith(f"wsimg.rollout.{kind}")]
    assert found, f"no {kind} button in {blocks}"
    return found[0]


def _click(world: World, message: Message, kind: str, *, user_id: str = APPROVER) -> dict[str, Any]:
    button = _button(message.blocks, kind)
    result = world.user.click(
        button["action_id"],
        button["value"],
        user_id=user_id,
        message=message,
        channel_id=message.channel,
    )
    assert result.status == 200
    world.settle()
    return (
        world.slack.responses_for(result.response_url)[-1]
        if world.slack.responses_for(result.response_url)
        else {}
    )


def _has(world: World, request: UpdateRequest, kind: str) -> bool:
    return any(
        b["action_id"].startswith(f"wsimg.rollout.{kind}")
        for b in find_buttons(_plan(world, request).blocks)
    )


def _bundle_updates(world: World) -> Counter[str]:
    return Counter(
        c.params["BundleId"]
        for c in world.simulator.calls
        if c.operation == "UpdateWorkspaceBundle"
    )


def test_the_plan_names_the_bundles_using_the_source_their_workspaces_and_the_shares(
    world: World,
) -> None:
    fleet = _fleet(world)
    request = _available(world, fleet.source)

    text = str(_plan(world, request).blocks)
    for bundle in fleet.bundles:
        assert bundle in text
    assert "Finance-1" in text and "Finance-2" in text
    assert "2 WorkSpaces" in text
    assert SHARED_WITH in text, text
    assert fleet.elsewhere not in text and "Elsewhere" not in text
    assert "of 40 images" in text  # the region's image count against the quota

    # The same plan on demand, only where the update may be seen.
    asked = world.answer(world.command(f"rollout {request.short_id}"))
    assert "Finance-1" in str(asked["blocks"])
    elsewhere = world.answer(world.command(f"rollout {request.short_id}", channel_id="C0RANDOM"))
    assert "Finance-1" not in str(elsewhere["blocks"])


def test_pointing_the_bundles_twice_at_once_updates_each_bundle_once(world: World) -> None:
    fleet = _fleet(world)
    request = _available(world, fleet.source)
    plan = _plan(world, request)
    button = _button(plan.blocks, "bundles")

    def click(user: str) -> None:
        world.user.click(
            button["action_id"],
            button["value"],
            user_id=user,
            message=plan,
            channel_id=plan.channel,
        )

    clickers = [threading.Thread(target=click, args=(APPROVER,)) for _ in range(4)]
    for thread in clickers:
        thread.start()
    for thread in clickers:
        thread.join()
    world.settle()

    assert _bundle_updates(world) == Counter({b: 1 for b in fleet.bundles})
    for bundle in fleet.bundles:
        assert world.simulator.bundle(bundle)["ImageId"] == request.new_image_id
    assert world.simulator.bundle(fleet.elsewhere)["ImageId"] != request.new_image_id


def _a_dead_worker() -> str:
    pid = 4_000_000  # above any pid_max: no such process
    return f"{HOST}:{pid}:1:deadbeef"


def test_bundles_a_process_left_half_done_are_finished_once_by_the_next_poll(
    world: World,
) -> None:
    fleet = _fleet(world)
    fleet.bundles.append(
        world.simulator.add_bundle(region=REGION, name="Finance-3", image_id=fleet.source)
    )
    request = _available(world, fleet.source)
    hold = world.simulator.hold("UpdateWorkspaceBundle", after=True)
    plan = _plan(world, request)
    button = _button(plan.blocks, "bundles")
    # The click moves the first bundle and never learns of it (the process "dies" there).
    clicker = threading.Thread(
        target=world.user.click,
        args=(button["action_id"], button["value"]),
        kwargs={"user_id": APPROVER, "message": plan, "channel_id": plan.channel},
    )
    clicker.start()
    assert hold.wait_until_blocked()
    with unit_of_work(world.services.engine) as session:  # as a killed process leaves it
        session.execute(
            update(RolloutStep)
            .where(RolloutStep.rollout_id == request.id)
            .values(claimed_by=_a_dead_worker())
            .where(RolloutStep.state == StepState.claimed.value)
        )
    hold.release()  # the "dead" click goes on without its first bundle's record
    clicker.join()
    world.settle()
    rollouts.run(world.services)  # the heir: the orphaned bundle is re-checked, not moved again

    assert _bundle_updates(world) == Counter({b: 1 for b in fleet.bundles})
    with session_scope(world.services.engine) as session:
        steps = store.steps(session=session, rollout_id=request.id, kind="bundle")
    assert {s.state for s in steps} == {StepState.done}


@pytest.mark.parametrize("batch", [10])
def test_waves_skip_connected_pause_on_a_failure_and_never_rebuild_twice(
    world: World, batch: int
) -> None:
    sim = world.simulator
    fleet = _fleet(world, per_bundle=0)
    workspaces = [
        sim.add_workspace(region=REGION, bundle_id=fleet.bundles[n % 2], user_name=f"u{n}")
        for n in range(25)
    ]
    connected = workspaces[:3]
    for ws in connected:
        sim.set_connected(ws, True)
    broken = workspaces[5]
    sim.fail_rebuild(broken)
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "bundles")
    _click(world, _plan_now(world, request), "rebuild")

    for _ in range(20):
        rollouts.run(world.services)  # sees the wave REBUILDING
        sim.complete_pending()
        rollouts.run(world.services)  # sees it back: the next wave starts
        in_flight = sum(1 for ws in workspaces if sim.workspace(ws)["State"] == "REBUILDING")
        assert in_flight <= batch
        rollout = _rollout(world, request)
        if rollout.state == "paused":
            break
    rollout = _rollout(world, request)
    assert rollout.state == "paused"
    assert broken in (rollout.paused_reason or "")
    progress = _progress(world, request)
    assert "connected" in str(progress.blocks)

    # Resume goes on; the connected ones wait until their users disconnect.
    _click(world, _progress(world, request), "resume")
    for ws in connected:
        sim.set_connected(ws, False, at=0)
    for _ in range(20):
        rollouts.run(world.services)
        sim.complete_pending()
        rollouts.run(world.services)
        if _rollout(world, request).state == "done":
            break
    assert _rollout(world, request).state == "done"
    assert all(sim.rebuilds(ws) == 1 for ws in workspaces)
    assert "24 of 25 rebuilt" in str(_progress(world, request).blocks)
    with session_scope(world.services.engine) as session:
        steps = store.steps(session=session, rollout_id=request.id, kind="workspace")
    per_wave = Counter(step.wave for step in steps)
    assert max(per_wave.values()) <= batch and len(per_wave) >= 3
    assert all(step.wave == max(per_wave) for step in steps if step.target in connected)


def _rollout(world: World, request: UpdateRequest) -> Any:
    with session_scope(world.services.engine) as session:
        found = store.get(session=session, rollout_id=request.id)
    assert found is not None
    return found


def _plan_now(world: World, request: UpdateRequest) -> Message:
    return _plan(world, request)


def _progress(world: World, request: UpdateRequest) -> Message:
    assert request.channel_id and request.message_ts
    found = [
        m
        for m in world.slack.thread(request.channel_id, request.message_ts)
        if "Rebuild of" in str(m.blocks)
    ]
    assert found, "no progress message in the thread"
    return found[-1]


def test_share_makes_the_new_image_shared_with_exactly_the_sources_accounts(world: World) -> None:
    fleet = _fleet(world)
    world.simulator.share_image(fleet.source, "111122223333")
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "share")

    assert sorted(world.simulator.image_permissions(request.new_image_id or "")) == sorted(
        [SHARED_WITH, "111122223333"]
    )


def test_retire_is_refused_while_a_bundle_uses_the_source_then_unshares_and_deletes_once(
    world: World,
) -> None:
    fleet = _fleet(world)
    request = _available(world, fleet.source)
    plan = _plan(world, request)
    assert not [b for b in find_buttons(plan.blocks) if "retire" in b["action_id"]]

    # Refused while a bundle uses the source, even when asked by a forged click.
    forged = world.user.click(
        "wsimg.rollout.retire:x", request.id, user_id=APPROVER, channel_id=plan.channel
    )
    assert forged.status == 200
    world.settle()
    assert "still used by bundle" in str(world.slack.responses_for(forged.response_url))
    assert not [c for c in world.simulator.calls if c.operation == "DeleteWorkspaceImage"]

    _click(world, plan, "bundles")
    _click(world, _plan(world, request), "share")  # else its accounts would lose the image
    _click(world, _plan(world, request), "retire")

    calls = world.simulator.calls
    deletes = [c.params for c in calls if c.operation == "DeleteWorkspaceImage"]
    unshares = [
        c.params
        for c in calls
        if c.operation == "UpdateWorkspaceImagePermission" and not c.params["AllowCopyImage"]
    ]
    assert deletes == [{"ImageId": fleet.source}]
    assert unshares == [
        {"ImageId": fleet.source, "AllowCopyImage": False, "SharedAccountId": SHARED_WITH}
    ]
    with pytest.raises(KeyError):  # gone
        world.simulator.image_permissions(fleet.source)
    # A second click changes nothing and says who retired it.
    again = _click(world, _plan(world, request), "retire") if _has(world, request, "retire") else {}
    assert len([c for c in world.simulator.calls if c.operation == "DeleteWorkspaceImage"]) == 1
    assert "retire" not in str(again)


def test_a_missing_permission_reaches_slack_naming_it_and_a_click_after_the_fix_retries(
    world: World,
) -> None:
    fleet = _fleet(world)
    request = _available(world, fleet.source)
    world.simulator.deny("UpdateWorkspaceBundle")
    plan = _plan(world, request)
    button = _button(plan.blocks, "bundles")
    result = world.user.click(
        button["action_id"],
        button["value"],
        user_id=APPROVER,
        message=plan,
        channel_id=plan.channel,
    )
    world.settle()
    said = str(world.slack.responses_for(result.response_url))
    assert "workspaces:UpdateWorkspaceBundle" in said and "click the button again" in said

    world.simulator.allow("UpdateWorkspaceBundle")
    _click(world, _plan(world, request), "bundles")  # the plan offers the retry
    for bundle in fleet.bundles:
        assert world.simulator.bundle(bundle)["ImageId"] == request.new_image_id
    assert set(_bundle_updates(world)) == set(fleet.bundles)


def test_rollout_buttons_need_an_approver_in_the_rollouts_channel(world: World) -> None:
    fleet = _fleet(world)
    request = _available(world, fleet.source)
    plan = _plan(world, request)
    button = _button(plan.blocks, "bundles")
    outsider = world.user.click(
        button["action_id"],
        button["value"],
        user_id="U0NOBODY",
        message=plan,
        channel_id=plan.channel,
    )
    elsewhere = world.user.click(
        button["action_id"], button["value"], user_id=APPROVER, channel_id="C0RANDOM"
    )
    world.settle()
    assert "WSIMG_APPROVERS" in str(world.slack.responses_for(outsider.response_url))
    assert "use the buttons in its thread" in str(world.slack.responses_for(elsewhere.response_url))
    assert not _bundle_updates(world)


def test_the_listing_shows_each_regions_image_count_against_the_quota(world: World) -> None:
    fleet = _fleet(world)
    listing = world.listing()
    headings = [
        element["text"]
        for block in listing["blocks"]
        if block["type"] == "context"
        for element in block["elements"]
        if REGION in element["text"]
    ]
    assert any("2 of 40 images" in heading for heading in headings), headings
    assert fleet.source in str(listing["blocks"])


def test_a_workspace_still_showing_its_old_state_after_the_rebuild_call_is_not_counted_done(
    world: World,
) -> None:
    sim = world.simulator
    fleet = _fleet(world, per_bundle=1)
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "bundles")
    _click(world, _plan(world, request), "rebuild")
    # RebuildWorkspaces is asynchronous: Describe may still show AVAILABLE for a moment.
    for ws in fleet.workspaces:
        sim.set_workspace_state(ws, "AVAILABLE")
    rollouts.run(world.services)
    assert "0 of 2 rebuilt" in str(_progress(world, request).blocks)
    assert _rollout(world, request).state == "rebuilding"

    for ws in fleet.workspaces:
        sim.set_workspace_state(ws, "REBUILDING")
    rollouts.run(world.services)
    for ws in fleet.workspaces:
        sim.set_workspace_state(ws, "AVAILABLE")
    rollouts.run(world.services)
    assert _rollout(world, request).state == "done"
    assert "2 of 2 rebuilt" in str(_progress(world, request).blocks)


def test_two_processes_showing_progress_at_once_post_one_progress_message(world: World) -> None:
    fleet = _fleet(world, per_bundle=1)
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "bundles")
    rollout = _rollout(world, request)
    with world.slack.hold("chat.postMessage", when=lambda args: "Rebuild of" in str(args)):
        # The click starts the waves and posts the first progress message; it is held there
        # while a poll shows the progress too.
        plan = _plan(world, request)
        button = _button(plan.blocks, "rebuild")
        world.user.click(
            button["action_id"],
            button["value"],
            user_id=APPROVER,
            message=plan,
            channel_id=plan.channel,
        )
        world.slack.wait_for(
            lambda c: c.method == "chat.postMessage" and "Rebuild of" in str(c.args), timeout=15
        )
        waves.publish(world.services, rollout.id)  # the "other process"
    world.settle()
    waves.publish(world.services, rollout.id)
    assert request.channel_id and request.message_ts
    progress = [
        m
        for m in world.slack.thread(request.channel_id, request.message_ts)
        if "Rebuild of" in str(m.blocks)
    ]
    assert len(progress) == 1


def test_share_and_retire_stay_possible_after_the_rebuild_is_done(world: World) -> None:
    sim = world.simulator
    fleet = _fleet(world, per_bundle=1)
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "bundles")
    _click(world, _plan(world, request), "rebuild")
    for _ in range(5):
        rollouts.run(world.services)
        sim.complete_pending()
        rollouts.run(world.services)
    assert _rollout(world, request).state == "done"

    _click(world, _plan(world, request), "share")
    _click(world, _plan(world, request), "retire")
    assert sim.image_permissions(request.new_image_id or "") == [SHARED_WITH]
    assert [c.params for c in sim.calls if c.operation == "DeleteWorkspaceImage"] == [
        {"ImageId": fleet.source}
    ]


def test_a_plan_whose_bundles_aws_would_not_list_offers_no_retire(world: World) -> None:
    fleet = _fleet(world)
    request = _available(world, fleet.source)
    world.simulator.deny("DescribeWorkspaceBundles")
    asked = world.answer(world.command(f"rollout {request.short_id}"))
    text = str(asked["blocks"])
    assert "AWS would not list them" in text and "none uses" not in text
    assert "workspaces:DescribeWorkspaceBundles" in text
    assert not [b for b in find_buttons(asked["blocks"]) if "retire" in b["action_id"]]
