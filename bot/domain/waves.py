"""Rebuilding a rollout's WorkSpaces in waves.

Once the bundles point at the new image, an approver starts the rebuild: every WorkSpace on
those bundles becomes a step. A wave takes at most ``batch`` of them that are in a state
RebuildWorkspaces accepts, not connected, and idle for ``idle_hours``; the others wait, with the
reason, for a later wave. The next wave starts only when every WorkSpace of the last one is
AVAILABLE again; a refused rebuild or a WorkSpace that ends in ERROR pauses the rollout.

At most once per WorkSpace, across processes and restarts: a wave starts by a compare-and-set
on the rollout's wave number (one process wins it), each WorkSpace is claimed by a
compare-and-set before RebuildWorkspaces is called, and a claim left by a process that died is
settled from what AWS shows (REBUILDING: it was asked; anything else: unconfirmed, for a
person to check) and never called again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.aws.rollout import REBUILDABLE, RolloutCalls, Workspace
from bot.domain import home
from bot.domain.context import Services
from bot.domain.identity import WORKER_ID, is_dead_here
from bot.domain.requests import SYSTEM
from bot.domain.rollout import (
    BUNDLE,
    WORKSPACE,
    Progress,
    RolloutRefused,
    _checked,
    _finish,
    _stale,
    _start_phase,
    load,
    progress,
)
from bot.errors import AwsError, WsimgError
from storage import crud
from storage import rollouts as store
from storage.db import session_scope, unit_of_work
from storage.models import Rollout, RolloutState, RolloutStep, StepState, utcnow

log = logging.getLogger(__name__)


def start(
    services: Services, *, rollout_id: str, user_id: str, channel_id: str | None
) -> Progress | None:
    """Start the waves: every WorkSpace on the moved bundles, then the first wave."""
    rollout, _ = _checked(services, rollout_id, user_id, channel_id)
    with session_scope(services.engine) as session:
        bundles = store.steps(session=session, rollout_id=rollout.id, kind=BUNDLE)
    if not rollout.bundles_by or any(
        s.state in (StepState.waiting, StepState.claimed) for s in bundles
    ):
        raise RolloutRefused(
            "Point the bundles at the new image first: a rebuild builds a WorkSpace from its "
            "bundle's image."
        )
    calls = RolloutCalls(services.gateway)
    where = {"account_id": rollout.account_id, "region": rollout.region}
    steps = [
        RolloutStep(rollout_id=rollout.id, kind=WORKSPACE, target=w.workspace_id, label=w.user_name)
        for bundle in bundles
        if bundle.state == StepState.done
        for w in calls.workspaces_on_bundle(**where, bundle_id=bundle.target)
    ]
    if not steps:
        raise RolloutRefused("No WorkSpace uses the moved bundles: there is nothing to rebuild.")
    _start_phase(
        services,
        rollout,
        "rebuild_by",
        user_id,
        steps,
        "rollout_rebuild_started",
        state=RolloutState.rebuilding.value,
        batch=services.settings.rebuild_batch,
        idle_hours=services.settings.rebuild_idle_hours,
    )
    try:
        advance(services, rollout.id)
    except WsimgError as exc:  # started all the same: the progress message says what stalls
        stalled(services, rollout.id, exc.user_message)
    rollout, _ = load(services, rollout.id)
    return progress(services, rollout)


def _set_state(
    services: Services,
    rollout: Rollout,
    *,
    from_states: list[RolloutState],
    to: RolloutState,
    actor: str,
    event: str,
    reason: str | None = None,
) -> bool:
    with unit_of_work(services.engine) as session:
        moved = store.set_rollout(
            session=session,
            rollout_id=rollout.id,
            states=from_states,
            state=to.value,
            paused_reason=reason[:512] if reason else None,
        )
        if moved:
            crud.record_event(
                session=session,
                kind=event,
                actor=actor,
                request_id=rollout.id,
                detail={"reason": reason} if reason else {},
            )
    return moved


def pause(services: Services, rollout: Rollout, reason: str, *, actor: str = SYSTEM) -> bool:
    return _set_state(
        services,
        rollout,
        from_states=[RolloutState.rebuilding],
        to=RolloutState.paused,
        actor=actor,
        event="rollout_paused",
        reason=reason,
    )


def decide(
    services: Services, *, rollout_id: str, user_id: str, channel_id: str | None, what: str
) -> Rollout:
    """Pause, Resume or Cancel, by an approver in the rollout's channel."""
    rollout, _ = _checked(services, rollout_id, user_id, channel_id)
    if what == "pause":
        ok = pause(services, rollout, f"paused by <@{user_id}>", actor=user_id)
    elif what == "resume":
        ok = _set_state(
            services,
            rollout,
            from_states=[RolloutState.paused],
            to=RolloutState.rebuilding,
            actor=user_id,
            event="rollout_resumed",
        )
    else:
        ok = _set_state(
            services,
            rollout,
            from_states=[RolloutState.open, RolloutState.rebuilding, RolloutState.paused],
            to=RolloutState.cancelled,
            actor=user_id,
            event="rollout_cancelled",
            reason=f"cancelled by <@{user_id}>",
        )
    if not ok:
        current, _ = load(services, rollout_id)
        raise RolloutRefused(f"The rollout is {current.state}: it cannot {what} now.")
    if what == "resume":
        advance(services, rollout_id)
    rollout, _ = load(services, rollout_id)
    return rollout


