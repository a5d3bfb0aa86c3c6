"""Block Kit rendering: pure functions, domain objects in, message dicts (text + blocks) out.

Slack's limits shape the layout: 50 blocks a message, 3000 characters a section, 25 elements an
actions block, action_id unique per message. A listing too long for one message is paged; the
page buttons say how many pages there are, so nothing is ever cut silently.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.aws.error_details import detail_lines
from bot.domain.audit import Status
from bot.domain.bulk import AlreadyBatched, Outcome
from bot.domain.decisions import AlreadyDecided
from bot.domain.pages import PAGE_BLOCKS
from bot.domain.requests import REASON_MAX, AlreadyInFlight
from bot.domain.rollout import RolloutRefused
from bot.errors import WsimgError
from bot.slack.ids import CLOSE_VIEW, REASON_BLOCK, REASON_INPUT, Action, action_id
from storage.models import Batch, State, Subscription, UpdateRequest

Message = dict[str, Any]
Block = dict[str, Any]

MAX_BLOCKS = PAGE_BLOCKS
SECTION_TEXT = 3000

HELP = (
    "*wsimg* keeps your Amazon WorkSpaces images current.\n"
    "• `/wsimg updates [region] [account] [name-glob] [refresh]` — images with a WorkSpaces "
    "update available, with Approve buttons (over one page: a summary per account and region "
    "first)\n"
    "• `/wsimg status [request-or-image-id]` — where this channel's updates stand\n"
    "• `/wsimg history [N]` — this channel's recent updates: who asked, who approved, what "
    "happened (approvers: add `all` for every channel's)\n"
    "• `/wsimg digest` — post the digest of waiting updates in this channel now\n"
    "• `/wsimg subscribe [HH:MM | cron] [time zone] [quiet]` — a digest in this channel on a "
    "schedule (default: every day at 09:00)\n"
    "• `/wsimg unsubscribe` — stop this channel's digest\n"
    "• `/wsimg rollout [request-or-image-id]` — carry an AVAILABLE update to the desktops: "
    "bundles, WorkSpaces rebuilt in waves, sharing, retiring the source\n"
    "• `/wsimg help` — this text\n"
    "Digests are changed by approvers and digest managers."
)


def escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) from AWS or users are shown, not parsed."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def section(text: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_TEXT)}}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, SECTION_TEXT)}]}


def text_message(text: str) -> Message:
    return {"text": cut(text, SECTION_TEXT), "blocks": [section(text)]}


def help_message() -> Message:
    return text_message(HELP)


def refusal_message(error: WsimgError) -> Message:
    """A domain error as the clicker sees it: with mentions where the refusal carries who."""
    if isinstance(error, AlreadyInFlight):
        sentence = error.say(escape(error.request.source_image_name), lambda user: f"<@{user}>")
        return text_message(f":warning: {sentence}")
    if isinstance(error, RolloutRefused):
        sentence = error.say(lambda user: f"<@{user}>", lambda channel: f"<#{channel}>", escape)
        return text_message(f":warning: {sentence}")
    if isinstance(error, AlreadyBatched):
        return text_message(f":warning: {error.say(lambda user: f'<@{user}>')}")
    if isinstance(error, AlreadyDecided):
        line = status_line(error.request)
        return text_message(f":warning: This request is no longer waiting for a decision: {line}")
    return error_message(error.user_message)


def error_message(sentence: str) -> Message:
    return text_message(f":warning: {escape(sentence)}")


# --- a request: its status, its announcement, its follow-up ------------------------------------


# A request's state at a glance (the batch message, the Home tab).
STATE_ICONS: dict[str, str] = {
    State.requested: ":raised_hand:",
    State.approved: ":hourglass:",
    State.submitting: ":gear:",
    State.pending: ":hourglass_flowing_sand:",
    State.available: ":white_check_mark:",
    State.error: ":x:",
    State.failed: ":x:",
    State.rejected: ":no_entry:",
    State.cancelled: ":heavy_multiplication_x:",
    State.expired: ":hourglass:",
}


def status_line(request: UpdateRequest) -> str:
    who = f"<@{request.approved_by}>" if request.approved_by else f"<@{request.requested_by}>"
    new = f"`{request.new_image_id}`" if request.new_image_id else "the new image"
    closer = f"<@{request.closed_by}>" if request.closed_by else "wsimg"
    reason = f": {escape(request.close_reason)}" if request.close_reason else ""
    match request.state:
        case State.requested:
            return (
                f":raised_hand: Requested by <@{request.requested_by}>, waiting for another "
                "approver"
            )
        case State.approved if request.worker_id is None:
            return (
                f":hourglass: Approved by {who}; queued: as many updates as "
                "WSIMG_MAX_CONCURRENT_UPDATES allows are building, and this one starts when one "
                "of them finishes"
            )
        case State.approved | State.submitting:
            return f":gear: Approved by {who}; creating the updated image…"
        case State.pending:
            return f":hourglass_flowing_sand: Approved by {who}; building {new}"
        case State.available:
            return f":white_check_mark: Updated by {who}: {new} is AVAILABLE"
        case State.error:
            return (
                f":x: Approved by {who}; {new} ended in ERROR: "
                f"{escape(request.error_code or '')} {escape(request.error_message or '')}"
            ).rstrip()
        case State.failed:
            return (
                f":x: Approved by {who}; the update failed: {escape(request.error_message or '')}"
            )
        case State.rejected:
            return f":no_entry: Rejected by {closer}{reason}"
        case State.cancelled:
            return f":heavy_multiplication_x: Cancelled by {closer}{reason}"
        case State.expired:
            return f":hourglass: Expired{reason}"
        case _:
            return f"Request {request.short_id} is {request.state}"


def foreign_status_line(request: UpdateRequest) -> str:
    """A request made in another channel: where it stands, never who asked, decided or why
    (a private channel's names and reasons stay in it)."""
    new = f"`{request.new_image_id}`" if request.new_image_id else "the new image"
    match request.state:
        case State.requested:
            return ":raised_hand: An update was asked for in another channel and waits there"
        case State.approved | State.submitting | State.pending:
            return (
                f":hourglass_flowing_sand: An update approved in another channel is building {new}"
            )
        case State.available:
            return f":white_check_mark: Updated through another channel: {new} is AVAILABLE"
        case _:
            return f"An update asked for in another channel ended {request.state}"


def announcement(request: UpdateRequest) -> Message:
    name = escape(request.source_image_name)
    image = (
        f"*{name}* `{request.source_image_id}` in {request.region} (account {request.account_id})"
    )
    requester = f"<@{request.requested_by}>"
    if request.approved_by is None:
        head = f"{requester} asked for the WorkSpaces update of {image}."
        text = f"Update of {name} requested by {requester}"
    elif request.approved_by == request.requested_by:
        head = f"<@{request.approved_by}> approved the WorkSpaces update of {image}."
        text = f"Update of {name} approved by <@{request.approved_by}>"
    else:
        head = (
            f"<@{request.approved_by}> approved {requester}'s request for the WorkSpaces update "
            f"of {image}."
        )
        text = f"Update of {name} approved by <@{request.approved_by}>"
    lines = [head]
    if request.update_description:
        lines.append(f"Update: {escape(request.update_description)}")
    lines.append(status_line(request))
    if request.state == State.pending:
        lines.append("I will reply in this thread when it is AVAILABLE or ERROR.")
    out = [section("\n".join(lines))]
    if request.state == State.requested:
        out.append(_decision_buttons(request))
    out.append(context(f"Request `{request.short_id}`"))
    return {"text": text, "blocks": out}


def _decision_buttons(request: UpdateRequest) -> Block:
    return decision_buttons(
        request.id,
        (Action.CONFIRM, Action.REJECT, Action.CANCEL),
        labels=("Approve", "Reject", "Cancel request"),
        title="Update this image?",
        text=f"Create a new image from *{escape(request.source_image_name)}* with the latest "
        "WorkSpaces drivers and agents. The source image is kept.",
    )


def decision_buttons(
    value: str,
    actions: tuple[Action, Action, Action],
    *,
    labels: tuple[str, str, str],
    title: str,
    text: str,
) -> Block:
    """Approve (with a confirm: ``title``, ``text``), Reject and Cancel, each carrying
    ``value`` (a request's id or a batch's): a waiting decision's buttons."""

    def button(action: Action, label: str, style: str | None = None) -> Block:
        element: Block = {
            "type": "button",
            "action_id": action_id(action, 0),
            "text": {"type": "plain_text", "text": label},
            "value": value,
        }
        if style:
            element["style"] = style
        return element

    approve = button(actions[0], labels[0], "primary")
    approve["confirm"] = {
        "title": {"type": "plain_text", "text": title},
        "text": {"type": "mrkdwn", "text": cut(text, 300)},
        "confirm": {"type": "plain_text", "text": labels[0]},
        "deny": {"type": "plain_text", "text": "Back"},
    }
    return {
        "type": "actions",
        "elements": [
            approve,
            button(actions[1], labels[1], "danger"),
            button(actions[2], labels[2]),
        ],
    }


def reason_modal(request: UpdateRequest, *, cancel: bool, channel_id: str | None) -> Block:
    """The modal that asks why a request is rejected (or cancelled)."""
    verb = "Cancel" if cancel else "Reject"
    return {
        "type": "modal",
        "callback_id": CLOSE_VIEW,
        "private_metadata": json.dumps(
            {"request": request.id, "cancel": cancel, "channel": channel_id}
        ),
        "title": {"type": "plain_text", "text": f"{verb} the update"},
        "submit": {"type": "plain_text", "text": verb},
        "close": {"type": "plain_text", "text": "Back"},
        "blocks": [
            section(
                f"{verb} the WorkSpaces update of *{escape(request.source_image_name)}* "
                f"`{request.source_image_id}` (request `{request.short_id}`)?"
            ),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "min_length": 3,
                    "max_length": REASON_MAX,
                },
            },
        ],
    }


