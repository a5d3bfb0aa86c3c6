"""Members of Slack user groups (usergroups.users.list), for the approval policy.

Cached briefly so a busy channel does not hammer the API, while a removal still takes effect
within a minute. A failure denies (an empty group) and is not cached: the next click asks again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

GROUP_CACHE_SECONDS = 60.0


class SlackGroups:
    def __init__(
        self,
        client: WebClient,
        *,
        cache_seconds: float = GROUP_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def __call__(self, group_id: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(group_id)
            if cached and now - cached[0] < self._cache_seconds:
                return cached[1]
        try:
            response = self._client.usergroups_users_list(usergroup=group_id)
            members = frozenset(response.get("users") or [])
        except SlackApiError as exc:
            log.warning("usergroups.users.list %s failed: %s", group_id, exc.response.get("error"))
            return frozenset()
        with self._lock:
            self._cache[group_id] = (now, members)
        return members
