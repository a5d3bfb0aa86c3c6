"""Slack I/O: parse a command or payload, call one domain function, render the answer."""

from __future__ import annotations

from slack_bolt import App

from bot.domain.context import Services
from handlers import actions, commands, errors, home, rollout


def register(app: App, services: Services) -> None:
    errors.register(app)
    home.register(app, services)  # first: it takes every click on a Home tab (handlers/home.py)
    commands.register(app, services)
    actions.register(app, services)
    rollout.register(app, services)
