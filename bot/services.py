"""The long-lived parts every command, handler and job shares, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from sqlalchemy import Engine

from bot.config import Settings
from bot.gateway import WorkSpacesGateway
from bot.notify import Notifier
from bot.policy import ApproverPolicy
from storage.db import make_engine


@dataclass
class Services:
    settings: Settings
    engine: Engine
    gateway: WorkSpacesGateway
    slack: WebClient
    policy: ApproverPolicy
    notifier: Notifier


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
) -> Services:
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
            client=slack,
        ),
        notifier=Notifier(slack),
    )