# --- one pass -------------------------------------------------------------------------------


def advance(services: Services, rollout_id: str) -> None:
    """Follow the wave in flight, settle orphaned claims, and start the next wave when the
    last one is back. Called after a click and on every poll. A pass that goes through clears
    what stalled the one before."""
    _advance(services, rollout_id)
    rollout, _ = load(services, rollout_id)
    if rollout.stalled:
        stalled(services, rollout_id, None)


def _advance(services: Services, rollout_id: str) -> None:
    rollout, _ = load(services, rollout_id)
    if rollout.state not in (RolloutState.rebuilding, RolloutState.paused, RolloutState.cancelled):
        return
    calls = RolloutCalls(services.gateway)
    _follow(services, calls, rollout)  # also after Cancel: what was rebuilding still ends
    _settle_orphans(services, calls, rollout)
    rollout, _ = load(services, rollout_id)
    if rollout.state != RolloutState.rebuilding:
        return
    with session_scope(services.engine) as session:
        busy = store.steps(
            session=session,
            rollout_id=rollout.id,
            kind=WORKSPACE,
            states=[StepState.rebuilding, StepState.claimed],
        )
        waiting = store.steps(
            session=session, rollout_id=rollout.id, kind=WORKSPACE, states=[StepState.waiting]
        )
    if busy:
        return  # the wave is not back yet
    if not waiting:
        _set_state(
            services,
            rollout,
            from_states=[RolloutState.rebuilding],
            to=RolloutState.done,
            actor=SYSTEM,
            event="rollout_done",
        )
        return
    eligible = _eligible(services, calls, rollout, waiting)
    if eligible:
        _wave(services, calls, rollout, eligible)


def _where(rollout: Rollout) -> dict[str, str]:
    return {"account_id": rollout.account_id, "region": rollout.region}


# RebuildWorkspaces is asynchronous: for a moment after it answers, DescribeWorkspaces can still
# show the state the WorkSpace was rebuilt from (AVAILABLE, or ERROR: both may be rebuilt). A
# rebuild counts as over once wsimg has seen it REBUILDING, or this long after it was asked.
REBUILD_SETTLE = timedelta(minutes=10)
SEEN_REBUILDING = "seen REBUILDING"
ASKING = "asking"  # a claimed WorkSpace whose RebuildWorkspaces call is under way
# States a WorkSpace passes through on its way back; any other after the rebuild began
# (ERROR, UNHEALTHY, SUSPENDED, TERMINATED…) pauses the rollout with that state.
PASSING = frozenset(
    {"PENDING", "STARTING", "REBOOTING", "STOPPING", "UPDATING", "MAINTENANCE", "RESTORING"}
)


