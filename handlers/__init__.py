"""Slack I/O: parse a command or payload, call one domain function, render the answer."""

from __future__ import annotations

from slack_bolt import App

from bot.domain.context import Services
from handlers import actions, commands, errors, rollout


def register(app: App, services: Services) -> None:
    errors.register(app)
    commands.register(app, services)
    actions.register(app, services)
    rollout.register(app, services)
