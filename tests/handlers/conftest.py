"""Fixtures of the handler tests: ``hostile``, for test_hostile_input.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.config import Settings
from bot.fakes.slack import SlackWebAPI
from bot.fakes.workspaces import WorkSpacesSimulator
from bot.slack import limits
from tests.conftest import running_world
from tests.handlers.hostile import Hostile, seeded


@pytest.fixture
def hostile(
    settings: Settings,
    simulator: WorkSpacesSimulator,
    slack: SlackWebAPI,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Hostile]:
    """The ``world`` of tests/conftest.py, with images to list and the offer keys of real
    listings (several users, channels, regions): tests/handlers/hostile.py.

    The per-user command limits (bot/slack/limits.py, tested in tests/test_load.py) are
    lifted: the hostile-input suite sends hundreds of commands from a few users to see every
    one handled, not refused."""
    caplog.set_level(logging.ERROR)
    unlimited = limits.Rate(burst=10**6, per_minute=10**6)
    monkeypatch.setattr(limits, "LISTINGS", unlimited)
    monkeypatch.setattr(limits, "OTHER_COMMANDS", unlimited)
    with running_world(settings, simulator, slack) as world:
        yield seeded(world, caplog)
