"""The rollout when things go wrong: AWS errors and crashes between a claim and its record,
Pause and Cancel in the middle of a wave, lost replies, WorkSpaces that come back in another
state, and a Retire that would strand the accounts the source is shared with."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import update

from bot.aws.rollout import RolloutCalls
from bot.errors import AwsError
from bot.jobs import rollouts
from storage import rollouts as store
from storage.db import session_scope, unit_of_work
from storage.models import RolloutStep, StepState
from tests.conftest import APPROVER, World
from tests.handlers.test_rollout import (
    REGION,
    SHARED_WITH,
    _a_dead_worker,
    _available,
    _button,
    _click,
    _fleet,
    _plan,
    _progress,
    _rollout,
)


def _steps(world: World, rollout_id: str, kind: str) -> list[RolloutStep]:
    with session_scope(world.services.engine) as session:
        return store.steps(session=session, rollout_id=rollout_id, kind=kind)


def _rebuild_calls(world: World) -> list[str]:
    return [
        c.params["RebuildWorkspaceRequests"][0]["WorkspaceId"]
        for c in world.simulator.calls
        if c.operation == "RebuildWorkspaces"
    ]


def test_an_error_while_checking_a_bundle_leaves_no_claim_and_a_click_retries_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = _fleet(world)
    request = _available(world, fleet.source)
    real = RolloutCalls.bundles
    failures = iter([True])

    def flaky(self: RolloutCalls, **kwargs: Any) -> Any:
        if next(failures, False):
            raise AwsError(
                code="Throttling",
                aws_message="Rate exceeded",
                action="DescribeWorkspaceBundles",
                region=REGION,
                user_message="AWS throttled DescribeWorkspaceBundles. Try again.",
            )
        return real(self, **kwargs)

    monkeypatch.setattr(RolloutCalls, "bundles", flaky)
    answer = _click(world, _plan(world, request), "bundles")
    assert "throttled" in str(answer)
    steps = _steps(world, request.id, "bundle")
    assert StepState.claimed not in {s.state for s in steps}
    assert StepState.failed in {s.state for s in steps}

    _click(world, _plan(world, request), "bundles")  # the retry
    for bundle in fleet.bundles:
        assert world.simulator.bundle(bundle)["ImageId"] == request.new_image_id


def test_a_crash_inside_a_rebuild_leaves_it_unconfirmed_and_pauses_not_a_stuck_wave(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = _fleet(world, per_bundle=1)
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "bundles")

    def broken(self: RolloutCalls, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(RolloutCalls, "rebuild", broken)
    _click(world, _plan(world, request), "rebuild")
    steps = _steps(world, request.id, "workspace")
    assert StepState.claimed not in {s.state for s in steps}
    assert StepState.unconfirmed in {s.state for s in steps}
    assert _rollout(world, request).state == "paused"


def test_retire_is_refused_while_the_new_image_is_not_shared_like_the_source(
    world: World,
) -> None:
    fleet = _fleet(world)
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "bundles")
    plan = _plan(world, request)
    assert not [b for b in _buttons(plan) if "retire" in b["action_id"]]
    forged = world.user.click(
        "wsimg.rollout.retire:x", request.id, user_id=APPROVER, channel_id=plan.channel
    )
    world.settle()
    assert "share it first" in str(world.slack.responses_for(forged.response_url))
    assert not [c for c in world.simulator.calls if c.operation == "DeleteWorkspaceImage"]
    assert world.simulator.image_permissions(fleet.source) == [SHARED_WITH]


def _buttons(message: Any) -> list[dict[str, Any]]:
    from bot.fakes.slack.blockkit import find_buttons

    return find_buttons(message.blocks)


def test_a_share_left_by_a_process_that_died_is_finished_by_the_next_click(
    world: World,
) -> None:
    fleet = _fleet(world)
    request = _available(world, fleet.source)
    hold = world.simulator.hold("UpdateWorkspaceImagePermission")
    plan = _plan(world, request)
    button = _button(plan.blocks, "share")
    clicker = threading.Thread(
        target=world.user.click,
        args=(button["action_id"], button["value"]),
        kwargs={"user_id": APPROVER, "message": plan, "channel_id": plan.channel},
    )
    clicker.start()
    assert hold.wait_until_blocked()
    with unit_of_work(world.services.engine) as session:  # the process "dies" before the call
        session.execute(
            update(RolloutStep)
            .where(RolloutStep.rollout_id == request.id, RolloutStep.kind == "share")
            .values(claimed_by=_a_dead_worker(), state=StepState.claimed.value)
        )
    hold.release()
    clicker.join()
    world.settle()
    assert world.simulator.image_permissions(request.new_image_id or "") == [SHARED_WITH]


def test_pause_clicked_during_a_wave_stops_the_rest_of_it(world: World) -> None:
    fleet = _fleet(world, per_bundle=3)
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "bundles")
    hold = world.simulator.hold("RebuildWorkspaces")
    plan = _plan(world, request)
    button = _button(plan.blocks, "rebuild")
    world.user.click(
        button["action_id"],
        button["value"],
        user_id=APPROVER,
        message=plan,
        channel_id=plan.channel,
    )
    assert hold.wait_until_blocked()
    rollout = _rollout(world, request)
    from bot.domain import waves

    waves.decide(
        world.services,
        rollout_id=rollout.id,
        user_id=APPROVER,
        channel_id=plan.channel,
        what="pause",
    )
    hold.release()
    world.settle()
    assert len(_rebuild_calls(world)) == 1  # the one already on its way; no more
    states = [s.state for s in _steps(world, request.id, "workspace")]
    assert states.count(StepState.rebuilding) == 1 and states.count(StepState.waiting) == 5


def test_a_lost_rebuild_reply_is_sent_once_and_followed(world: World) -> None:
    fleet = _fleet(world, per_bundle=1)
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "bundles")
    world.simulator.lose_response("RebuildWorkspaces")
    _click(world, _plan(world, request), "rebuild")
    assert len(_rebuild_calls(world)) == 2  # two WorkSpaces, each asked once
    assert _rollout(world, request).state == "rebuilding"
    states = {s.state for s in _steps(world, request.id, "workspace")}
    assert states == {StepState.rebuilding}


def test_a_workspace_stopped_after_its_rebuild_is_done_and_an_unhealthy_one_pauses(
    world: World,
) -> None:
    sim = world.simulator
    fleet = _fleet(world, per_bundle=1)
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "bundles")
    _click(world, _plan(world, request), "rebuild")
    rollouts.run(world.services)  # seen REBUILDING
    stopped, sick = fleet.workspaces
    sim.set_workspace_state(stopped, "STOPPED")
    sim.set_workspace_state(sick, "UNHEALTHY")
    rollouts.run(world.services)
    steps = {s.target: s.state for s in _steps(world, request.id, "workspace")}
    assert steps == {stopped: StepState.done, sick: StepState.failed}
    rollout = _rollout(world, request)
    assert rollout.state == "paused" and "UNHEALTHY" in (rollout.paused_reason or "")


def test_an_aws_error_in_a_poll_shows_in_the_progress_message(world: World) -> None:
    fleet = _fleet(world, per_bundle=1)
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "bundles")
    world.simulator.deny("DescribeWorkspacesConnectionStatus")
    _click(world, _plan(world, request), "rebuild")
    text = str(_progress(world, request).blocks)
    assert "Stalled" in text and "workspaces:DescribeWorkspacesConnectionStatus" in text
    world.simulator.allow("DescribeWorkspacesConnectionStatus")
    rollouts.run(world.services)
    assert "Stalled" not in str(_progress(world, request).blocks)
    assert len(_rebuild_calls(world)) == 2


def test_a_wave_whose_process_died_redoes_only_what_it_never_asked_for(world: World) -> None:
    sim = world.simulator
    fleet = _fleet(world, per_bundle=2)
    request = _available(world, fleet.source)
    _click(world, _plan(world, request), "bundles")
    hold = sim.hold("RebuildWorkspaces", after=True)  # the first call is made, its reply held
    plan = _plan(world, request)
    button = _button(plan.blocks, "rebuild")
    clicker = threading.Thread(
        target=world.user.click,
        args=(button["action_id"], button["value"]),
        kwargs={"user_id": APPROVER, "message": plan, "channel_id": plan.channel},
    )
    clicker.start()
    assert hold.wait_until_blocked()
    with unit_of_work(world.services.engine) as session:  # the process "dies" in the call
        session.execute(
            update(RolloutStep)
            .where(RolloutStep.rollout_id == request.id, RolloutStep.kind == "workspace")
            .where(RolloutStep.state == StepState.claimed.value)
            .values(claimed_by=_a_dead_worker())
        )
    rollouts.run(world.services)  # the heir settles the wave's claims
    states = {s.target: (s.state, s.detail) for s in _steps(world, request.id, "workspace")}
    asked = _rebuild_calls(world)
    assert len(asked) == 1 and states[asked[0]][0] == StepState.rebuilding
    assert sorted(s for s, _ in states.values()).count(StepState.waiting) == 3
    hold.release()
    clicker.join()
    world.settle()
    for _ in range(4):
        rollouts.run(world.services)
        sim.complete_pending()
        rollouts.run(world.services)
    assert _rollout(world, request).state == "done"
    assert all(sim.rebuilds(ws) == 1 for ws in fleet.workspaces)
