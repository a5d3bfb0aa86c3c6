"""A bulk approval's one message: what it covers, where each image stands, and (four eyes)
one Approve / Reject / Cancel for all of it."""

from __future__ import annotations

from collections import Counter

from bot.domain.ports import BatchView
from bot.slack.blocks import (
    STATE_ICONS,
    Block,
    Message,
    context,
    cut,
    decision_buttons,
    escape,
    section,
)
from bot.slack.ids import Action, action_id
from storage.models import BatchState, State

NAMES_SHOWN = 25  # images the message names, with their state; the rest are counted


def batch_message(view: BatchView) -> Message:
    batch = view.batch
    n = batch.count
    images = f"{n} image{'s' if n != 1 else ''}"
    scope = escape(batch.scope_text)
    creator = f"<@{batch.created_by}>"
    decider = f"<@{batch.decided_by}>" if batch.decided_by else "wsimg"
    match batch.state:
        case BatchState.requested:
            head = f"{creator} asks for the WorkSpaces updates of {images} ({scope})."
        case BatchState.approved if batch.decided_by == batch.created_by:
            head = f"{creator} approved the WorkSpaces updates of {images} ({scope})."
        case BatchState.approved:
            head = (
                f"{decider} approved {creator}'s request for the WorkSpaces updates of {images} "
                f"({scope})."
            )
        case _:
            reason = f": {escape(batch.close_reason)}" if batch.close_reason else ""
            head = (
                f"{creator}'s request for the WorkSpaces updates of {images} ({scope}) was "
                f"{batch.state} by {decider}{reason}"
            )
    lines = [head, _counts(view)]
    if batch.state == BatchState.approved and view.count("approved", "submitting", "pending"):
        lines.append(
            f"At most {view.max_concurrent} build at once (WSIMG_MAX_CONCURRENT_UPDATES); the "
            "rest start as builds finish. I reply in this thread as each image is AVAILABLE or "
            "ERROR."
        )
    out: list[Block] = [section("\n".join(lines)), section(_names(view))]
    if batch.state == BatchState.requested:
        out.append(_decision_buttons(view))
    elif view.queued:
        out.append(_stop_button(view))
    out.append(context(f"Batch `{batch.short_id}`"))
    return {"text": f"WorkSpaces updates of {images}: {batch.state}", "blocks": out}


def _counts(view: BatchView) -> str:
    counts = Counter(r.state for r in view.requests)
    queued = view.queued
    parts = []
    for label, number in (
        ("waiting for approval", counts[State.requested]),
        ("queued", queued),
        ("starting", counts[State.approved] - queued + counts[State.submitting]),
        ("building", counts[State.pending]),
        ("AVAILABLE", counts[State.available]),
        ("ERROR", counts[State.error]),
        ("failed", counts[State.failed]),
        ("rejected", counts[State.rejected]),
        ("cancelled", counts[State.cancelled]),
        ("expired", counts[State.expired]),
    ):
        if number:
            parts.append(f"{number} {label}")
    return " · ".join(parts) or "no images"


def _names(view: BatchView) -> str:
    """A line per image, as many as fit the section, then how many more: never cut silently."""
    lines: list[str] = []
    room = 2900 - 40  # a section holds 3000 characters; the last line says how many more
    for request in view.requests[:NAMES_SHOWN]:
        state = State(request.state)
        queued = (
            view.batch.state == BatchState.approved
            and state == State.approved
            and request.worker_id is None
        )
        new = f" → `{request.new_image_id}`" if request.new_image_id else ""
        line = (
            f"{STATE_ICONS.get(state, '')} *{escape(cut(request.source_image_name, 64))}* "
            f"`{request.source_image_id}` {request.region}: "
            f"{'queued' if queued else state.value}{new}"
        )
        if len(line) + 1 > room:
            break
        room -= len(line) + 1
        lines.append(line)
    if len(lines) < len(view.requests):
        lines.append(f"…and {len(view.requests) - len(lines)} more")
    return "\n".join(lines)


def _stop_button(view: BatchView) -> Block:
    queued = view.queued
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": action_id(Action.BATCH_STOP, 0),
                "text": {"type": "plain_text", "text": f"Stop the {queued} queued"},
                "style": "danger",
                "value": view.batch.id,
                "confirm": {
                    "title": {"type": "plain_text", "text": "Stop the queued updates?"},
                    "text": {
                        "type": "mrkdwn",
                        "text": f"Cancel the {queued} updates of this batch that have not started. "
                        "Those building go on.",
                    },
                    "confirm": {"type": "plain_text", "text": "Stop them"},
                    "deny": {"type": "plain_text", "text": "Back"},
                },
            }
        ],
    }


def _decision_buttons(view: BatchView) -> Block:
    batch = view.batch
    return decision_buttons(
        batch.id,
        (Action.BATCH_CONFIRM, Action.BATCH_REJECT, Action.BATCH_CANCEL),
        labels=(f"Approve all {batch.count}", "Reject all", "Cancel request"),
        title=f"Approve {batch.count} updates?",
        text=f"Create {batch.count} new images ({escape(batch.scope_text)}) with the latest "
        "WorkSpaces drivers and agents. The source images are kept.",
    )
