"""Sharing the new image like the source, and retiring the source.

Share: the new image ends shared with exactly the accounts the source is shared with (each
account one step, done once). Retire: offered once no bundle uses the source; it unshares the
source from every account, then deletes it, each once. WorkSpaces refuses to delete an image a
bundle uses (ResourceAssociated) or that is still shared; the refusal says which.
"""

from __future__ import annotations

from bot.aws.rollout import RolloutCalls
from bot.domain.context import Services
from bot.domain.rollout import (
    DELETE,
    EVERY_STATE,
    SHARE,
    UNSHARE,
    RolloutRefused,
    _checked,
    _finish,
    _start_phase,
    failing,
    load,
    pending,
)
from bot.errors import AwsError
from storage.models import Rollout, RolloutStep, StepState


def share(services: Services, *, rollout_id: str, user_id: str, channel_id: str | None) -> int:
    """Share the new image with every account the source is shared with; the number shared."""
    rollout, _ = _checked(services, rollout_id, user_id, channel_id)
    calls = RolloutCalls(services.gateway)
    where = {"account_id": rollout.account_id, "region": rollout.region}
    accounts = calls.shared_with(**where, image_id=rollout.source_image_id)
    if not accounts:
        raise RolloutRefused(
            f"`{rollout.source_image_id}` is not shared with any account: nothing to share."
        )
    steps = [RolloutStep(rollout_id=rollout.id, kind=SHARE, target=a) for a in accounts]
    _start_phase(
        services,
        rollout,
        "share_by",
        user_id,
        steps,
        "rollout_share_approved",
        retry=(SHARE,),
        states=EVERY_STATE,
    )
    return _run(services, rollout, SHARE, actor=user_id)


def _run(services: Services, rollout: Rollout, kind: str, *, actor: str) -> int:
    calls = RolloutCalls(services.gateway)
    where = {"account_id": rollout.account_id, "region": rollout.region}
    done = 0
    for step in pending(services, rollout.id, kind):
        try:
            with failing(services, step, event=f"image_{kind}_failed", actor=actor):
                if kind == DELETE:
                    calls.delete_image(**where, image_id=step.target)
                else:
                    image = rollout.new_image_id if kind == SHARE else rollout.source_image_id
                    calls.share(
                        **where, image_id=image, with_account=step.target, allow=kind == SHARE
                    )
        except AwsError as exc:
            raise RolloutRefused(exc.user_message) from exc
        done += _finish(
            services,
            step,
            StepState.done,
            event=f"image_{kind}d" if kind != DELETE else "image_deleted",
            detail={},
            actor=actor,
        )
    return done


def retire(services: Services, *, rollout_id: str, user_id: str, channel_id: str | None) -> None:
    """Unshare the source from every account and delete it, once no bundle uses it."""
    rollout, _ = _checked(services, rollout_id, user_id, channel_id)
    calls = RolloutCalls(services.gateway)
    where = {"account_id": rollout.account_id, "region": rollout.region}
    users = [b for b in calls.own_bundles(**where) if b.image_id == rollout.source_image_id]
    if users:
        names = ", ".join(f"{b.name} ({b.bundle_id})" for b in users[:5])
        raise RolloutRefused(
            f"`{rollout.source_image_id}` is still used by bundle {names}: point "
            f"{'it' if len(users) == 1 else 'them'} at the new image first; nothing was deleted."
        )
    accounts = calls.shared_with(**where, image_id=rollout.source_image_id)
    missing = sorted(set(accounts) - set(calls.shared_with(**where, image_id=rollout.new_image_id)))
    if missing:
        raise RolloutRefused(
            f"`{rollout.source_image_id}` is shared with {', '.join(missing)}, and the new image "
            "is not: share it first (Share with … like the source), or those accounts are left "
            "without it. Nothing was deleted."
        )
    steps = [RolloutStep(rollout_id=rollout.id, kind=UNSHARE, target=a) for a in accounts]
    steps.append(RolloutStep(rollout_id=rollout.id, kind=DELETE, target=rollout.source_image_id))
    _start_phase(
        services,
        rollout,
        "retire_by",
        user_id,
        steps,
        "rollout_retire_approved",
        retry=(UNSHARE, DELETE),
        states=EVERY_STATE,
    )
    finish_retire(services, rollout.id, actor=user_id)


def finish_retire(services: Services, rollout_id: str, *, actor: str) -> None:
    rollout, _ = load(services, rollout_id)
    _run(services, rollout, UNSHARE, actor=actor)
    _run(services, rollout, DELETE, actor=actor)