def _follow(services: Services, calls: RolloutCalls, rollout: Rollout) -> None:
    with session_scope(services.engine) as session:
        flying = store.steps(
            session=session, rollout_id=rollout.id, kind=WORKSPACE, states=[StepState.rebuilding]
        )
    if not flying:
        return
    found = calls.workspaces(**_where(rollout), workspace_ids=[s.target for s in flying])
    now = utcnow()
    for step in flying:
        workspace = found.get(step.target)
        state = workspace.state if workspace else "gone"
        if state == "REBUILDING":
            if step.detail != SEEN_REBUILDING:
                with unit_of_work(services.engine) as session:
                    store.move_step(
                        session=session,
                        step_id=step.id or 0,
                        from_states=[StepState.rebuilding],
                        to=StepState.rebuilding,
                        detail=SEEN_REBUILDING,
                    )
            continue
        begun = step.detail == SEEN_REBUILDING or (
            step.claimed_at is not None and now - step.claimed_at > REBUILD_SETTLE
        )
        if state in ("AVAILABLE", "STOPPED") and begun:  # STOPPED: AutoStop after it
            _land(services, step, StepState.done, "workspace_rebuilt", None)
        elif state in PASSING:
            continue  # starting, rebooting…: still on its way
        elif state == "gone" or begun:
            why = f"is {state}" if state != "gone" else "no longer exists"
            if state == "ERROR":
                why = "ended in ERROR"
            if _land(services, step, StepState.failed, "workspace_rebuild_failed", why):
                pause(services, rollout, f"{step.target} ({step.label}) {why} after its rebuild")


def _land(
    services: Services, step: RolloutStep, to: StepState, event: str, note: str | None
) -> bool:
    """A rebuild that ended: rebuilding → ``to``, with its event."""
    return _finish(
        services,
        step,
        to,
        event=event,
        detail={"reason": note} if note else {},
        note=note,
        from_state=StepState.rebuilding,
        held_by=None,
    )


def _settle_orphans(services: Services, calls: RolloutCalls, rollout: Rollout) -> None:
    """A WorkSpace claimed by a process that died: REBUILDING means its rebuild was asked
    for; one its wave claimed but whose rebuild was not being asked for yet waits again; one
    whose call was under way cannot tell, so it is never asked again and a person checks it."""
    with session_scope(services.engine) as session:
        claimed = store.steps(
            session=session, rollout_id=rollout.id, kind=WORKSPACE, states=[StepState.claimed]
        )
    orphans = [
        s
        for s in claimed
        if s.claimed_by != WORKER_ID and (is_dead_here(s.claimed_by) or _stale(s))
    ]
    if not orphans:
        return
    found = calls.workspaces(**_where(rollout), workspace_ids=[s.target for s in orphans])
    for step in orphans:
        workspace = found.get(step.target)
        if workspace is not None and workspace.state == "REBUILDING":
            to, detail = StepState.rebuilding, SEEN_REBUILDING
        elif step.detail != ASKING:  # claimed with its wave, never asked for: safe to redo
            to, detail = StepState.waiting, None
        else:
            to, detail = (
                StepState.unconfirmed,
                "wsimg stopped while asking for its rebuild: check it, rebuild by hand if it "
                "still runs the old image",
            )
        _finish(
            services,
            step,
            to,
            event="workspace_rebuild_settled",
            detail={"found": workspace.state if workspace else "gone", "to": to.value},
            note=detail,
            held_by=step.claimed_by,
            release=to == StepState.waiting,
        )


def _eligible(
    services: Services, calls: RolloutCalls, rollout: Rollout, waiting: list[RolloutStep]
) -> list[RolloutStep]:
    """The waiting WorkSpaces a wave may take now; the others get the reason they wait."""
    where = _where(rollout)
    ids = [s.target for s in waiting]
    found = calls.workspaces(**where, workspace_ids=ids)
    connections = calls.connections(**where, workspace_ids=ids)
    idle = timedelta(hours=rollout.idle_hours)
    now = utcnow()
    eligible: list[RolloutStep] = []
    notes: dict[int, str | None] = {}
    for step in waiting:
        workspace: Workspace | None = found.get(step.target)
        if workspace is None:
            with unit_of_work(services.engine) as session:
                store.move_step(
                    session=session,
                    step_id=step.id or 0,
                    from_states=[StepState.waiting],
                    to=StepState.skipped,
                    detail="no longer exists",
                )
            continue
        connection = connections.get(step.target)
        if workspace.state not in REBUILDABLE:
            notes[step.id or 0] = workspace.state
        elif connection is not None and connection.state == "CONNECTED":
            notes[step.id or 0] = "connected"
        elif (
            connection is not None and connection.last_known and now - connection.last_known < idle
        ):
            notes[step.id or 0] = f"used in the last {rollout.idle_hours} h"
        else:
            notes[step.id or 0] = None
            eligible.append(step)
    with unit_of_work(services.engine) as session:
        store.note_steps(session=session, notes=notes)
    return eligible


