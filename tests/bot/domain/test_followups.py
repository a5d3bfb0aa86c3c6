"""Follow-ups: the poller finishes pending requests and replies in the approval thread."""

from __future__ import annotations

import subprocess
import threading
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col, select

from bot.domain.identity import HOST, WORKER_ID, started
from bot.domain.poller import NOT_FOUND_GRACE, ORPHAN_AFTER
from storage import crud
from storage.db import session_scope, unit_of_work
from storage.models import State, UpdateRequest, utcnow
from tests.conftest import APPROVER, World


def _rewind(world: World, request_id: str, to: State, **values: object) -> None:
    """Move a pending request back to `to`, last touched long enough ago to be an orphan."""
    with unit_of_work(world.services.engine) as session:
        assert crud.transition(
            session=session,
            request_id=request_id,
            from_states=[State.pending],
            to=to,
            updated_at=utcnow() - ORPHAN_AFTER * 2,
            **values,
        )


def test_available_follow_up_names_the_new_image_in_the_approval_thread(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Follow")
    request = world.approved(image)

    assert world.poll().followups == 0  # still PENDING: nothing to say yet
    world.simulator.complete_pending()
    report = world.poll()

    assert report.finished == 1 and report.followups == 1
    # The follow-up, then the rollout plan (bundles, shares, what is left to do).
    reply, plan = world.slack.thread(request.channel_id, request.message_ts)
    assert "Rollout of" in str(plan.blocks)
    assert request.new_image_id in str(reply.blocks)
    assert "AVAILABLE" in str(reply.blocks)
    assert world.reload(request.id).state == State.available
    assert world.poll().followups == 0  # posted once, not again


def test_error_follow_up_carries_the_code_and_message(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Broken")
    world.simulator.fail_build(image, "UpdateFailed", "The agent installer exited with 1603")
    request = world.approved(image)
    world.simulator.complete_pending()
    world.poll()

    [reply] = world.slack.thread(request.channel_id, request.message_ts)
    text = str(reply.blocks)
    assert "ERROR" in text and "UpdateFailed" in text and "exited with 1603" in text
    final = world.reload(request.id)
    assert final.state == State.error
    assert final.error_code == "UpdateFailed"


def test_pending_images_are_described_in_batches_of_25(world: World) -> None:
    world.simulator.image_limit = 100  # above the default quota of 40, to have 30 pending
    settings = world.services.settings  # and above the 10 builds at once wsimg allows
    world.services.settings = settings.model_copy(update={"max_concurrent_updates": 30})
    images = [world.simulator.add_image(region="us-east-1", name=f"Win-{n}") for n in range(30)]
    buttons = world.approve_buttons(world.all_pages(world.listing()))
    for button in buttons:
        world.slack.wait_for_response(world.click(button).response_url, timeout=15)
    assert world.simulator.count("CreateUpdatedWorkspaceImage") == len(images)
    world.simulator.clear_calls()

    world.poll()

    describes = [c for c in world.simulator.calls if c.operation == "DescribeWorkspaceImages"]
    assert sorted(len(c.params["ImageIds"]) for c in describes) == [5, 25]


def _backdate_submission(world: World, request_id: str, by: timedelta) -> None:
    with session_scope(world.services.engine) as session:
        request = crud.get_request(session=session, request_id=request_id)
        assert request is not None and request.submitted_at is not None
        request.submitted_at -= by
        session.add(request)
        session.commit()


def test_a_deleted_image_ends_the_request_in_error_once_it_is_not_new(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Gone")
    request = world.approved(image)
    world.simulator.remove_image(request.new_image_id)
    world.poll()  # just created: Describe may not list it yet, so no verdict
    assert world.reload(request.id).state == State.pending

    _backdate_submission(world, request.id, NOT_FOUND_GRACE * 2)
    world.poll()
    final = world.reload(request.id)
    assert final.state == State.error
    assert "no longer exists" in (final.error_message or "")


def test_a_request_orphaned_in_submitting_is_found_by_its_name_not_created_again(
    world: World,
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Orphan")
    request = world.approved(image)
    # Rewind the row to how a crash right after the AWS call would have left it.
    _rewind(world, request.id, State.submitting, new_image_id=None)
    world.simulator.clear_calls()

    world.poll()

    assert world.simulator.count("CreateUpdatedWorkspaceImage") == 0
    final = world.reload(request.id)
    assert final.state == State.pending
    assert final.new_image_id == request.new_image_id


def test_a_thread_that_can_never_take_the_follow_up_sends_it_to_the_approver(
    world: World,
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Archived")
    request = world.approved(image)
    world.simulator.complete_pending()
    world.slack.fail("chat.postMessage", "is_archived")

    assert world.poll().followups == 1
    [dm] = [c for c in world.slack.calls_to("chat.postMessage") if c.args["channel"] == APPROVER]
    assert request.new_image_id in str(dm.args) and "AVAILABLE" in str(dm.args)
    assert world.poll().followups == 0


def test_a_follow_up_no_one_can_take_is_recorded_and_not_retried_forever(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Nowhere")
    request = world.approved(image)
    world.simulator.complete_pending()
    world.slack.fail("chat.postMessage", "channel_not_found", times=2)

    assert world.poll().followups == 0
    calls = len(world.slack.calls_to("chat.postMessage"))
    world.poll()
    assert len(world.slack.calls_to("chat.postMessage")) == calls
    with session_scope(world.services.engine) as session:
        kinds = [e.kind for e in crud.events(session=session, request_id=request.id)]
    assert "followup_undeliverable" in kinds


def test_a_passing_slack_failure_is_retried_on_the_next_poll(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Retry")
    request = world.approved(image)
    world.simulator.complete_pending()
    world.slack.fail("chat.postMessage", "internal_error")

    assert world.poll().followups == 0
    assert world.poll().followups == 1
    reply, _plan = world.slack.thread(request.channel_id, request.message_ts)
    assert "AVAILABLE" in str(reply.blocks)


def test_a_region_that_fails_does_not_hold_up_the_follow_ups_of_another(world: World) -> None:
    east = world.simulator.add_image(region="us-east-1", name="Win-East")
    west = world.simulator.add_image(region="eu-west-1", name="Win-West")
    world.approve(east)
    world.approve(west)
    world.simulator.complete_pending()
    world.simulator.deny("DescribeWorkspaceImages", region="us-east-1")

    report = world.poll()

    assert report.finished == 1 and report.followups == 1
    with session_scope(world.services.engine) as session:
        states = {r.region: r.state for r in session.exec(select(UpdateRequest))}
    assert states == {"us-east-1": State.pending, "eu-west-1": State.available}
    world.simulator.allow("DescribeWorkspaceImages")
    assert world.poll().followups == 1


def test_a_request_orphaned_in_approved_is_submitted_once_by_the_poller(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Never-Sent")
    request = world.approved(image)
    # Rewind to how a crash between the approval and the AWS call would have left it.
    world.simulator.remove_image(request.new_image_id)
    _rewind(
        world, request.id, State.approved, new_image_id=None, new_image_name=None, submitted_at=None
    )
    world.simulator.clear_calls()

    world.poll()
    world.poll()

    assert world.simulator.count("CreateUpdatedWorkspaceImage") == 1
    final = world.reload(request.id)
    assert final.state == State.pending and final.new_image_id
    assert final.new_image_name == request.new_image_name  # the same deterministic Name


def _held_by(world: World, request_id: str, worker_id: str) -> None:
    """The row as a process that just moved it to `submitting` (a moment ago) leaves it."""
    with unit_of_work(world.services.engine) as session:
        assert crud.transition(
            session=session,
            request_id=request_id,
            from_states=[State.pending],
            to=State.submitting,
            new_image_id=None,
            worker_id=worker_id,
        )


def test_a_holder_whose_pid_was_reused_is_taken_over_at_once(world: World) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Reused-Pid")
    request = world.approved(image)
    with subprocess.Popen(["sleep", "60"]) as other:  # noqa: S607 (a live process of this host)
        try:
            # The holder had this pid, but started at another time: it is gone, the pid reused.
            _held_by(world, request.id, f"{HOST}:{other.pid}:1:feedbeef")
            world.poll()
            taken = world.reload(request.id)
            assert taken.state == State.pending and taken.worker_id == WORKER_ID
            assert taken.new_image_id == request.new_image_id  # found by its Name, not made again

            # The same live pid with its own start time is a live holder: left alone.
            alive = f"{HOST}:{other.pid}:{started(other.pid)}:feedbeef"
            _held_by(world, request.id, alive)
            world.poll()
            assert world.reload(request.id).state == State.submitting
        finally:
            other.kill()
    assert world.simulator.count("CreateUpdatedWorkspaceImage") == 1


def test_a_follow_up_a_dead_poller_posted_is_not_posted_again(world: World) -> None:
    """The holder posted, then died before recording it: the heir reads the thread first."""
    image = world.simulator.add_image(region="us-east-1", name="Win-Posted-Once")
    request = world.approved(image)
    world.simulator.complete_pending()
    with world.slack.hold("chat.postMessage", when=lambda args: bool(args.get("thread_ts"))):
        posting = threading.Thread(target=world.poll)
        posting.start()
        world.slack.wait_for(
            lambda c: c.method == "chat.postMessage" and bool(c.args.get("thread_ts")), timeout=15
        )
        # It has posted; now it "dies": its claim stays, under a holder that no longer runs.
        dead = f"{HOST}:{_a_dead_pid()}:1:deadbeef"
        with unit_of_work(world.services.engine) as session:
            session.execute(
                update(UpdateRequest)
                .where(col(UpdateRequest.id) == request.id)
                .values(followup_claimed_by=dead, followup_posted_at=None)
            )
    posting.join(timeout=30)
    with unit_of_work(world.services.engine) as session:  # the dead one never recorded it
        session.execute(
            update(UpdateRequest)
            .where(col(UpdateRequest.id) == request.id)
            .values(followup_claimed_by=dead, followup_posted_at=None)
        )

    assert world.poll().followups == 0

    final = world.reload(request.id)
    assert final.followup_posted_at is not None
    # One follow-up (the dead one's), and the rollout plan the heir posts after finding it.
    followup, plan = world.slack.thread(final.channel_id, final.message_ts)
    assert "AVAILABLE" in followup.text and "Rollout of" in str(plan.blocks)
    with session_scope(world.services.engine) as session:
        kinds = [e.kind for e in crud.events(session=session, request_id=request.id)]
    assert "followup_found" in kinds
    assert world.poll().followups == 0  # and never again


def _a_dead_pid() -> int:
    process = subprocess.Popen(["true"])  # noqa: S607
    process.wait()
    return process.pid
