"""Block Kit rendering: pure functions, domain objects in, message dicts (text + blocks) out.

Slack's limits shape the layout: 50 blocks a message, 3000 characters a section, 25 elements an
actions block, action_id unique per message. A listing too long for one message is paged; the
page buttons say how many pages there are, so nothing is ever cut silently.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.aws.error_details import detail_lines
from bot.domain.audit import Status
from bot.domain.bulk import AlreadyBatched, Outcome
from bot.domain.decisions import AlreadyDecided
from bot.domain.digests import SNOOZE_DAYS
from bot.domain.pages import PAGE_BLOCKS, Entry, GroupSummary, ListingPage
from bot.domain.requests import REASON_MAX, AlreadyInFlight
from bot.domain.rollout import RolloutRefused
from bot.errors import WsimgError
from bot.slack.ids import CLOSE_VIEW, REASON_BLOCK, REASON_INPUT, Action, action_id
from storage.models import IN_FLIGHT, Batch, State, Subscription, UpdateRequest, utcnow

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


# --- the listing ------------------------------------------------------------------------------


def listing(page: ListingPage) -> Message:
    where = f"`{page.region}`" if page.region else "your configured regions"
    matching = f" {escape(page.filters)}" if page.filters else ""
    if page.total_images == 0:
        summary = (
            f":white_check_mark: No image{matching} in {where} has a WorkSpaces update available."
        )
    else:
        summary = count_text(page.total_images, page.total_regions)
        if matching:
            summary += f" ·{matching}"
        if page.listing.kind == "digest":
            summary = f":calendar: *WorkSpaces image digest* — {summary}"
        if page.groups is not None:
            summary += f" · {len(page.groups)} account and region group(s), {page.pages} pages"
        elif page.pages > 1:
            summary += f" · page {page.page} of {page.pages}"
    out: list[Block] = [section(summary, _bulk_all(page))]
    if page.listing.scanned_at is not None:
        out.append(_scanned(page))
    if page.failures:
        out.append(failures_block(page.failures))
    if page.groups is not None and page.entries:
        out.extend(_group_summary(page, page.groups, room=MAX_BLOCKS - len(out) - 1))
    else:
        out.extend(entry_blocks(page.entries, four_eyes=page.four_eyes, page=page))
    if page.pages > 1 and page.entries:
        out.append(_page_buttons(page))
    noun = "update" if page.total_images == 1 else "updates"
    return {"text": f"{page.total_images} WorkSpaces image {noun} available", "blocks": out}


def _group_summary(page: ListingPage, groups: Sequence[GroupSummary], *, room: int) -> list[Block]:
    """The first answer to a listing over one page: one line per account and region, each
    with a button that opens its images (on pages of their own); Next pages through all."""
    out = [
        context(
            "More than one page: one line per account and region. *List them* opens its "
            "images with their Approve and Snooze buttons; *Next* pages through every image."
        )
    ]
    room -= 1
    shown: list[GroupSummary] = []
    lines: list[Block] = []
    for n, group in enumerate(groups):
        blocks = [group_line(group)]
        if group.approvable:
            where = f"with an update in {group.region} · account {group.account_id}"
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        bulk_button(
                            count=group.approvable,
                            key=group.first_key,
                            whole=False,
                            position=group.position,
                            four_eyes=page.four_eyes,
                            where=where,
                        )
                    ],
                }
            )
        # Keep one block for the "…and N more" line, unless this is the last group.
        if len(lines) + len(blocks) > room - (1 if n < len(groups) - 1 else 0):
            break
        shown.append(group)
        lines.extend(blocks)
    out.extend(lines)
    if len(shown) < len(groups):
        out.append(
            context(
                f"…and {len(groups) - len(shown)} more accounts and regions: narrow the listing "
                "(`/wsimg updates [region] [account] [name-glob]`) or page through with *Next*."
            )
        )
    return out


def group_line(group: GroupSummary) -> Block:
    """One account and region: its counts (never who or why), and a button opening its images."""
    parts = [f"{group.count} image{'s' if group.count != 1 else ''} with an update"]
    if group.overdue:
        parts.append(f"{group.overdue} waiting over the limit")
    if group.in_flight:
        parts.append(f"{group.in_flight} in flight")
    if group.snoozed:
        parts.append(f"{group.snoozed} snoozed")
    text = f"*{group.region}* · account {group.account_id}: " + ", ".join(parts)
    if group.samples:
        names = ", ".join(f"*{escape(cut(name, 64))}*" for name in group.samples)
        text += f"\n{names}" + (", …" if group.count > len(group.samples) else "")
    return section(
        text,
        {
            "type": "button",
            "action_id": action_id(Action.OPEN, group.position),
            "text": {"type": "plain_text", "text": "List them"},
            "value": group.first_key,
        },
    )


def _scanned(page: ListingPage) -> Block:
    """How old the scan is; on a listing `/wsimg updates` answered, with its Refresh."""
    assert page.listing.scanned_at is not None
    text = scanned_text(page.listing.scanned_at)
    if page.listing.kind != "updates" or not page.entries:
        return context(text)
    return section(
        text,
        {
            "type": "button",
            "action_id": action_id(Action.REFRESH, 0),
            "text": {"type": "plain_text", "text": "Refresh"},
            "value": page.entries[0].offer.key,
        },
    )


def scanned_text(scanned_at: datetime, now: datetime | None = None) -> str:
    """How old the fleet scan a listing shows is, and how to see it fresh."""
    age = max((now or datetime.now(UTC)) - scanned_at, timedelta(0))
    minutes = int(age.total_seconds() // 60)
    when = (
        "just now"
        if minutes < 1
        else f"{minutes} min ago"
        if minutes < 120
        else f"{minutes // 60} h ago"
    )
    return (
        f"As AWS showed it {when} ({scanned_at:%H:%M} UTC); *Refresh* (or `/wsimg updates "
        "refresh`) asks again. Each click checks its image live."
    )


def count_text(images: int, regions: int) -> str:
    noun = "image has" if images == 1 else "images have"
    return (
        f"*{images} {noun} a WorkSpaces update available* in "
        f"{regions} region{'s' if regions != 1 else ''}"
    )


def failures_block(failures: Sequence[str]) -> Block:
    return context(":warning: Could not list: " + "; ".join(escape(f) for f in failures))


def slots_text(count: int | None, quota: int) -> str:
    """A region's image count against the quota, warning when few slots are left."""
    if count is None:
        return ""
    left = quota - count
    warn = " :warning: no slots left" if left <= 0 else (" :warning:" if left <= 3 else "")
    return f" · {count} of {quota} images{warn}"


