"""The rollout job: each poll carries on what a click or a process that died left unfinished
(bundle steps), follows the rebuild waves, and shows each rollout's progress in its thread.
After an update's AVAILABLE follow-up, its rollout plan is posted in the same thread."""

from __future__ import annotations

from bot.domain import bundles, poller, rollout, waves
from bot.domain.context import Services
from bot.errors import WsimgError
from storage.models import State, UpdateRequest


def run(services: Services) -> None:
    for rollout_id in bundles.bundles_unfinished(services):
        with poller.on_its_own(f"bundles of rollout {rollout_id[:8]}"):
            bundles.run_bundles(services, rollout_id)
    for rollout_id in waves.live_rollouts(services):
        with poller.on_its_own(f"waves of rollout {rollout_id[:8]}"):
            try:
                waves.advance(services, rollout_id)
            except WsimgError as exc:  # shown in the thread; the next poll tries again
                waves.stalled(services, rollout_id, exc.user_message)
                waves.publish(services, rollout_id)
                raise
            waves.publish(services, rollout_id)


def post_plan(services: Services, request: UpdateRequest) -> bool:
    """Open the rollout of an AVAILABLE update and post its plan in the update's thread."""
    if request.state != State.available:
        return False
    opened = rollout.open_for(services, request)
    if opened is None:
        return False
    return services.notifier.rollout_plan(rollout.plan(services, opened))
