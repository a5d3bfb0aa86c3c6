"""Update requests: the refusals a click can meet, and the state machine's primitives.

Every state move is a compare-and-set in storage.crud.transition, recorded with its event in
one unit of work (``move``), so two clicks, two processes or a Slack retry can never both move
a request, and no move is stored without its event.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.domain.context import Services
from bot.domain.identity import WORKER_ID
from bot.domain.pages import ListingPage
from bot.domain.ports import BatchView
from bot.errors import WsimgError
from storage import crud
from storage.db import session_scope, unit_of_work
from storage.models import (
    Offer,
    State,
    UpdateRequest,
)

log = logging.getLogger(__name__)

SYSTEM = "wsimg"
REASON_MAX = 500  # a reason typed into the Reject / Cancel modal


class Refused(WsimgError):
    """A click that changes nothing. ``page``: the listing as it should now be shown."""

    def __init__(self, message: str, *, page: ListingPage | None = None) -> None:
        super().__init__(message)
        self.page = page


class NotAllowed(Refused):
    def __init__(self) -> None:
        super().__init__(
            "You may not approve WorkSpaces image updates. Ask an admin to add your Slack user "
            "or one of your user groups to WSIMG_APPROVERS."
        )


class NotAllowedToRequest(Refused):
    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            or "You may not request WorkSpaces image updates. Ask an admin to add your Slack "
            "user or one of your user groups to WSIMG_REQUESTERS."
        )


class StaleButton(Refused):
    def __init__(self) -> None:
        super().__init__(
            "That button is no longer valid. Run `/wsimg updates` again for a fresh list."
        )


class Expired(Refused):
    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} and has expired: nothing was started. Run `/wsimg updates` again."
        )


class AlreadyInFlight(Refused):
    def __init__(
        self, request: UpdateRequest, *, page: ListingPage | None = None, foreign: bool = False
    ) -> None:
        self.request, self.foreign = request, foreign
        super().__init__(self.say(request.source_image_name, lambda user: user), page=page)

    def say(self, name: str, who: Callable[[str], str]) -> str:
        """The sentence, with the image ``name`` and each user as ``who`` shows them (plain
        text here; mentions on the Slack side)."""
        request = self.request
        if self.foreign:  # who asked and decided in another channel stays there
            how = f"{request.state}, asked for in another channel"
        elif request.state == State.requested:
            how = f"waiting for approval (requested by {who(request.requested_by)})"
        else:
            how = f"{request.state}, approved by {who(request.approved_by or request.requested_by)}"
        return (
            f"An update of {name} is already in flight: {how}, request {request.short_id}. "
            "Nothing new was started."
        )


class AlreadyUpdated(Refused):
    def __init__(self, request: UpdateRequest, *, page: ListingPage | None = None) -> None:
        super().__init__(
            f"{request.source_image_name} was already updated: {request.new_image_id} "
            f"(request {request.short_id}). Nothing new was started.",
            page=page,
        )
        self.request = request


class NotUpdatable(Refused):
    pass


class UnknownRegion(WsimgError):
    pass


class NotFound(WsimgError):
    pass


def new_request(
    offer: Offer,
    *,
    user_id: str,
    channel_id: str | None,
    approved: bool,
    now: datetime,
    batch_id: str | None = None,
) -> UpdateRequest:
    """A request for the update of ``offer``'s image, asked by ``user_id`` (and approved by
    them at ``now`` when ``approved``), held by this process; not stored yet."""
    return UpdateRequest(
        id=uuid.uuid4().hex,
        state=(State.approved if approved else State.requested).value,
        active_key=offer.image_key,
        account_id=offer.account_id,
        region=offer.region,
        source_image_id=offer.image_id,
        source_image_name=offer.image_name,
        update_description=offer.update_description,
        requested_by=user_id,
        approved_by=user_id if approved else None,
        approved_at=now if approved else None,
        worker_id=WORKER_ID,
        channel_id=channel_id,
        offer_key=offer.key,
        batch_id=batch_id,
    )


def ttl(services: Services) -> timedelta:
    return timedelta(hours=services.settings.approval_ttl_hours)


def ttl_text(services: Services) -> str:
    hours = services.settings.approval_ttl_hours
    return f"{hours} hour{'s' if hours != 1 else ''}"


def record_refusal(
    services: Services, user_id: str, image: str, reason: str, request_id: str | None = None
) -> None:
    with unit_of_work(services.engine) as session:
        crud.record_event(
            session=session,
            kind="approval_refused",
            actor=user_id,
            request_id=request_id,
            detail={"image": image, "reason": reason},
        )


def expire_request(services: Services, request: UpdateRequest) -> int:
    """A request nobody decided in time ends as expired (and frees its image)."""
    reason = f"nobody approved it within {ttl_text(services)}"
    return int(close_request(services, request, State.expired, SYSTEM, reason))


def move(
    services: Services,
    request_id: str,
    *,
    from_states: Sequence[State],
    to: State,
    event: str,
    actor: str,
    detail: dict[str, Any],
    **values: Any,
) -> bool:
    """Compare-and-set the request (``values``: crud.transition's conditions and fields) and,
    only if it moved, record ``event`` in the same transaction. False when it had moved on."""
    with unit_of_work(services.engine) as session:
        moved = crud.transition(
            session=session, request_id=request_id, from_states=from_states, to=to, **values
        )
        if moved:
            crud.record_event(
                session=session, kind=event, actor=actor, request_id=request_id, detail=detail
            )
    return moved


def close_request(
    services: Services,
    request: UpdateRequest,
    to: State,
    actor: str,
    reason: str,
    *,
    refresh: bool = True,
) -> bool:
    """requested → rejected | cancelled | expired, with who and why; False if it had moved."""
    moved = move(
        services,
        request.id,
        from_states=[State.requested],
        to=to,
        event=to.value,
        actor=actor,
        detail={"image": request.image_key, "reason": reason},
        closed_by=actor if actor != SYSTEM else None,
        close_reason=reason[:REASON_MAX],
    )
    if moved and refresh:
        show(services, reload_request(services, request.id))
    return moved


def show(services: Services, request: UpdateRequest) -> None:
    """Bring the message that shows ``request`` up to date: its announcement, or, for a
    request of a bulk approval, the batch's one message."""
    if request.batch_id is None:
        services.notifier.refresh(request)
        return
    view = batch_view(services, request.batch_id)
    if view is not None:
        services.notifier.refresh_batch(view)


def batch_view(services: Services, batch_id: str) -> BatchView | None:
    with session_scope(services.engine) as session:
        batch = crud.get_batch(session=session, batch_id=batch_id)
        requests = crud.batch_requests(session=session, batch_id=batch_id) if batch else []
    if batch is None:
        return None
    return BatchView(
        batch=batch, requests=requests, max_concurrent=services.settings.max_concurrent_updates
    )


def reload_request(services: Services, request_id: str) -> UpdateRequest:
    with session_scope(services.engine) as session:
        request = crud.get_request(session=session, request_id=request_id)
    assert request is not None
    return request


def note(services: Services, request_id: str, kind: str, detail: dict[str, object]) -> None:
    """Record an event of wsimg's own about a request (no state change)."""
    with unit_of_work(services.engine) as session:
        crud.record_event(
            session=session, kind=kind, actor=SYSTEM, request_id=request_id, detail=detail
        )