def entry_blocks(
    entries: Sequence[Entry], *, four_eyes: bool, page: ListingPage | None = None
) -> list[Block]:
    out: list[Block] = []
    group = None
    for entry in entries:
        offer = entry.offer
        if (offer.account_id, offer.region) != group:
            group = (offer.account_id, offer.region)
            slots = (
                slots_text(page.image_count(*group), page.image_quota) if page is not None else ""
            )
            out.append(context(f"*{offer.region}* · account {offer.account_id}{slots}"))
        out.extend(_entry(entry, four_eyes=four_eyes))
    return out


def waited(entry: Entry, now: datetime) -> timedelta | None:
    return now - entry.first_seen if entry.first_seen else None


def days_text(span: timedelta) -> str:
    days = span.days
    return "today" if days < 1 else f"{days} day{'s' if days != 1 else ''}"


def _entry(entry: Entry, *, four_eyes: bool) -> list[Block]:
    offer, request = entry.offer, entry.request
    head = f"*{escape(offer.image_name)}* `{offer.image_id}`"
    span = waited(entry, utcnow())
    if span is not None:
        head += f" · waiting {days_text(span)}" if span.days >= 1 else " · new today"
    lines = [head]
    if offer.update_description:
        lines.append(escape(offer.update_description))
    if entry.snooze is not None:
        lines.append(
            f":zzz: Snoozed by <@{entry.snooze.snoozed_by}> until {when_text(entry.snooze.until)}"
        )
    if offer.not_updatable_reason:
        lines.append(f"_Cannot be updated by wsimg: {escape(offer.not_updatable_reason)}_")
        return [section("\n".join(lines))]
    if request is not None:
        lines.append(foreign_status_line(request) if entry.foreign else status_line(request))
    if offer.withdrawn_reason:
        lines.append(f"_No longer offered: {escape(offer.withdrawn_reason)}_")
        return [section("\n".join(lines))]
    if request is not None and request.state in IN_FLIGHT | {State.available}:
        return [section("\n".join(lines))]
    buttons = [_approve_button(entry, four_eyes=four_eyes)]
    if entry.snooze is None:
        buttons.append(
            {
                "type": "button",
                "action_id": action_id(Action.SNOOZE, offer.position),
                "text": {"type": "plain_text", "text": f"Snooze {SNOOZE_DAYS} days"},
                "value": offer.key,
            }
        )
    return [section("\n".join(lines)), {"type": "actions", "elements": buttons}]


