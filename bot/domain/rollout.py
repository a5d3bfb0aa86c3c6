"""Carrying an AVAILABLE update to the desktops: the rollout, its plan and its steps. Pointing
the bundles at the new image is in bot/domain/bundles.py, the rebuild waves in
bot/domain/waves.py, sharing the new image and retiring the source in bot/domain/sharing.py.

A rollout belongs to its update request (same id, same channel, same thread). Each phase is
started once: a compare-and-set on the rollout's ``<phase>_by`` column is the claim, so of two
clicks (or a click and a retry) one starts it and the other is told who did. Each thing a
phase does is a step row (unique per rollout, kind and target) moved by compare-and-set from
waiting to claimed to done in its own unit of work with its event; a step claimed by a process
that died is re-checked against AWS before anything is called again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from bot.aws.rollout import RolloutCalls
from bot.domain.audit import Viewer, _scope
from bot.domain.context import Services
from bot.domain.identity import WORKER_ID, is_dead_here
from bot.domain.plans import QUEUED, BundleUse, Plan, Progress
from bot.domain.poller import ORPHAN_AFTER
from bot.domain.requests import SYSTEM, NotAllowed, NotFound, Refused, record_refusal
from bot.errors import AwsError, WsimgError
from storage import crud
from storage import rollouts as store
from storage.db import session_scope, unit_of_work
from storage.models import (
    Rollout,
    RolloutState,
    RolloutStep,
    State,
    StepState,
    UpdateRequest,
    utcnow,
)

log = logging.getLogger(__name__)

BUNDLE, WORKSPACE, SHARE, UNSHARE, DELETE = "bundle", "workspace", "share", "unshare", "delete"
FINISHED = frozenset({StepState.done, StepState.skipped, StepState.failed, StepState.unconfirmed})
LIVE = (RolloutState.open, RolloutState.rebuilding, RolloutState.paused)
EVERY_STATE = tuple(RolloutState)


class RolloutRefused(Refused):
    """A rollout click or command that changes nothing; the sentence says why. ``{user}`` and
    ``{channel}`` in it stand for ``user`` and ``channel``: plain IDs in ``user_message``,
    mentions on the Slack side (``say``)."""

    def __init__(
        self, message: str, *, user: str | None = None, channel: str | None = None
    ) -> None:
        self.template, self.user, self.channel = message, user, channel
        super().__init__(self.say(lambda user: user, lambda channel: f"#{channel}"))

    def say(
        self,
        who: Callable[[str], str],
        where: Callable[[str], str],
        text: Callable[[str], str] = lambda sentence: sentence,
    ) -> str:
        """The sentence, ``text`` applied to the words (escaping, on the Slack side) and the
        user and channel shown as ``who`` and ``where`` show them."""
        said = text(self.template)
        if self.user is not None:
            said = said.replace("{user}", who(self.user))
        if self.channel is not None:
            said = said.replace("{channel}", where(self.channel))
        return said


# --- who may ----------------------------------------------------------------------------------


def _may(services: Services, rollout: Rollout, request: UpdateRequest, user_id: str) -> None:
    if not services.policy.can_approve(user_id):
        record_refusal(services, user_id, rollout.source_image_id, "rollout: not an approver")
        raise NotAllowed()
    if services.policy.four_eyes and user_id == request.requested_by:
        record_refusal(services, user_id, rollout.source_image_id, "rollout: four eyes")
        raise RolloutRefused(
            "With four eyes on, the rollout of an update is approved by someone other than "
            "the person who requested it. Ask another approver."
        )


# The channel a click on a person's Home tab is taken as coming from (handlers/home.py). It is
# no channel ID, which every channel a payload names must be (bot/slack/inbound.py), so no
# click, command or Socket Mode request can name it.
HOME_TAB = "home-tab"


def _in_its_channel(rollout: Rollout, channel_id: str | None) -> None:
    """A rollout is run from its channel, whose thread shows who did what. The one other place
    is an approver's Home tab, for Pause and Resume: handlers/home.py passes ``HOME_TAB`` for
    those two buttons only (any other button clicked there is refused before the domain), the
    thread still shows the progress they change, and who clicked is checked next (``_may``)
    as for every click. Any other channel, or none, is refused when the rollout has one."""
    if channel_id == HOME_TAB:
        return
    if rollout.channel_id and channel_id != rollout.channel_id:
        raise RolloutRefused(
            "This rollout is run from {channel}: use the buttons in its thread.",
            channel=rollout.channel_id,
        )


def load(services: Services, rollout_id: str) -> tuple[Rollout, UpdateRequest]:
    with session_scope(services.engine) as session:
        rollout = store.get(session=session, rollout_id=rollout_id)
        request = crud.get_request(session=session, request_id=rollout_id)
    if rollout is None or request is None:
        raise RolloutRefused("That rollout no longer exists. Run `/wsimg rollout` for the plan.")
    return rollout, request


def _checked(
    services: Services, rollout_id: str, user_id: str, channel_id: str | None
) -> tuple[Rollout, UpdateRequest]:
    rollout, request = load(services, rollout_id)
    _in_its_channel(rollout, channel_id)
    _may(services, rollout, request, user_id)
    return rollout, request


# --- opening and finding a rollout ------------------------------------------------------------


def open_for(services: Services, request: UpdateRequest) -> Rollout | None:
    """The rollout of an AVAILABLE update, created the first time it is asked for."""
    if request.state != State.available or not request.new_image_id:
        return None
    rollout = Rollout(
        id=request.id,
        account_id=request.account_id,
        region=request.region,
        source_image_id=request.source_image_id,
        new_image_id=request.new_image_id,
        channel_id=request.channel_id,
        thread_ts=request.message_ts,
        batch=services.settings.rebuild_batch,
        idle_hours=services.settings.rebuild_idle_hours,
    )
    with unit_of_work(services.engine) as session:
        if store.create(session=session, rollout=rollout):
            crud.record_event(
                session=session,
                kind="rollout_opened",
                actor=SYSTEM,
                request_id=request.id,
                detail={"new_image_id": request.new_image_id},
            )
    with session_scope(services.engine) as session:
        return store.get(session=session, rollout_id=request.id)


def find(services: Services, *, query: str | None, who: Viewer) -> Rollout:
    """The rollout ``who`` asks about: by request id or image id, else the newest one in
    their scope (the channel asked in), only if they may see its request."""
    scope = _scope(who)
    with session_scope(services.engine) as session:
        if query:
            request = crud.find_request(session=session, identifier=query, scope=scope)
        else:
            available = crud.requests_in(session=session, states=[State.available], scope=scope)
            request = max(available, key=lambda r: r.completed_at or r.updated_at, default=None)
    if request is None or request.state != State.available:
        what = f"`{query[:80]}`" if query else "this channel"
        raise NotFound(
            f"No AVAILABLE update from {what} has a rollout. A rollout starts when the updated "
            "image is AVAILABLE; `/wsimg history` shows the updates made here."
        )
    rollout = open_for(services, request)
    assert rollout is not None
    return rollout


# --- the plan ---------------------------------------------------------------------------------


@contextmanager
def _shown(problems: list[str]) -> Iterator[None]:
    """A part of the plan AWS would not show becomes a sentence in it, not a failure of all."""
    try:
        yield
    except AwsError as exc:
        problems.append(exc.user_message)


def progress(services: Services, rollout: Rollout) -> Progress | None:
    with session_scope(services.engine) as session:
        steps = store.steps(session=session, rollout_id=rollout.id, kind=WORKSPACE)
    if not steps:
        return None
    counts = Counter(step.state for step in steps)
    waiting = Counter(step.detail or QUEUED for step in steps if step.state == StepState.waiting)
    return Progress(
        state=rollout.state,
        wave=rollout.wave,
        total=len(steps),
        rebuilt=counts[StepState.done],
        in_flight=counts[StepState.rebuilding] + counts[StepState.claimed],
        waiting=dict(waiting),
        failed=[
            f"{step.target} ({step.label}): {step.detail}"
            for step in steps
            if step.state == StepState.failed
        ],
        unconfirmed=[
            f"{step.target} ({step.label})" for step in steps if step.state == StepState.unconfirmed
        ],
        skipped=counts[StepState.skipped],
        paused_reason=rollout.paused_reason,
        problem=rollout.stalled,
    )


def plan(services: Services, rollout: Rollout) -> Plan:
    """What the rollout has done and what is left, read live from AWS."""
    calls = RolloutCalls(services.gateway)
    where = {"account_id": rollout.account_id, "region": rollout.region}
    problems: list[str] = []
    with session_scope(services.engine) as session:
        request = crud.get_request(session=session, request_id=rollout.id)
        moved_ids = {
            step.target
            for step in store.steps(session=session, rollout_id=rollout.id, kind=BUNDLE)
            if step.state == StepState.done
        }
    assert request is not None
    uses: list[BundleUse] = []
    workspace_ids: list[str] = []  # of the bundles listed: the rebuild's snapshot sample
    bundles_known = False
    with _shown(problems):
        bundles = calls.own_bundles(**where)
        bundles_known = True
        relevant = [
            b
            for b in bundles
            if b.image_id == rollout.source_image_id
            or (b.bundle_id in moved_ids and b.image_id == rollout.new_image_id)
        ]
        for bundle in relevant:
            workspaces = calls.workspaces_on_bundle(**where, bundle_id=bundle.bundle_id)
            workspace_ids.extend(w.workspace_id for w in workspaces)
            connections = calls.connections(
                **where, workspace_ids=[w.workspace_id for w in workspaces]
            )
            uses.append(
                BundleUse(
                    bundle=bundle,
                    workspaces=len(workspaces),
                    states=dict(Counter(w.state for w in workspaces)),
                    connected=sum(1 for c in connections.values() if c.state == "CONNECTED"),
                    moved=bundle.image_id == rollout.new_image_id,
                )
            )
    source_shares: list[str] = []
    new_shares: list[str] = []
    source_exists = True
    with _shown(problems):
        try:
            source_shares = calls.shared_with(**where, image_id=rollout.source_image_id)
        except AwsError as exc:
            if exc.code != "ResourceNotFound":
                raise
            source_exists = False
        new_shares = calls.shared_with(**where, image_id=rollout.new_image_id)
    image_count: int | None = None
    with _shown(problems):
        image_count = calls.image_count(**where)
    snapshot_at = None
    if rollout.state == RolloutState.open and workspace_ids:
        with _shown(problems):
            snapshot_at = _oldest_snapshot(calls, rollout, workspace_ids)
    return Plan(
        rollout=rollout,
        request=request,
        bundles=uses,
        source_shares=source_shares,
        new_shares=new_shares,
        image_count=image_count,
        quota=services.settings.image_quota,
        snapshot_at=snapshot_at,
        progress=progress(services, rollout),
        source_exists=source_exists,
        bundles_known=bundles_known,
        problems=problems,
        failed=_failed_by_kind(services, rollout.id),
    )


def _failed_by_kind(services: Services, rollout_id: str) -> dict[str, list[str]]:
    """The failed bundle, share, unshare and delete steps, by kind, as ``failures`` words them."""
    found: dict[str, list[str]] = {}
    for line, kind in _failed_steps(services, rollout_id, (BUNDLE, SHARE, UNSHARE, DELETE)):
        found.setdefault(kind, []).append(line)
    return found


SNAPSHOT_SAMPLE = 25  # DescribeWorkspaceSnapshots is one call per WorkSpace


def _oldest_snapshot(
    calls: RolloutCalls, rollout: Rollout, workspace_ids: list[str]
) -> datetime | None:
    """The oldest latest-snapshot among the first SNAPSHOT_SAMPLE of these WorkSpaces."""
    where = {"account_id": rollout.account_id, "region": rollout.region}
    times = [
        moment
        for workspace_id in workspace_ids[:SNAPSHOT_SAMPLE]
        if (moment := calls.latest_snapshot(**where, workspace_id=workspace_id)) is not None
    ]
    return min(times, default=None)


# --- steps: claimed once, done once -----------------------------------------------------------


def _claim(services: Services, step: RolloutStep) -> bool:
    """waiting → claimed by this process, or a claim whose process died taken over."""
    with unit_of_work(services.engine) as session:
        if step.state == StepState.waiting:
            return store.move_step(
                session=session,
                step_id=step.id or 0,
                from_states=[StepState.waiting],
                to=StepState.claimed,
                claimed_by=WORKER_ID,
                claimed_at=utcnow(),
            )
        if step.state == StepState.claimed:
            # Another process's claim once it is dead (or silent for too long); this process's
            # own only when too old (the thread that held it is gone).
            mine = step.claimed_by == WORKER_ID
            if not _stale(step) and (mine or not is_dead_here(step.claimed_by)):
                return False
            return store.move_step(
                session=session,
                step_id=step.id or 0,
                from_states=[StepState.claimed],
                to=StepState.claimed,
                held_by=step.claimed_by,
                claimed_by=WORKER_ID,
                claimed_at=utcnow(),
            )
    return False


def _stale(step: RolloutStep) -> bool:
    return step.claimed_at is None or utcnow() - step.claimed_at > ORPHAN_AFTER


def _finish(
    services: Services,
    step: RolloutStep,
    to: StepState,
    *,
    event: str,
    detail: dict[str, object],
    actor: str = SYSTEM,
    note: str | None = None,
    from_state: StepState = StepState.claimed,
    held_by: str | None = WORKER_ID,
    release: bool = False,
) -> bool:
    """Move a step (compare-and-set: still ``from_state``, still held by ``held_by`` when
    given) with its event, in one unit of work; ``note`` is the step's own detail, and
    ``release`` drops its claim and wave (it waits to be claimed again)."""
    unclaimed = {"claimed_by": None, "claimed_at": None, "wave": None} if release else {}
    with unit_of_work(services.engine) as session:
        moved = store.move_step(
            session=session,
            step_id=step.id or 0,
            from_states=[from_state],
            to=to,
            held_by=held_by,
            detail=note[:512] if note else None,
            **unclaimed,
        )
        if moved:
            crud.record_event(
                session=session,
                kind=event,
                actor=actor,
                request_id=step.rollout_id,
                detail={"target": step.target, **detail},
            )
    return moved


def pending(services: Services, rollout_id: str, kind: str) -> Iterator[RolloutStep]:
    """The steps of ``kind`` not done yet, each as this process claims it (a waiting one, or
    one whose holder died); those it cannot claim are another process's."""
    with session_scope(services.engine) as session:
        steps = store.steps(
            session=session,
            rollout_id=rollout_id,
            kind=kind,
            states=[StepState.waiting, StepState.claimed],
        )
    for step in steps:
        if _claim(services, step):
            yield step