def _wave(
    services: Services, calls: RolloutCalls, rollout: Rollout, eligible: list[RolloutStep]
) -> None:
    """Start the next wave: its number and the claims of its WorkSpaces in one transaction, so
    a process that sees the new number also sees the wave in flight. Before each rebuild the
    rollout is read again: a Pause or Cancel clicked meanwhile stops the rest of the wave (its
    claims go back to waiting)."""
    wave = rollout.wave + 1
    mine: list[RolloutStep] = []
    with unit_of_work(services.engine) as session:
        won = store.set_rollout(
            session=session,
            rollout_id=rollout.id,
            where={"wave": rollout.wave},
            states=[RolloutState.rebuilding],
            wave=wave,
        )
        if not won:
            return  # another process started this wave
        for step in eligible[: rollout.batch]:
            if store.move_step(
                session=session,
                step_id=step.id or 0,
                from_states=[StepState.waiting],
                to=StepState.claimed,
                claimed_by=WORKER_ID,
                claimed_at=utcnow(),
                wave=wave,
                detail=None,
            ):
                mine.append(step)
    for n, step in enumerate(mine):
        current, _ = load(services, rollout.id)
        if current.state != RolloutState.rebuilding:
            _unclaim(services, mine[n:])
            return
        try:
            asked = _rebuild(services, calls, rollout, step, wave)
        except BaseException:
            _unclaim(services, mine[n + 1 :])
            raise
        if not asked:
            _unclaim(services, mine[n + 1 :])
            return


def _unclaim(services: Services, steps: list[RolloutStep]) -> None:
    """Claims of a wave that stopped before their rebuild was asked for: waiting again."""
    with unit_of_work(services.engine) as session:
        for step in steps:
            store.move_step(
                session=session,
                step_id=step.id or 0,
                from_states=[StepState.claimed],
                to=StepState.waiting,
                held_by=WORKER_ID,
                claimed_by=None,
                claimed_at=None,
                wave=None,
            )


def _rebuild(
    services: Services, calls: RolloutCalls, rollout: Rollout, step: RolloutStep, wave: int
) -> bool:
    """Ask for one rebuild (once: the call is never retried); False when the rollout paused.
    Whatever goes wrong between the claim and the record leaves no claim behind."""
    where = _where(rollout)
    with unit_of_work(services.engine) as session:  # from now on, it may have been asked
        still_mine = store.move_step(
            session=session,
            step_id=step.id or 0,
            from_states=[StepState.claimed],
            to=StepState.claimed,
            held_by=WORKER_ID,
            detail=ASKING,
        )
    if not still_mine:
        return True  # another process took the claim over (this one was taken for dead)
    try:
        try:
            refused = calls.rebuild(**where, workspace_id=step.target)
        except AwsError as exc:
            # The reply may be lost after WorkSpaces took the rebuild: it shows REBUILDING then.
            if _shows_rebuilding(calls, where, step.target):
                refused = None
            else:
                return _refused(services, rollout, step, exc.user_message)
        if refused is not None:
            return _refused(services, rollout, step, f"{refused.code}: {refused.message}")
        _finish(
            services,
            step,
            StepState.rebuilding,
            event="workspace_rebuild_asked",
            detail={"wave": wave},
        )
        return True
    except Exception:
        why = "wsimg failed while asking for its rebuild (the bot's log says why): check it"
        _finish(
            services,
            step,
            StepState.unconfirmed,
            event="workspace_rebuild_unconfirmed",
            detail={"reason": why},
            note=why,
        )
        pause(services, rollout, f"{step.target} ({step.label}): {why}")
        raise


