"""Deciding a request under four-eyes (WSIMG_FOUR_EYES): a different approver approves it,
an approver rejects it, its requester (or an approver) cancels it, with a reason; and a request
nobody decided expires after WSIMG_APPROVAL_TTL_HOURS.

The buttons carry the request's id. Every click is checked again here: the request must exist,
belong to the message that was clicked, still wait for a decision and be young enough, and the
clicker must be allowed; only then does anything move, by compare-and-set.
"""

from __future__ import annotations

from bot.domain.approval import recheck_image
from bot.domain.context import Services
from bot.domain.identity import WORKER_ID
from bot.domain.requests import (
    REASON_MAX,
    SYSTEM,
    Expired,
    NotAllowed,
    NotUpdatable,
    Refused,
    StaleButton,
    close_request,
    expire_request,
    move,
    record_refusal,
    reload_request,
    ttl,
    ttl_text,
)
from bot.domain.requests import show as show_request
from bot.domain.submit import submit
from bot.errors import WsimgError
from storage import crud
from storage.db import session_scope
from storage.models import State, UpdateRequest, utcnow

# The channel and ts of the message a button was clicked on ("", "" when not a channel message).
Clicked = tuple[str, str]


class SelfApproval(Refused):
    def __init__(self) -> None:
        super().__init__(
            "You asked for this update, and WSIMG_FOUR_EYES needs a different approver to "
            "approve it. Ask another approver."
        )


class NotAllowedToClose(Refused):
    def __init__(self, cancel: bool) -> None:
        super().__init__(
            "Only the person who asked for this update, or an approver, may cancel it."
            if cancel
            else "You may not reject WorkSpaces image updates: only the people in "
            "WSIMG_APPROVERS may."
        )


class AlreadyDecided(Refused):
    def __init__(self, request: UpdateRequest) -> None:
        super().__init__(f"This request is already {request.state}; nothing was changed.")
        self.request = request


class BadReason(WsimgError):
    pass


def confirm(
    services: Services, *, request_id: str, user_id: str, message: Clicked
) -> UpdateRequest:
    """A different approver approves a requested update: it is then submitted exactly once."""
    request = _open_request(services, request_id, message)
    policy = services.policy
    if not policy.can_approve(user_id):
        record_refusal(services, user_id, request.image_key, "not an approver", request.id)
        raise NotAllowed()
    if policy.four_eyes and user_id == request.requested_by:
        record_refusal(services, user_id, request.image_key, "four eyes: the requester", request.id)
        raise SelfApproval()
    reason = recheck_image(
        services,
        account_id=request.account_id,
        region=request.region,
        image_id=request.source_image_id,
        name=request.source_image_name,
    )
    if reason is not None:
        close_request(services, request, State.rejected, SYSTEM, reason)
        raise NotUpdatable(reason)
    moved = move(
        services,
        request.id,
        from_states=[State.requested],
        to=State.approved,
        event="approved",
        actor=user_id,
        detail={"image": request.image_key, "requested_by": request.requested_by},
        approved_by=user_id,
        approved_at=utcnow(),
        worker_id=WORKER_ID,
    )
    if not moved:
        raise AlreadyDecided(reload_request(services, request.id))
    show_request(services, reload_request(services, request.id))
    return submit(services, request_id=request.id)


def may_close(
    services: Services, *, request_id: str, user_id: str, message: Clicked | None, cancel: bool
) -> UpdateRequest:
    """Whether this click may reject (or cancel) the request: asked before the modal opens
    and again when it is submitted."""
    request = _open_request(services, request_id, message)
    policy = services.policy
    allowed = policy.can_approve(user_id) or (cancel and user_id == request.requested_by)
    if not allowed:
        record_refusal(
            services,
            user_id,
            request.image_key,
            "may not cancel" if cancel else "may not reject",
            request.id,
        )
        raise NotAllowedToClose(cancel)
    return request


def check_close(
    services: Services, *, request_id: str, user_id: str, cancel: bool, reason: str
) -> tuple[UpdateRequest, str]:
    """The modal's submission, checked before it closes: the reason and the clicker."""
    reason = " ".join(reason.split())
    if len(reason) < 3:
        raise BadReason("Say in a few words why, so the others know.")
    if len(reason) > REASON_MAX:
        raise BadReason(f"Keep the reason under {REASON_MAX} characters.")
    request = may_close(
        services, request_id=request_id, user_id=user_id, message=None, cancel=cancel
    )
    return request, reason


def close(
    services: Services,
    *,
    request_id: str,
    user_id: str,
    cancel: bool,
    reason: str,
    refresh: bool = True,
) -> UpdateRequest:
    """Reject or cancel a requested update, with the reason given in the modal. Done while
    the modal waits for its answer, so any refusal shows in it; ``refresh=False`` leaves the
    announcement's update to ``show`` afterwards."""
    request, reason = check_close(
        services, request_id=request_id, user_id=user_id, cancel=cancel, reason=reason
    )
    to = State.cancelled if cancel else State.rejected
    if not close_request(services, request, to, user_id, reason, refresh=refresh):
        raise AlreadyDecided(reload_request(services, request.id))
    return reload_request(services, request.id)


def show(services: Services, *, request_id: str) -> None:
    """Bring the request's announcement up to date (after a close done without it)."""
    with session_scope(services.engine) as session:
        request = crud.get_request(session=session, request_id=request_id) if request_id else None
    if request is not None:
        show_request(services, request)


def expire_requests(services: Services) -> int:
    """Requests nobody decided within the time to live end as expired (the poller's job)."""
    cutoff = utcnow() - ttl(services)
    with session_scope(services.engine) as session:
        waiting = crud.requests_in(session=session, states=[State.requested])
    expired = 0
    for request in waiting:
        # A batch's requests expire with their batch, in one go (bot/domain/bulk.py).
        if request.created_at < cutoff and request.batch_id is None:
            expired += expire_request(services, request)
    return expired


def _open_request(services: Services, request_id: str, message: Clicked | None) -> UpdateRequest:
    """``message``: the (channel, ts) of the message clicked on; None for the reason modal,
    which only opens after a click that was checked."""
    with session_scope(services.engine) as session:
        request = crud.get_request(session=session, request_id=request_id) if request_id else None
    if request is None or request.batch_id is not None:
        # A batch's requests are decided together, on the batch (bot/domain/bulk.py).
        raise StaleButton()
    if message is not None and message != (request.channel_id, request.message_ts):
        # Not a click on this request's own announcement: a forged or pasted payload.
        raise StaleButton()
    if request.state != State.requested:
        show_request(services, request)
        raise AlreadyDecided(request)
    if utcnow() - request.created_at > ttl(services):
        expire_request(services, request)
        raise Expired(f"This request is more than {ttl_text(services)} old")
    return request
