"""The world the hostile-input suite (test_hostile_input.py) sends to, and the checks every
request it sends must pass: the ``hostile`` fixture (tests/handlers/conftest.py) is the
``world`` of tests/conftest.py with the per-user command limits lifted, seeded with images and
the offer keys of real listings."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlmodel import func, select

from bot.fakes.slack import HttpResult, SlackWebAPI, find_buttons
from bot.slack.ids import Action
from storage.db import session_scope
from storage.models import Offer, UpdateRequest
from tests.conftest import APPROVER, OUTSIDER, TrackingExecutor, World

CREATE = "CreateUpdatedWorkspaceImage"
OTHER_CHANNEL = "C0OTHER"
SETTLE_SECONDS = 30.0


class _LoggedError(AssertionError):
    """The app logged at ERROR. There is one subclass per logged exception type so that
    hypothesis tells the defects apart, and shrinks and reports each of them."""


_LOGGED_CLASSES: dict[str, type[_LoggedError]] = {}


def _logged_error_class(name: str) -> type[_LoggedError]:
    if name not in _LOGGED_CLASSES:
        _LOGGED_CLASSES[name] = type(f"LoggedError_{name}", (_LoggedError,), {})
    return _LOGGED_CLASSES[name]


@dataclass
class Hostile:
    """The fake world, the real keys of three listings, and the checks every request passes."""

    world: World
    executor: TrackingExecutor  # the app's listener pool
    caplog: pytest.LogCaptureFixture
    health_url: str
    keys: dict[str, list[str]] = field(default_factory=dict)
    sent: int = 0

    @property
    def slack(self) -> SlackWebAPI:
        return self.world.slack

    def response_url(self, *, user_id: str = APPROVER) -> str:
        return self.slack.new_response_url(channel="C0OPS", user_id=user_id)

    # -- sending (each clears the log capture: the checks look at what this request logged) --

    def post(self, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> Any:
        self.caplog.clear()
        self.sent += 1
        return self.world.user.post(body, content_type=content_type)

    def post_payload(self, payload: Any) -> Any:
        raw = payload if isinstance(payload, str) else json.dumps(payload)
        return self.post(urlencode({"payload": raw}).encode())

    def command(self, text: str, *, user_id: str = APPROVER, channel_id: str = "C0OPS") -> Any:
        self.caplog.clear()
        self.sent += 1
        return self.world.command(text, user_id=user_id, channel_id=channel_id)

    # -- the invariants -----------------------------------------------------------------------

    def check(
        self, result: HttpResult, *, answer_at: str | None = None, ack_answers: bool = False
    ) -> None:
        """Every invariant, once all the listeners this request started have finished.

        ``answer_at``: the response_url where the user must have been answered;
        ``ack_answers``: the answer must be in the ack itself (the help text).
        """
        raised, running = self.executor.settle(SETTLE_SECONDS)
        assert result.status < 500, f"HTTP {result.status}: {result.body[:300]!r}"
        assert running == 0, f"{running} listener(s) still running after {SETTLE_SECONDS}s"
        assert not raised, f"a listener raised: {raised!r}"
        self._nothing_logged_at_error()
        assert self.world.simulator.count(CREATE) == 0, "CreateUpdatedWorkspaceImage was called"
        assert _update_requests(self.world) == 0, "an UpdateRequest row was written"
        assert _healthz(self.health_url) == 200, "/healthz no longer answers 200"
        if ack_answers:
            ack = result.json if isinstance(result.json, dict) else {}
            assert result.status == 200 and (ack.get("text") or ack.get("blocks")), (
                f"no answer in the ack: HTTP {result.status} {result.body[:200]!r}"
            )
        if answer_at is not None:
            refused = [r for r in self.slack.rejected_responses if answer_at.endswith(r[0])]
            assert not refused, f"Slack refused the answer: {refused[0][2]}"
            assert result.status == 200, f"HTTP {result.status}, no answer: {result.body[:200]!r}"
            assert self.slack.responses_for(answer_at), "the user was never answered"

    def _nothing_logged_at_error(self) -> None:
        errors = [r for r in self.caplog.records if r.levelno >= logging.ERROR]
        if not errors:
            return
        first = errors[0].exc_info
        kind = first[0].__name__ if first and first[0] else "message"
        lines = []
        for record in errors:
            exc = record.exc_info[1] if record.exc_info else None
            detail = f" [{type(exc).__name__}: {str(exc)[:300]}]" if exc is not None else ""
            lines.append(f"{record.name}: {record.getMessage()[:200]}{detail}")
        raise _logged_error_class(kind)("the app logged at ERROR:\n  " + "\n  ".join(lines))

    def still_serves(self) -> None:
        """A normal `/wsimg updates` by an approver still answers with the listing."""
        self.caplog.clear()
        listing = self.world.listing()
        self.executor.settle(SETTLE_SECONDS)
        text = json.dumps(listing["blocks"])
        assert "Win-Hostile-A" in text and "Win-Hostile-B" in text, text[:500]
        actions = [b["action_id"] or "" for b in find_buttons(listing["blocks"])]
        assert any(a.startswith(Action.APPROVE.value) for a in actions), actions
        assert _healthz(self.health_url) == 200
        self._nothing_logged_at_error()
        assert self.world.simulator.count(CREATE) == 0
        assert _update_requests(self.world) == 0


def _update_requests(world: World) -> int:
    with session_scope(world.services.engine) as session:
        return int(session.exec(select(func.count()).select_from(UpdateRequest)).one())


def _healthz(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback URL)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def seeded(world: World, caplog: pytest.LogCaptureFixture) -> Hostile:
    """The checks, with images to list and the offer keys of real listings."""
    simulator, executor = world.simulator, world.listeners
    hostile = Hostile(
        world=world,
        executor=executor,
        caplog=caplog,
        health_url=world.events_url.replace("/slack/events", "/healthz"),
    )
    simulator.add_image(region="us-east-1", name="Win-Hostile-A")
    simulator.add_image(region="eu-west-1", name="Win-Hostile-B")
    simulator.add_image(region="us-east-1", name="Lnx-Hostile", platform="LINUX")
    simulator.add_image(region="eu-west-1", name="Win-Hostile-Busy", state="PENDING")
    mine = world.listing()
    world.listing(user_id=OUTSIDER)
    world.answer(world.command("updates", user_id=OUTSIDER, channel_id=OTHER_CHANNEL))
    world.listing("updates us-east-1")
    executor.settle(SETTLE_SECONDS)
    with session_scope(world.services.engine) as session:
        offers = list(session.exec(select(Offer)))
    hostile.keys = {
        "approve": [
            b["value"]
            for b in find_buttons(mine["blocks"])
            if (b["action_id"] or "").startswith(Action.APPROVE.value)
        ],
        # Offers nobody may update: the Linux image, the image still PENDING.
        "not_updatable": [o.key for o in offers if o.not_updatable_reason],
        "updatable": [o.key for o in offers if not o.not_updatable_reason],
        "all": [o.key for o in offers],
    }
    assert hostile.keys["approve"] and hostile.keys["not_updatable"], hostile.keys
    simulator.clear_calls()
    return hostile