def batch_reason_modal(batch: Batch, *, cancel: bool, channel_id: str | None) -> Block:
    """The reason modal for a whole batch: the same modal (the id it carries is the batch's)."""
    verb = "Cancel" if cancel else "Reject"
    stand_in = UpdateRequest(
        id=batch.id,
        account_id="",
        region="",
        source_image_id="",
        source_image_name="",
        requested_by=batch.created_by,
    )
    modal = reason_modal(stand_in, cancel=cancel, channel_id=channel_id)
    modal["title"] = {"type": "plain_text", "text": f"{verb} all {batch.count}"[:24]}
    modal["blocks"][0] = section(
        f"{verb} the WorkSpaces updates of {batch.count} images "
        f"({escape(batch.scope_text)}, batch `{batch.short_id}`)?"
    )
    return modal


def bulk_done(outcome: Outcome) -> Message:
    """The clicker's answer to "Approve all N"."""
    batch = outcome.view.batch
    count = f"{batch.count} update{'s' if batch.count != 1 else ''}"
    if batch.state == "requested":
        text = (
            f":raised_hand: Asked for {count} (batch `{batch.short_id}`); another approver "
            "approves them all, with one click, on the batch's message in the channel."
        )
    else:
        view = outcome.view
        text = (
            f":white_check_mark: Approved {count} (batch `{batch.short_id}`): "
            f"{view.count('submitting', 'pending')} building, {view.queued} queued "
            f"(at most {view.max_concurrent} at once). Progress is in the batch's message."
        )
    if outcome.left_out:
        text += (
            f" {outcome.left_out} image{'s were' if outcome.left_out != 1 else ' was'} left "
            "out: already in flight or updated, snoozed, or no longer updatable."
        )
    return text_message(text)


