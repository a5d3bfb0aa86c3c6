"""Who may do what: approvers (WSIMG_APPROVERS), requesters (WSIMG_REQUESTERS) and digest
managers (WSIMG_DIGEST_MANAGERS), each a list of Slack user IDs and user groups, and the
four-eyes rule (WSIMG_FOUR_EYES).

Group membership comes from the ``GroupMembers`` port (Slack's usergroups.users.list, cached
briefly: bot/slack/groups.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.domain.ports import GroupMembers

_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


class ApproverPolicy:
    """``can_approve``: in WSIMG_APPROVERS. ``can_request`` (only asked with four-eyes on): in
    WSIMG_REQUESTERS, or anyone who can click in the channel when that is empty, or an
    approver. ``four_eyes``: the requester of an update may not also approve it."""

    def __init__(
        self,
        *,
        users: Iterable[str],
        groups: Iterable[str],
        members: GroupMembers,
        requesters: Iterable[str] = (),
        digest_managers: Iterable[str] = (),
        four_eyes: bool = False,
    ) -> None:
        self._users = frozenset(users)
        self._groups = tuple(groups)
        requesters = tuple(requesters)
        self._requester_users = frozenset(r for r in requesters if r[:1] in ("U", "W"))
        self._requester_groups = tuple(r for r in requesters if r[:1] == "S")
        managers = tuple(digest_managers)
        self._manager_users = frozenset(m for m in managers if m[:1] in ("U", "W"))
        self._manager_groups = tuple(m for m in managers if m[:1] == "S")
        self.four_eyes = four_eyes
        self._members = members

    def can_approve(self, user_id: str) -> bool:
        return self._listed(user_id, self._users, self._groups)

    def can_manage_digests(self, user_id: str) -> bool:
        """Subscribe, unsubscribe, post a digest now: approvers and WSIMG_DIGEST_MANAGERS."""
        return self.can_approve(user_id) or self._listed(
            user_id, self._manager_users, self._manager_groups
        )

    def can_request_in_bulk(self, user_id: str) -> bool:
        """ "Request all N" holds every image it asks for until someone decides: only an
        approver or someone named in WSIMG_REQUESTERS, never anyone in the channel."""
        return self.can_approve(user_id) or self._listed(
            user_id, self._requester_users, self._requester_groups
        )

    def can_request(self, user_id: str) -> bool:
        if not _USER_ID.fullmatch(user_id):
            return False
        if not (self._requester_users or self._requester_groups):
            return True  # anyone in the channel
        return self._listed(
            user_id, self._requester_users, self._requester_groups
        ) or self.can_approve(user_id)

    def _listed(self, user_id: str, users: frozenset[str], groups: Iterable[str]) -> bool:
        if user_id in users:
            return True
        return any(user_id in self._members(group) for group in groups)
