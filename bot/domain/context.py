"""What every domain function is handed: the settings, the database, the AWS gateway, the
approval policy and the notifier port. Built once per process by bot/runtime.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine

from bot.aws.gateway import WorkSpacesGateway
from bot.config import Settings
from bot.domain.policy import ApproverPolicy
from bot.domain.ports import Notifier

# DescribeWorkspaceImages can lag a moment behind a create: after ResourceAlreadyExists the
# Name is looked up a few times this far apart before the create is called a failure.
NAME_LOOKUP_PAUSE_S = 2.0


@dataclass
class Services:
    settings: Settings
    engine: Engine
    gateway: WorkSpacesGateway
    policy: ApproverPolicy
    notifier: Notifier
    # Keyword-only, so that subclasses (bot/runtime.py) may add fields without defaults.
    name_lookup_pause: float = field(default=NAME_LOOKUP_PAUSE_S, kw_only=True)
