"""Which Slack installation this process serves, and the check that refuses everyone else.

Slack's signature proves that a request came from Slack, not that it came from *this*
installation: one signing secret covers every workspace of a distributed app and every
workspace of an Enterprise Grid org, so a signed click from another workspace would otherwise
approve images here. The identity is learned once, when the app is built: ``auth.test`` with
the bot token names its workspace (``team_id``), its Enterprise Grid org (``enterprise_id``)
and its app (``app_id``). ``WSIMG_TEAM_IDS``, when set, lists the workspaces (T…) and the orgs
(E…, every workspace of the org) served instead of the bot token's own workspace.

A command, interaction or event (the Home tab opened) is served only when

* its ``api_app_id`` (and ``view.app_id`` or an event's ``event.view.app_id``, if any) is this
  app's — Slack always sends it, so a request without one is refused;
* every enterprise it names (``enterprise_id``, ``enterprise.id``, ``team.enterprise_id``) is
  the bot token's org or one listed in ``WSIMG_TEAM_IDS``;
* every workspace it names (command and event ``team_id``; interaction ``team.id`` and
  ``user.team_id``; ``view.team_id`` and ``view.app_installed_team_id``, and the same of an
  event's ``event.view``) is served, or its enterprise is an org served whole. Slack always
  names the workspace of a command, interaction or event, so a request that names none is
  refused — unless it comes from an org served whole (org-wide installs
  may leave ``team`` null). A user of another workspace in a Slack Connect channel is
  therefore refused too: only this installation's people may ask for or approve an update.

Slack's URL checks (``url_verification``, ``ssl_check``) name no workspace and are let through.

The check is a Bolt middleware that runs before authorization, so it holds over HTTP and
Socket Mode alike; a refused request gets HTTP 403 with an empty body and nothing else: no
listener runs, nothing is posted to its response_url, nothing is written or called.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.config import Settings, require
from bot.errors import ConfigError
from bot.slack.inbound import SLACK_ID

log = logging.getLogger(__name__)

_URL_CHECKS = frozenset({"url_verification"})


@dataclass(frozen=True)
class Installation:
    """This installation's identity: whom the app serves."""

    app_id: str | None  # None only if auth.test names no app (then no app check is possible)
    team_ids: frozenset[str]  # workspaces served
    enterprise_ids: frozenset[str]  # orgs all of whose workspaces are served
    enterprise_id: str | None = None  # the bot token's own org (Enterprise Grid), else None

    @classmethod
    def learn(cls, settings: Settings, client: WebClient) -> Installation:
        """Ask Slack who the bot token belongs to; a token Slack refuses, or a Slack that does
        not answer, stops the process with a sentence that says what to do."""
        installation = cls.of(settings, auth_test(settings, client))
        log.info(
            "serving app %s in workspaces %s and orgs %s",
            installation.app_id or "(auth.test named none: any app)",
            ", ".join(sorted(installation.team_ids)) or "-",
            ", ".join(sorted(installation.enterprise_ids)) or "-",
        )
        return installation

    @classmethod
    def of(cls, settings: Settings, auth_test: dict[str, Any]) -> Installation:
        """The identity from an auth.test answer and WSIMG_TEAM_IDS."""
        team, enterprise, app = (
            value if isinstance(value, str) and value else None
            for value in (
                auth_test.get("team_id"),
                auth_test.get("enterprise_id"),
                auth_test.get("app_id"),
            )
        )
        if settings.team_ids:
            teams = frozenset(t for t in settings.team_ids if t.startswith("T"))
            orgs = frozenset(t for t in settings.team_ids if t.startswith("E"))
        elif auth_test.get("is_enterprise_install") is True and enterprise:
            teams, orgs = frozenset(), frozenset({enterprise})  # an org-wide install
        else:
            teams, orgs = frozenset({team} if team else ()), frozenset()
        return cls(app_id=app, team_ids=teams, enterprise_ids=orgs, enterprise_id=enterprise)

    def refusal(self, body: dict[str, Any]) -> str | None:
        """Why ``body`` is not this installation's (the field and what it held), or None."""
        if body.get("type") in _URL_CHECKS or body.get("ssl_check") is not None:
            return None
        if self.app_id is not None:
            apps = list(_named(body, ("api_app_id",), ("view", "app_id"), _EVENT_VIEW_APP))
            if not any(field == "api_app_id" for field, _ in apps):
                return "api_app_id is missing"
            for field, value in apps:
                if not _among(value, {self.app_id}):
                    return _mismatch(field, value)
        own = self.enterprise_ids | ({self.enterprise_id} if self.enterprise_id else set())
        enterprises = list(_named(body, *_ENTERPRISE_FIELDS))
        for field, value in enterprises:
            if not _among(value, own):
                return _mismatch(field, value)
        whole_org = any(_among(value, self.enterprise_ids) for _, value in enterprises)
        teams = list(_named(body, *_TEAM_FIELDS))
        if not teams and not whole_org:
            return "no team is named"
        for field, value in teams:
            if not (whole_org or _among(value, self.team_ids)):
                return _mismatch(field, value)
        return None


