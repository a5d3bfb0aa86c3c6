"""The rollout's buttons: point the bundles, rebuild in waves, share, retire, and Pause,
Resume, Cancel. Each button carries the rollout's id only; the domain re-checks who clicked,
where, and what AWS shows now, on every click."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, App, BoltContext, Respond

from bot.domain import bundles, rollout, sharing, waves
from bot.domain.context import Services
from bot.slack import rollout_view
from bot.slack.ids import Action, matcher
from bot.slack.payloads import Click
from handlers.errors import answers_errors, payload


def _ack(ack: Ack) -> None:
    ack()


def register(app: App, services: Services) -> None:
    def shown_after(step: Callable[..., object]) -> Callable[..., None]:
        """A plan step: carried out, then the plan as it now stands replaces the message."""

        @answers_errors
        def run(context: BoltContext, respond: Respond) -> None:
            click = payload(context, Click)
            step(
                services,
                rollout_id=click.value,
                user_id=click.user_id,
                channel_id=click.channel_id,
            )
            current, _ = rollout.load(services, click.value)
            respond(replace_original=True, **rollout_view.plan(rollout.plan(services, current)))
            waves.publish(services, click.value)

        return run

    def decided(what: str) -> Callable[..., None]:
        @answers_errors
        def run(context: BoltContext, respond: Respond) -> None:
            click = payload(context, Click)
            waves.decide(
                services,
                rollout_id=click.value,
                user_id=click.user_id,
                channel_id=click.channel_id,
                what=what,
            )
            waves.publish(services, click.value)

        return run

    steps = {
        Action.ROLLOUT_BUNDLES: shown_after(bundles.point_bundles),
        Action.ROLLOUT_REBUILD: shown_after(waves.start),
        Action.ROLLOUT_SHARE: shown_after(sharing.share),
        Action.ROLLOUT_RETIRE: shown_after(sharing.retire),
        Action.ROLLOUT_PAUSE: decided("pause"),
        Action.ROLLOUT_RESUME: decided("resume"),
        Action.ROLLOUT_CANCEL: decided("cancel"),
    }
    for action, listener in steps.items():
        app.action(matcher(action))(ack=_ack, lazy=[listener])
