"""What every domain function is handed: the settings, the database, the AWS gateway, the
approval policy and the notifier port. Built once per process by bot/runtime.py."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from bot.aws.gateway import WorkSpacesGateway
from bot.config import Settings
from bot.domain.policy import ApproverPolicy
from bot.domain.ports import Notifier


@dataclass
class Services:
    settings: Settings
    engine: Engine
    gateway: WorkSpacesGateway
    policy: ApproverPolicy
    notifier: Notifier
