"""The app's Home tab in the Slack stand-in.

Toward the bot: views.publish, checked like Slack (``invalid_arguments`` for a view that is not
``type: home`` or breaks a Block Kit limit, ``hash_conflict`` for a stale ``hash``), one Home
view per user, kept with its earlier versions (:meth:`HomeTabs.home`,
:meth:`HomeTabs.home_versions`, :meth:`HomeTabs.wait_for_home`).

Toward the app: what Slack sends when someone opens the Home tab (:func:`home_opened`, a JSON
``app_home_opened`` event carrying the view last published for them) and when they click a
button on it (:func:`home_click`: container ``view``, the view, no channel, no response_url).
:class:`~bot.fakes.slack.users.SlackUser` signs and sends them.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from bot.fakes.slack.blockkit import fill_ids, validate_home_view
from bot.fakes.slack.records import APP_ID, BOT_ID, BOT_USER_ID, VERIFICATION_TOKEN
from bot.fakes.slack.state import SlackState

_USER_ID = re.compile(r"[UW][A-Z0-9]+")


class HomeTabs(SlackState):
    """The Home tab part of :class:`~bot.fakes.slack.api.SlackWebAPI`."""

    # -- records -----------------------------------------------------------------------------

    def home(self, user_id: str) -> dict[str, Any] | None:
        """The Home view last published for ``user_id``, as Slack returned it; None if none."""
        with self._lock:
            versions = self._homes.get(user_id)
            return copy.deepcopy(versions[-1]) if versions else None

    def home_versions(self, user_id: str) -> list[dict[str, Any]]:
        """Every Home view published for ``user_id``, oldest first."""
        with self._lock:
            return copy.deepcopy(self._homes.get(user_id, []))

    def wait_for_home(
        self,
        user_id: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda view: True,
        *,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Block until the Home view published for ``user_id`` matches, and return it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                versions = self._homes.get(user_id)
                if versions and predicate(versions[-1]):
                    return copy.deepcopy(versions[-1])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"no matching Home view for {user_id} within {timeout}s "
                        f"({len(versions or [])} published)"
                    )
                self._cond.wait(remaining)

    # -- views.publish (called with the lock held) -------------------------------------------

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id, view = args.get("user_id"), args.get("view")
        if not user_id or view is None:
            missing = "user_id" if not user_id else "view"
            return _invalid([f"missing required field: {missing}"])
        if not isinstance(user_id, str) or not _USER_ID.fullmatch(user_id):
            return {"ok": False, "error": "user_not_found"}
        if problems := validate_home_view(view):
            return _invalid(problems)
        versions = self._homes.setdefault(user_id, [])
        previous = versions[-1] if versions else None
        if args.get("hash") and (previous is None or args["hash"] != previous["hash"]):
            return {"ok": False, "error": "hash_conflict"}
        view_id = previous["id"] if previous else f"VH{len(self._homes):08d}"
        published: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team_id,
            "type": "home",
            "blocks": fill_ids(copy.deepcopy(view["blocks"])),
            "private_metadata": view.get("private_metadata") or "",
            "callback_id": view.get("callback_id") or "",
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "clear_on_close": False,
            "notify_on_close": False,
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": APP_ID,
            "external_id": view.get("external_id") or "",
            "app_installed_team_id": self.team_id,
            "bot_id": BOT_ID,
        }
        versions.append(published)
        before = {"blocks": copy.deepcopy(previous["blocks"])} if previous else None
        return {
            "ok": True,
            "view": copy.deepcopy(published),
            "_detail": {"user": user_id, "view_id": view_id, "before": before},
        }


def _invalid(problems: list[str]) -> dict[str, Any]:
    return {
        "ok": False,
        "error": "invalid_arguments",
        "response_metadata": {"messages": [f"[ERROR] {p}" for p in problems]},
    }


# -- what Slack sends the app ------------------------------------------------------------------


def home_opened(
    api: HomeTabs,
    *,
    user_id: str,
    team_id: str,
    app_id: str,
    enterprise_id: str | None,
    tab: str = "home",
) -> dict[str, Any]:
    """The Events API callback Slack sends when ``user_id`` opens the app's Home (or Messages)
    tab: the view last published for them rides along, as Slack sends it."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": api.dm_channel_id(user_id),
        "tab": tab,
        "event_ts": api.next_ts(),
    }
    view = api.home(user_id)
    if view is not None:
        event["view"] = view
    body: dict[str, Any] = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": app_id,
        "event": event,
        "type": "event_callback",
        "event_id": f"Ev{secrets.token_hex(5).upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": enterprise_id,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "context_team_id": team_id,
        "context_enterprise_id": enterprise_id,
    }
    if enterprise_id is not None:
        body["enterprise_id"] = enterprise_id
    return body


def home_click(
    view: Mapping[str, Any],
    button: Mapping[str, Any],
    *,
    user: dict[str, Any],
    team: dict[str, Any],
    enterprise: dict[str, Any] | None,
    app_id: str,
    trigger_id: str,
    action_ts: str,
) -> dict[str, Any]:
    """The block_actions payload of a click on ``button`` (a :func:`find_buttons` dict, or a
    forged one) of the Home ``view``: container ``view``, no channel, no response_url."""
    action: dict[str, Any] = {
        "action_id": button["action_id"],
        "block_id": button.get("block_id") or secrets.token_hex(3),
        "text": {"type": "plain_text", "text": button.get("text") or "", "emoji": True},
        "type": "button",
        "action_ts": action_ts,
    }
    if button.get("value") is not None:
        action["value"] = button["value"]
    return {
        "type": "block_actions",
        "user": user,
        "api_app_id": app_id,
        "token": VERIFICATION_TOKEN,
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": trigger_id,
        "team": team,
        "enterprise": enterprise,
        "is_enterprise_install": False,
        "view": copy.deepcopy(dict(view)),
        "actions": [action],
    }