def followup(request: UpdateRequest) -> Message:
    name = f"`{request.new_image_id}` ({escape(request.new_image_name or '')})"
    if request.state == State.available:
        text = (
            f":white_check_mark: {name} is AVAILABLE, updated from "
            f"`{request.source_image_id}`. The rollout plan follows: point the bundles at it, "
            "rebuild their WorkSpaces in waves, share it, retire the source."
        )
    else:
        text = (
            f":x: {name} ended in ERROR: *{escape(request.error_code or 'Unknown')}* — "
            f"{escape(request.error_message or 'WorkSpaces gave no reason.')} The source image "
            f"`{request.source_image_id}` is unchanged; run `/wsimg updates` to try again."
        )
    plain = (
        f"{request.new_image_id} is {'AVAILABLE' if request.state == State.available else 'ERROR'}"
    )
    out = [section(text)]
    if details := error_details_text(request):
        out.append(section(details))
    return {"text": plain, "blocks": out}


def error_details_text(request: UpdateRequest, limit: int = SECTION_TEXT) -> str:
    """An ERROR image's ErrorDetails, one line each under a heading, within ``limit``
    characters; "" when WorkSpaces listed none."""
    if request.state != State.error or not request.error_details:
        return ""
    heading = "*What WorkSpaces found in the image:*"
    lines = detail_lines(
        request.error_details, limit=limit - len(heading) - 1, quote=escape, bullet="• "
    )
    return "\n".join([heading, *lines])


