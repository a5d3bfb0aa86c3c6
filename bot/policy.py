"""Who may approve: Slack user IDs and members of Slack user groups (WSIMG_APPROVERS).

Group membership comes from usergroups.users.list and is cached briefly so a busy channel does
not hammer the API, while a removal still takes effect within a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 60.0


class ApproverPolicy:
    def __init__(
        self,
        *,
        users: Iterable[str],
        groups: Iterable[str],
        client: WebClient,
        cache_seconds: float = GROUP_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = frozenset(users)
        self._groups = tuple(groups)
        self._client = client
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self._users or self._groups)

    def can_approve(self, user_id: str) -> bool:
        if user_id in self._users:
            return True
        return any(user_id in self._members(group) for group in self._groups)

    def _members(self, group_id: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(group_id)
            if cached and now - cached[0] < self._cache_seconds:
                return cached[1]
        try:
            response = self._client.usergroups_users_list(usergroup=group_id)
            members = frozenset(response.get("users") or [])
        except SlackApiError as exc:
            # Deny rather than guess; the failure is not cached so the next click asks again.
            log.warning("usergroups.users.list %s failed: %s", group_id, exc.response.get("error"))
            return frozenset()
        with self._lock:
            self._cache[group_id] = (now, members)
        return members