@contextmanager
def failing(services: Services, step: RolloutStep, *, event: str, actor: str) -> Iterator[None]:
    """Whatever the block raises marks the claimed step failed, with the sentence to show
    (a click retries it), and goes on up: no error leaves a claim behind."""
    try:
        yield
    except Exception as exc:  # re-raised below: this only records it on the step
        why = exc.user_message if isinstance(exc, WsimgError) else "wsimg failed (see its log)"
        code = exc.code if isinstance(exc, AwsError) else type(exc).__name__
        _finish(
            services,
            step,
            StepState.failed,
            event=event,
            detail={"error": code},
            actor=actor,
            note=why,
        )
        raise


def _start_phase(
    services: Services,
    rollout: Rollout,
    column: str,
    user_id: str,
    steps: list[RolloutStep],
    event: str,
    *,
    retry: tuple[str, ...] = (),
    states: tuple[RolloutState, ...] = LIVE,
    **values: object,
) -> None:
    """Claim a phase of the rollout for ``user_id`` and add its steps, in one unit of work.

    A phase already started is refused, unless some of its ``retry`` kinds of steps failed
    (AccessDenied, say, fixed since): those go back to waiting, to be carried out again.
    ``states``: the rollout states the phase may start in (sharing and retiring the source
    stay possible once the rebuild is done or cancelled)."""
    with unit_of_work(services.engine) as session:
        won = store.set_rollout(
            session=session,
            rollout_id=rollout.id,
            where={column: None},
            states=states,
            **{column: user_id},
            **values,
        )
        if won:
            store.add_steps(session=session, steps=steps)
            crud.record_event(
                session=session,
                kind=event,
                actor=user_id,
                request_id=rollout.id,
                detail={"steps": [s.target for s in steps]},
            )
    if not won:
        current, _ = load(services, rollout.id)
        by = getattr(current, column)
        if current.state in states and retry and _retry_failed(services, current, retry, user_id):
            return
        if current.state not in states:
            raise RolloutRefused(f"This rollout is {current.state}: nothing was started.")
        raise RolloutRefused("{user} already started that: nothing was started twice.", user=by)