def auth_test(settings: Settings, client: WebClient) -> dict[str, Any]:
    """Slack's auth.test answer for the bot token. Every process that posts asks it first
    (`serve` through ``Installation.learn``, `worker`, `digest`), so a token Slack refuses, or a
    Slack that does not answer, stops it at once with a sentence that says what to do."""
    require(settings.slack_bot_token, "SLACK_BOT_TOKEN")
    where = f"{settings.slack_api_url}auth.test"
    try:
        answer = client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else None
        raise ConfigError(
            f"Slack refused SLACK_BOT_TOKEN ({error or 'no reason given'}) at {where}: set "
            "SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…, on its OAuth & "
            "Permissions page) for the Slack that SLACK_API_URL names."
        ) from exc
    except (SlackClientError, OSError) as exc:
        raise ConfigError(
            f"Slack did not answer at {where} ({type(exc).__name__}): check SLACK_API_URL "
            "and that this host can reach it."
        ) from exc
    return answer.data if isinstance(answer.data, dict) else {}


_ENTERPRISE_FIELDS = (("enterprise_id",), ("enterprise", "id"), ("team", "enterprise_id"))
_TEAM_FIELDS = (
    ("team_id",),
    ("team", "id"),
    ("user", "team_id"),
    ("view", "team_id"),
    ("view", "app_installed_team_id"),
    ("event", "view", "team_id"),  # app_home_opened: the Home tab last published, if any
    ("event", "view", "app_installed_team_id"),
)
_EVENT_VIEW_APP = ("event", "view", "app_id")


def _named(body: dict[str, Any], *paths: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """(field, value) for every path present with a value (an empty string, a JSON null or a
    null object count as absent). ``enterprise``/``team`` may also be a bare ID string."""
    for path in paths:
        value: Any = body
        for depth, key in enumerate(path):
            if isinstance(value, str) and depth == len(path) - 1 and key == "id":
                break  # "team": "T…" instead of {"id": "T…"}
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None and value != "":
            yield ".".join(path), value


def _among(value: Any, ids: frozenset[str] | set[str]) -> bool:
    return isinstance(value, str) and value in ids


def _mismatch(field: str, value: Any) -> str:
    shown = value if isinstance(value, str) and SLACK_ID.fullmatch(value) else "something else"
    return f"{field} is {shown}"


def refused(installation: Installation, body: dict[str, Any]) -> bool:
    """Whether ``installation`` refuses this request; the refusal is logged (which field did
    not match, never the payload)."""
    problem = installation.refusal(body)
    if problem is None:
        return False
    kind = body.get("type") if isinstance(body.get("type"), str) else None
    what = kind if kind and _SLACK_KIND.fullmatch(kind) else "slash command"
    log.warning("refused a %s not from this installation: %s", what, problem)
    return True


_SLACK_KIND = re.compile(r"[a-z_]{1,40}")
