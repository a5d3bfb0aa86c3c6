"""The one place that wires wsimg together: settings → services → Bolt app → HTTP server →
scheduler. The CLI, the demo and the tests all build the process through these functions."""

from __future__ import annotations

import gc
from dataclasses import dataclass

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from sqlalchemy import Engine

import handlers
from bot.aws.gateway import WorkSpacesGateway
from bot.config import Settings, require
from bot.domain.context import NAME_LOOKUP_PAUSE_S
from bot.domain.context import Services as DomainServices
from bot.domain.policy import ApproverPolicy
from bot.slack.groups import SlackGroups
from bot.slack.installation import Installation
from bot.slack.limits import BoundedExecutor
from bot.slack.notify import SlackNotifier
from bot.slack.payloads import Gate
from bot.slack.server import Server, WsgiApp, make_server
from storage.db import make_engine

LISTENER_THREADS = 16
LISTENER_QUEUE = 256  # lazy listeners waiting for a thread; past this the HTTP thread runs one


@dataclass
class Services(DomainServices):
    """The domain's services plus the Slack Web API client the app and its listeners use."""

    slack: WebClient


def slack_client(settings: Settings) -> WebClient:
    """The one WebClient: Slack's 429 + Retry-After is waited out and retried, not lost."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=15,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=5),
        ],
    )


def build_services(
    settings: Settings,
    *,
    engine: Engine | None = None,
    gateway: WorkSpacesGateway | None = None,
    name_lookup_pause: float = NAME_LOOKUP_PAUSE_S,
) -> Services:
    """``name_lookup_pause``: how long to wait between looking up a Name that AWS says already
    exists (bot/domain/submit.py); tests that need no real AWS lag pass 0."""
    slack = slack_client(settings)
    return Services(
        settings=settings,
        engine=engine or make_engine(settings.database_url),
        gateway=gateway
        or WorkSpacesGateway(regions=settings.regions, role_arns=settings.role_arns),
        slack=slack,
        policy=ApproverPolicy(
            users=settings.approver_users,
            groups=settings.approver_groups,
            requesters=settings.requesters,
            digest_managers=settings.digest_managers,
            four_eyes=settings.four_eyes,
            members=SlackGroups(slack),
        ),
        notifier=SlackNotifier(slack),
        name_lookup_pause=name_lookup_pause,
    )


def build_app(settings: Settings, services: Services, *, socket_mode: bool = False) -> App:
    """A fresh Bolt App with every listener registered. No module-global App."""
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
        # Every request's shape is checked, those of another workspace, org or app refused, and
        # the rest parsed into typed payloads, before authorization and before any listener
        # (bot/slack/payloads.py); over HTTP and Socket Mode alike.
        before_authorize=Gate(installation, api_url=settings.slack_api_url),
        # The ack runs in the request thread and the work in lazy listeners, so a command is
        # acknowledged within Slack's 3 seconds however busy the AWS calls keep the pool.
        process_before_response=True,
        # Its queue is bounded too (bot/slack/limits.py): a flood cannot queue work without end.
        listener_executor=BoundedExecutor(
            LISTENER_THREADS, max_queued=LISTENER_QUEUE, thread_name_prefix="wsimg-listener"
        ),
    )
    handlers.register(app, services)
    return app


def http_server(
    services: Services,
    *,
    app: App | None = None,
    host: str = "0.0.0.0",  # noqa: S104 (a server for Slack to reach, behind the platform's proxy)
    port: int = 3000,
) -> Server:
    """The app behind the HTTP server: POST /slack/events, GET /healthz."""
    settings = services.settings
    wsgi = WsgiApp(
        app or build_app(settings, services),
        services.engine,
        signing_secret=require(settings.slack_signing_secret, "SLACK_SIGNING_SECRET"),
        api_url=settings.slack_api_url,
    )
    return make_server(wsgi, host=host, port=port)


def settle_heap(services: Services) -> None:
    """For a long-running process, once it is built: load botocore's WorkSpaces model (without
    calling AWS), collect what starting left behind, then keep everything still alive (modules,
    the app, the models, SQLAlchemy's and Bolt's tables; all of it lives as long as the process)
    out of every later garbage collection (``gc.freeze``). Each collection of the oldest
    generation walked all of it: 230 ms with the GIL held after a scan, during which no command
    was acknowledged and no listing answered; 30 ms with this (wsimg bench's slowest rows)."""
    services.gateway.prepare()
    gc.collect()
    gc.freeze()