def _shows_rebuilding(calls: RolloutCalls, where: dict[str, str], workspace_id: str) -> bool:
    try:
        found = calls.workspaces(**where, workspace_ids=[workspace_id])
    except AwsError:
        return False
    workspace = found.get(workspace_id)
    return workspace is not None and workspace.state == "REBUILDING"


def _refused(services: Services, rollout: Rollout, step: RolloutStep, why: str) -> bool:
    _finish(
        services,
        step,
        StepState.failed,
        event="workspace_rebuild_failed",
        detail={"reason": why},
        note=why,
    )
    pause(services, rollout, f"{step.target} ({step.label}) could not be rebuilt: {why}")
    return False


def live_rollouts(services: Services) -> list[str]:
    """Rollouts whose waves the poll follows: rebuilding or paused, and cancelled ones with
    WorkSpaces still rebuilding (followed to the end, no new wave)."""
    with session_scope(services.engine) as session:
        live = store.in_states(
            session=session, states=[RolloutState.rebuilding, RolloutState.paused]
        )
        cancelled = [
            r
            for r in store.in_states(session=session, states=[RolloutState.cancelled])
            if store.steps(
                session=session,
                rollout_id=r.id,
                kind=WORKSPACE,
                states=[StepState.rebuilding],
            )
        ]
        return [r.id for r in [*live, *cancelled]]


# Held in progress_ts while one process posts the first progress message, so that a click and
# a poll publishing at the same moment post one message between them.
POSTING = "posting"
POSTING_STALE = timedelta(minutes=5)  # a poster that died: the next one posts instead


def _show_progress(services: Services, rollout: Rollout, shown: Progress, text: str) -> None:
    """Claim the change (compare-and-set on the text last shown and the message's ts), then
    edit the message or post the first one; a failure gives the claim back for a later pass."""
    before = {"progress_text": rollout.progress_text, "progress_ts": rollout.progress_ts}
    first = rollout.progress_ts is None or (
        rollout.progress_ts == POSTING and utcnow() - rollout.updated_at > POSTING_STALE
    )
    if rollout.progress_ts == POSTING and not first:
        return  # another process is posting the first message
    with unit_of_work(services.engine) as session:
        claimed = store.set_rollout(
            session=session,
            rollout_id=rollout.id,
            where=before,
            progress_text=text,
            progress_ts=POSTING if first else rollout.progress_ts,
        )
    if not claimed:
        return  # another process showed a change meanwhile; the next pass shows the latest
    if first:
        rollout.progress_ts = None
    ts = services.notifier.rollout_progress(rollout, shown)
    with unit_of_work(services.engine) as session:
        if ts is not None:
            store.set_rollout(
                session=session,
                rollout_id=rollout.id,
                where={"progress_text": text},
                progress_ts=ts,
            )
        else:
            store.set_rollout(
                session=session,
                rollout_id=rollout.id,
                where={"progress_text": text},
                progress_text=before["progress_text"],
                progress_ts=None if first else before["progress_ts"],
            )


def stalled(services: Services, rollout_id: str, problem: str | None) -> None:
    """Remember what stopped the last pass (None: it went through), for the progress message."""
    with unit_of_work(services.engine) as session:
        store.set_rollout(
            session=session, rollout_id=rollout_id, stalled=problem[:512] if problem else None
        )


def publish(services: Services, rollout_id: str) -> None:
    """Show the rollout's progress in its thread when it changed since it was last shown, and
    on the Home tabs this process has shown (bot/domain/home.py)."""
    rollout, _ = load(services, rollout_id)
    shown = progress(services, rollout)
    if shown is None:
        return
    text = f"{rollout.state}: {shown.line()}"
    if rollout.stalled:
        text += f" — stalled: {rollout.stalled}"
    if rollout.paused_reason and rollout.state == RolloutState.paused:
        text += f" — {rollout.paused_reason}"
    text = text[:512]
    if text == rollout.progress_text:
        return
    _show_progress(services, rollout, shown, text)
    # The Home tabs read the progress from the database, not from the thread: they show the
    # change even when Slack would not take the thread's message.
    home.refresh(services)