def when_text(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def status(statuses: Sequence[Status], *, everywhere: bool = False) -> Message:
    if not statuses:
        where = "" if everywhere else " from this channel"
        return text_message(f"No WorkSpaces image update{where} is in flight.")
    out: list[Block] = []
    shown = (MAX_BLOCKS - 1) // 2  # two blocks each, and one for the "more" line
    for item in statuses[:shown]:
        request = item.request
        text = (
            f"*{escape(request.source_image_name)}* `{request.source_image_id}` · "
            f"{request.region} · request `{request.short_id}`\n{status_line(request)}"
        )
        if details := error_details_text(request, SECTION_TEXT - len(text) - 1):
            text += "\n" + details
        out.append(section(text))
        trail = " → ".join(
            f"{escape(event.kind)} by {_actor(event.actor)} {when_text(event.at)}"
            for event in reversed(item.events)
        )
        if trail:
            out.append(context(trail))
    if len(statuses) > shown:
        out.append(context(f"…and {len(statuses) - shown} more: ask for one by id."))
    return {"text": f"{len(statuses)} update request(s)", "blocks": out}


def history(requests: Sequence[UpdateRequest], *, everywhere: bool = False) -> Message:
    if not requests:
        where = "" if everywhere else " in this channel"
        return text_message(f"No WorkSpaces image update has been requested{where} yet.")
    lines = [
        f"`{r.short_id}` {when_text(r.created_at)} *{escape(r.source_image_name)}* ({r.region}) — "
        f"requested by <@{r.requested_by}>"
        + (f", approved by <@{r.approved_by}>" if r.approved_by else "")
        + (f", {r.state} by {_actor(r.closed_by)}" if r.closed_by else "")
        + f" — *{r.state}*"
        + (f" → `{r.new_image_id}`" if r.new_image_id else "")
        for r in requests
    ]
    chunks: list[str] = []
    for line in lines:
        if chunks and len(chunks[-1]) + len(line) + 1 <= SECTION_TEXT:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return {
        "text": f"The last {len(requests)} update request(s)",
        "blocks": [section(f"*The last {len(requests)} update requests*")]
        + [section(chunk) for chunk in chunks],
    }


def _actor(actor: str) -> str:
    """A Slack user as a mention; anything else (wsimg, an env variable) as plain text."""
    if actor[:1] in ("U", "W") and actor.isalnum():
        return f"<@{actor}>"
    return escape(actor)


def digest_posted(messages: int) -> Message:
    if messages == 0:
        return text_message("No image needs an update, and this digest is quiet: nothing posted.")
    return text_message(f"Posted the digest ({messages} message{'s' if messages != 1 else ''}).")


def subscribed(subscription: Subscription, user_id: str) -> Message:
    quiet = " (quiet: nothing on days without updates)" if subscription.quiet else ""
    return text_message(
        f"<@{user_id}> subscribed this channel to the WorkSpaces image digest: "
        f"`{subscription.cron}` in {subscription.timezone}{quiet}. "
        "`/wsimg unsubscribe` stops it."
    )


def unsubscribed(user_id: str) -> Message:
    return text_message(f"<@{user_id}> stopped this channel's WorkSpaces image digest.")
