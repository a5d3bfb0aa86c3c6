"""A rollout's first phase: point the bundles that use the source image at the new one
(UpdateWorkspaceBundle), each bundle once; a bundle claimed by a process that died is checked
against AWS before anything is called again (bot/domain/rollout.py says how steps are claimed).
"""

from __future__ import annotations

import logging

from bot.aws.rollout import RolloutCalls
from bot.domain.context import Services
from bot.domain.requests import SYSTEM
from bot.domain.rollout import (
    BUNDLE,
    LIVE,
    RolloutRefused,
    _checked,
    _finish,
    _start_phase,
    failing,
    failures,
    load,
    pending,
)
from bot.errors import AwsError
from storage import rollouts as store
from storage.db import session_scope
from storage.models import Rollout, RolloutStep, StepState

log = logging.getLogger(__name__)


def point_bundles(
    services: Services, *, rollout_id: str, user_id: str, channel_id: str | None
) -> int:
    """Point every bundle that uses the source at the new image, each once. The number moved."""
    rollout, _request = _checked(services, rollout_id, user_id, channel_id)
    calls = RolloutCalls(services.gateway)
    bundles = [
        b
        for b in calls.own_bundles(account_id=rollout.account_id, region=rollout.region)
        if b.image_id == rollout.source_image_id
    ]
    if not bundles:
        raise RolloutRefused(
            f"No bundle uses `{rollout.source_image_id}` any more: there is nothing to point."
        )
    steps = [
        RolloutStep(rollout_id=rollout.id, kind=BUNDLE, target=b.bundle_id, label=b.name)
        for b in bundles
    ]
    _start_phase(
        services,
        rollout,
        "bundles_by",
        user_id,
        steps,
        "rollout_bundles_approved",
        retry=(BUNDLE,),
    )
    moved = run_bundles(services, rollout.id, actor=user_id)
    failed = failures(services, rollout.id, (BUNDLE,))
    if failed:
        raise RolloutRefused(
            f"{moved} bundle(s) pointed at `{rollout.new_image_id}`; "
            + "; ".join(failed[:5])
            + " Fix that, then click the button again: only the failed bundles are retried."
        )
    return moved


def run_bundles(services: Services, rollout_id: str, *, actor: str = SYSTEM) -> int:
    """Carry out the bundle steps not done yet (a click, or the poller after a crash)."""
    rollout, _ = load(services, rollout_id)
    calls = RolloutCalls(services.gateway)
    moved = 0
    for step in pending(services, rollout.id, BUNDLE):
        try:
            with failing(services, step, event="bundle_failed", actor=actor):
                moved += _point(services, calls, rollout, step, actor)
        except AwsError:
            continue  # the plan shows it; a click retries it
    return moved


def _point(
    services: Services, calls: RolloutCalls, rollout: Rollout, step: RolloutStep, actor: str
) -> int:
    """One claimed bundle step: re-checked now (a bundle someone moved, or that a process
    which died had moved, is reported, not touched again), then pointed. 1 when pointed."""
    where = {"account_id": rollout.account_id, "region": rollout.region}
    current = next(iter(calls.bundles(**where, bundle_ids=[step.target])), None)
    if current is None:
        _finish(
            services,
            step,
            StepState.skipped,
            event="bundle_skipped",
            detail={},
            note="the bundle no longer exists",
        )
        return 0
    if current.image_id == rollout.new_image_id:
        _finish(
            services,
            step,
            StepState.done,
            event="bundle_pointed",
            detail={"already": True},
            note="already pointed at the new image",
        )
        return 0
    if current.image_id != rollout.source_image_id:
        _finish(
            services,
            step,
            StepState.skipped,
            event="bundle_skipped",
            detail={"image_id": current.image_id},
            note=f"someone pointed it at {current.image_id}",
        )
        return 0
    calls.point_bundle(**where, bundle_id=step.target, image_id=rollout.new_image_id)
    return int(
        _finish(
            services,
            step,
            StepState.done,
            event="bundle_pointed",
            actor=actor,
            detail={"image_id": rollout.new_image_id},
        )
    )


def bundles_unfinished(services: Services) -> list[str]:
    """Rollouts with bundle steps waiting or claimed: the poller finishes them."""
    with session_scope(services.engine) as session:
        live = store.in_states(session=session, states=LIVE)
        return [
            r.id
            for r in live
            if r.bundles_by
            and store.steps(
                session=session,
                rollout_id=r.id,
                kind=BUNDLE,
                states=[StepState.waiting, StepState.claimed],
            )
        ]