def _approve_button(entry: Entry, *, four_eyes: bool) -> Block:
    offer = entry.offer
    label = "Request update" if four_eyes else "Approve"
    then = (
        " Another approver then approves it before anything is built."
        if four_eyes
        else " The source image is kept."
    )
    return {
        "type": "button",
        "action_id": action_id(Action.APPROVE, offer.position),
        "text": {"type": "plain_text", "text": label},
        "style": "primary",
        "value": offer.key,
        "confirm": {
            "title": {"type": "plain_text", "text": "Update this image?"},
            "text": {
                "type": "mrkdwn",
                "text": cut(
                    f"Create a new image from *{escape(offer.image_name)}* with the latest "
                    f"WorkSpaces drivers and agents.{then}",
                    300,
                ),
            },
            "confirm": {"type": "plain_text", "text": label},
            "deny": {"type": "plain_text", "text": "Cancel"},
        },
    }


def bulk_button(
    *, count: int, key: str, whole: bool, position: int, four_eyes: bool, where: str
) -> Block:
    """ "Approve all N" (four eyes: "Request all N"), with a confirm that names the count."""
    verb = "Request" if four_eyes else "Approve"
    plural = "s" if count != 1 else ""
    then = (
        "Another approver then approves them all with one click before anything is built."
        if four_eyes
        else "At most WSIMG_MAX_CONCURRENT_UPDATES build at once; the rest wait their turn."
    )
    return {
        "type": "button",
        # The count rides along: the server never approves more than the confirm named.
        "action_id": action_id(
            Action.BULK, f"all:{count}" if whole else f"group:{position}:{count}"
        ),
        "text": {"type": "plain_text", "text": f"{verb} all {count}"},
        "style": "primary",
        "value": key,
        "confirm": {
            "title": {"type": "plain_text", "text": f"{verb} {count} update{plural}?"},
            "text": {
                "type": "mrkdwn",
                "text": cut(
                    f"Create {count} new image{plural}, one from each image {where}, with the "
                    f"latest WorkSpaces drivers and agents. The source images are kept. {then}",
                    300,
                ),
            },
            "confirm": {"type": "plain_text", "text": f"{verb} all {count}"},
            "deny": {"type": "plain_text", "text": "Cancel"},
        },
    }


def _bulk_all(page: ListingPage) -> Block | None:
    """ "Approve all N" for the whole listing: on a listing of one page, and on the summary of a
    filtered one (an unfiltered fleet is approved a group at a time)."""
    if page.groups is not None:
        if not (page.filters or page.region):
            return None
        count = sum(group.approvable for group in page.groups)
    elif page.pages == 1:
        count = sum(1 for entry in page.entries if entry.approvable)
    elif page.approvable_total is not None:
        count = page.approvable_total  # the first of several pages of one account and region
    else:
        return None
    if count < 2 or not page.entries:
        return None
    where = "listed here"
    if page.filters:
        where += f" {escape(page.filters)}"
    if page.region:
        where += f" in {page.region}"
    return bulk_button(
        count=count,
        key=page.entries[0].offer.key,
        whole=True,
        position=0,
        four_eyes=page.four_eyes,
        where=where,
    )


def _page_buttons(page: ListingPage) -> Block:
    key = page.entries[0].offer.key
    if page.groups is not None:  # the summary: every image from its first page on
        return {
            "type": "actions",
            "elements": [_page_button(f"Next ▶ every image (1 of {page.pages})", 1, key)],
        }
    elements = []
    if page.page > 1:
        elements.append(_page_button("◀ Previous", page.page - 1, key))
    if page.page < page.pages:
        elements.append(
            _page_button(f"Next ▶ ({page.page + 1} of {page.pages})", page.page + 1, key)
        )
    return {"type": "actions", "elements": elements}


def _page_button(label: str, target: int, key: str) -> Block:
    return {
        "type": "button",
        "action_id": action_id(Action.PAGE, target),
        "text": {"type": "plain_text", "text": label},
        "value": key,
    }


# --- a request: its status, its announcement, its follow-up ------------------------------------


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
