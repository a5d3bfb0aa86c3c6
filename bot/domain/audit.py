"""What happened: `status`, `history` and the audit trail, each only what the asker may see."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from bot.domain.context import Services
from bot.domain.requests import NotFound, Refused, record_refusal
from storage import crud
from storage.db import session_scope
from storage.models import (
    IN_FLIGHT,
    Event,
    UpdateRequest,
)

log = logging.getLogger(__name__)

# --- what happened: status and history --------------------------------------------------------

HISTORY_DEFAULT, HISTORY_MAX = 10, 50


@dataclass(frozen=True)
class Viewer:
    """Who asks about requests, and where: what they may see follows from it.

    A request belongs to the channel it was made in. In a channel, ``status`` and ``history``
    show that channel's requests; in a direct message with wsimg (a D… channel), the requests
    the caller made there. An approver may ask for every request (``all``); the answer is
    shown only to them. Anything else is as if it did not exist.
    """

    user_id: str
    channel_id: str
    everything: bool = False

    @property
    def in_dm(self) -> bool:
        return self.channel_id.startswith("D")


class NotAllowedToSeeAll(Refused):
    def __init__(self) -> None:
        super().__init__(
            "Only approvers (WSIMG_APPROVERS) may see every channel's requests. Without `all`, "
            "you see the requests made in the channel you ask in."
        )


def viewer(services: Services, *, user_id: str, channel_id: str, everything: bool) -> Viewer:
    """The caller's view; asking for everything needs an approver (refused and recorded)."""
    if everything and not services.policy.can_approve(user_id):
        record_refusal(services, user_id, "", "not an approver: asked for all requests")
        raise NotAllowedToSeeAll()
    return Viewer(user_id=user_id, channel_id=channel_id, everything=everything)


def _scope(who: Viewer) -> crud.Scope:
    if who.everything:
        return crud.Scope()
    if who.in_dm:
        return crud.Scope(channel_id=who.channel_id, requested_by=who.user_id)
    return crud.Scope(channel_id=who.channel_id)


@dataclass(frozen=True)
class Status:
    request: UpdateRequest
    events: list[Event]


def status(services: Services, *, query: str | None, who: Viewer) -> list[Status]:
    """One request (by its id, as shown or in full, or a source or new image id, exactly) or
    every request in flight: only those ``who`` may see."""
    scope = _scope(who)
    with session_scope(services.engine) as session:
        if query:
            found = crud.find_request(session=session, identifier=query, scope=scope)
            if found is None:
                raise NotFound(
                    f"No update request here matches `{query[:80]}`. Use a request id from "
                    "`/wsimg history` in the channel where it was asked for, or a source or "
                    "new image id (wsi-…)."
                )
            requests = [found]
        else:
            requests = crud.requests_in(session=session, states=IN_FLIGHT, scope=scope)
        return [
            Status(request=r, events=crud.events(session=session, request_id=r.id, limit=20))
            for r in requests
        ]


def history(
    services: Services, *, who: Viewer, limit: int = HISTORY_DEFAULT
) -> list[UpdateRequest]:
    limit = min(max(limit, 1), HISTORY_MAX)
    with session_scope(services.engine) as session:
        return crud.recent_requests(session=session, limit=limit, scope=_scope(who))


def audit_trail(engine: Engine, *, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` requests, each with every event recorded about it, oldest first:
    what `wsimg history --json` exports."""
    with session_scope(engine) as session:
        requests = crud.recent_requests(session=session, limit=max(limit, 1))
        return [
            {
                **request.model_dump(mode="json", exclude={"active_key", "worker_id"}),
                "events": [
                    event.model_dump(mode="json", exclude={"request_id"})
                    for event in reversed(
                        crud.events(session=session, request_id=request.id, limit=1000)
                    )
                ],
            }
            for request in requests
        ]