LEFT_AFTER = timedelta(minutes=1)  # a waiting step nobody claimed this long was left behind


def _retry_failed(
    services: Services, rollout: Rollout, kinds: tuple[str, ...], user_id: str
) -> int:
    with unit_of_work(services.engine) as session:
        failed = [
            step
            for kind in kinds
            for step in store.steps(
                session=session, rollout_id=rollout.id, kind=kind, states=[StepState.failed]
            )
        ]
        retried = sum(
            store.move_step(
                session=session,
                step_id=step.id or 0,
                from_states=[StepState.failed],
                to=StepState.waiting,
                detail=None,
            )
            for step in failed
        )
        # Steps a click that failed midway or a process that died left unfinished: waiting
        # for longer than a click takes to claim them, or claimed by a process that is gone.
        left = [
            step
            for kind in kinds
            for step in store.steps(
                session=session,
                rollout_id=rollout.id,
                kind=kind,
                states=[StepState.waiting, StepState.claimed],
            )
            if (step.state == StepState.waiting and utcnow() - step.updated_at > LEFT_AFTER)
            or (step.state == StepState.claimed and (is_dead_here(step.claimed_by) or _stale(step)))
        ]
        if retried or left:
            crud.record_event(
                session=session,
                kind="rollout_retry",
                actor=user_id,
                request_id=rollout.id,
                detail={"steps": [s.target for s in [*failed, *left]]},
            )
    return retried + len(left)


def _failed_steps(
    services: Services, rollout_id: str, kinds: tuple[str, ...]
) -> list[tuple[str, str]]:
    """Each failed step of ``kinds`` as (``label or target: why``, its kind), in one read."""
    with session_scope(services.engine) as session:
        steps = store.steps(session=session, rollout_id=rollout_id, states=[StepState.failed])
    return [
        (f"{step.label or step.target}: {step.detail or 'failed'}", step.kind)
        for step in steps
        if step.kind in kinds
    ]


def failures(services: Services, rollout_id: str, kinds: tuple[str, ...]) -> list[str]:
    """What failed, one sentence per step: ``label or target: why``."""
    return [line for line, _kind in _failed_steps(services, rollout_id, kinds)]
