"""The Home tab: shown to its user when they open it (the app_home_opened event), and its Pause
and Resume buttons.

Slack sends no response_url with a click on a view, so every answer to a click on the Home
tab (the Home as it now stands, a refusal, an unexpected error's ID) is shown at the top of
the clicker's Home tab instead. These listeners are registered before all others and take
every click made on a Home tab: Pause and Resume as the rollout's own buttons (the domain
re-checks who clicked), any other button (the Home tab shows none: a forged click) with a
refusal. No other listener, each of which answers at a response_url, ever sees one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from slack_bolt import Ack, App, BoltContext, Respond

from bot.domain import home, waves
from bot.domain.context import Services
from bot.domain.rollout import HOME_TAB
from bot.errors import WsimgError
from bot.slack.ids import Action, matcher
from bot.slack.payloads import PAYLOAD, Click, HomeOpened
from handlers.errors import answers_errors, payload, report

ANY_ACTION = re.compile(r".*", re.DOTALL)


class NotOnHome(WsimgError):
    def __init__(self) -> None:
        super().__init__("That button does not work on the Home tab: use it where wsimg posted it.")


def _ack(ack: Ack) -> None:
    ack()


def _on_home(context: BoltContext) -> bool:
    """The listener matcher: a click made on a Home tab."""
    found = context.get(PAYLOAD)
    return isinstance(found, Click) and found.home


def register(app: App, services: Services) -> None:
    @answers_errors
    def opened(context: BoltContext) -> None:
        opening = payload(context, HomeOpened)
        if opening.tab == "home":  # the Messages tab opens the same event
            home.opened(services, user_id=opening.user_id)

    def answered_on_home(step: Callable[[Click], None]) -> Callable[..., None]:
        def run(context: BoltContext) -> None:
            click = payload(context, Click)

            def on_the_home_tab(**message: Any) -> None:
                home.show(services, user_id=click.user_id, notice=str(message.get("text")))

            try:
                step(click)
            except Exception as error:  # noqa: BLE001 (reported with traceback and an ID)
                # ``report`` answers through what it is given as it would through ``respond``:
                # called once, with a message's fields.
                report(error, cast(Respond, on_the_home_tab))

        return run

    def decided(what: str) -> Callable[..., None]:
        def step(click: Click) -> None:
            waves.decide(
                services,
                rollout_id=click.value,
                user_id=click.user_id,
                channel_id=HOME_TAB,
                what=what,
            )
            waves.publish(services, click.value)  # the thread, and the Home tabs shown
            home.show(services, user_id=click.user_id)  # and the clicker's, in any case

        return answered_on_home(step)

    def elsewhere(click: Click) -> None:
        raise NotOnHome()

    app.event("app_home_opened")(ack=_ack, lazy=[opened])
    for action, listener in (
        (matcher(Action.ROLLOUT_PAUSE), decided("pause")),
        (matcher(Action.ROLLOUT_RESUME), decided("resume")),
        (ANY_ACTION, answered_on_home(elsewhere)),
    ):
        app.action(action, matchers=[_on_home])(ack=_ack, lazy=[listener])
