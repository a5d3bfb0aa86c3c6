"""Submitting an approved request: CreateUpdatedWorkspaceImage exactly once.

The new image's Name is deterministic and written to the row before the call, so a reply that
never came is found again by that Name (``ResourceAlreadyExists`` for our own Name means an
earlier try got through).
"""

from __future__ import annotations

import logging
import time

from bot.domain.context import Services
from bot.domain.identity import WORKER_ID
from bot.domain.naming import update_tags, updated_image_description, updated_image_name
from bot.domain.requests import SYSTEM, move, note, reload_request, show
from bot.errors import AwsError
from storage import crud
from storage.db import unit_of_work
from storage.models import (
    State,
    UpdateRequest,
    utcnow,
)

log = logging.getLogger(__name__)

NAME_LOOKUPS = 3  # services.name_lookup_pause apart


def submit(services: Services, *, request_id: str) -> UpdateRequest:
    """approved → submitting → pending (or failed): at most one winner calls AWS.

    Submitting takes one of WSIMG_MAX_CONCURRENT_UPDATES build slots, held until the request
    ends. With every slot held the request stays approved, queued: nobody holds it, and a
    poller (``poller.start_queued``) submits it when a build finishes."""
    request = reload_request(services, request_id)
    name = updated_image_name(request.source_image_name, request.id, request.created_at.date())
    slots = services.settings.max_concurrent_updates
    queued = False
    with unit_of_work(services.engine) as session:
        slot = crud.take_slot(
            session=session,
            request_id=request_id,
            slots=slots,
            new_image_name=name,
            submitted_at=utcnow(),
            worker_id=WORKER_ID,
        )
        if slot is not None:
            crud.record_event(
                session=session,
                kind="submitting",
                actor=SYSTEM,
                request_id=request_id,
                detail={"name": name, "slot": slot},
            )
        elif (
            # Every slot is held: let go of it, so whichever poller sees a slot free starts it.
            request.state == State.approved
            and request.worker_id is not None
            and crud.release_to_queue(
                session=session, request_id=request_id, held_by=request.worker_id
            )
        ):
            queued = True
            crud.record_event(
                session=session,
                kind="queued",
                actor=SYSTEM,
                request_id=request_id,
                detail={"builds": slots},
            )
    if slot is None:
        request = reload_request(services, request_id)
        if queued and request.batch_id is None:  # a batch's message is redrawn once, after
            show(services, request)  # its announcement says it waits its turn
        return request
    return create_image(services, request_id=request_id)


def create_image(services: Services, *, request_id: str) -> UpdateRequest:
    """Call CreateUpdatedWorkspaceImage for a request in `submitting` and record the outcome."""
    request = reload_request(services, request_id)
    assert request.new_image_name is not None
    tags = update_tags(
        request_id=request.id,
        source_image_id=request.source_image_id,
        requested_by=request.requested_by,
        approved_by=request.approved_by,
    )
    try:
        new_image_id = services.gateway.create_updated_image(
            account_id=request.account_id,
            region=request.region,
            source_image_id=request.source_image_id,
            name=request.new_image_name,
            description=updated_image_description(
                request.source_image_name, request.source_image_id, request.id
            ),
            tags=tags,
        )
        how = "created"
    except AwsError as exc:
        found = _already_created(services, request, exc)
        if found is None:
            return _fail(services, request, exc)
        new_image_id, how = found, "found_existing"
    moved = move(
        services,
        request.id,
        from_states=[State.submitting],
        to=State.pending,
        event=how,
        actor=SYSTEM,
        detail={"new_image_id": new_image_id, "name": request.new_image_name},
        new_image_id=new_image_id,
    )
    if not moved:  # another process settled the row meanwhile: keep what AWS said on record
        log.warning(
            "request %s: %s %s, but the request had moved on", request.short_id, how, new_image_id
        )
        note(services, request.id, f"{how}_late", {"new_image_id": new_image_id})
    request = reload_request(services, request_id)
    if moved:
        show(services, request)
    return request


def _already_created(services: Services, request: UpdateRequest, exc: AwsError) -> str | None:
    """ResourceAlreadyExists for our own deterministic Name means an earlier try got through."""
    if exc.code != "ResourceAlreadyExists" or request.new_image_name is None:
        return None
    # Describe can lag a moment behind a create: look a few times before calling it a failure.
    for attempt in range(NAME_LOOKUPS):
        if attempt:
            time.sleep(services.name_lookup_pause)
        image = services.gateway.find_owned_image_by_name(
            account_id=request.account_id, region=request.region, name=request.new_image_name
        )
        if image is not None:
            return image.image_id
    return None


def _fail(services: Services, request: UpdateRequest, exc: AwsError) -> UpdateRequest:
    moved = move(  # if not, another process settled the request; its record stands
        services,
        request.id,
        from_states=[State.submitting],
        to=State.failed,
        event="api_error",
        actor=SYSTEM,
        detail={"code": exc.code, "message": exc.aws_message, "action": exc.action},
        error_code=exc.code,
        error_message=exc.user_message,
    )
    request = reload_request(services, request.id)
    if moved:
        show(services, request)
    return request
