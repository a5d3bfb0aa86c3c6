"""The app factory: a fresh Bolt App with every listener registered. No module-global App."""

from __future__ import annotations

from slack_bolt import App

import handlers
from bot.config import Settings, require
from bot.installation import Installation, InstallationCheck
from bot.limits import BoundedExecutor
from bot.services import Services

LISTENER_THREADS = 16
LISTENER_QUEUE = 256  # lazy listeners waiting for a thread; past this the HTTP thread runs one


def build_app(settings: Settings, services: Services, *, socket_mode: bool = False) -> App:
    # Signed-request verification stays on in HTTP mode; Socket Mode requests arrive over the
    # app-token websocket and carry no signature.
    signing_secret = (
        "" if socket_mode else require(settings.slack_signing_secret, "SLACK_SIGNING_SECRET")
    )
    # Who this installation is (auth.test); a bot token Slack refuses stops the process here.
    installation = Installation.learn(settings, services.slack)
    app = App(
        client=services.slack,
        signing_secret=signing_secret,
        request_verification_enabled=not socket_mode,
        # Requests from another workspace, org or app end here, before authorization and
        # before any listener (bot/installation.py); over HTTP and Socket Mode alike.
        before_authorize=InstallationCheck(installation),
        # The ack runs in the request thread and the work in lazy listeners, so a command is
        # acknowledged within Slack's 3 seconds however busy the AWS calls keep the pool.
        process_before_response=True,
        # Its queue is bounded too (bot/limits.py): a flood cannot queue work without end.
        listener_executor=BoundedExecutor(
            LISTENER_THREADS, max_queued=LISTENER_QUEUE, thread_name_prefix="wsimg-listener"
        ),
    )
    handlers.register(app, services)
    return app
