"""The digest as Slack shows it: every image named in compact lines up to 200 (grouped by
account and region, each listing page behind one button), per-group summaries beyond, the
long waits at the top; split over numbered messages when it needs more than 50 blocks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.domain.pages import Digest, Entry, GroupSummary
from bot.slack.blocks import (
    MAX_BLOCKS,
    SECTION_TEXT,
    Block,
    Message,
    context,
    cut,
    escape,
    section,
    text_message,
    when_text,
)
from bot.slack.ids import Action, action_id
from bot.slack.listing_view import (
    count_text,
    days_text,
    entry_blocks,
    failures_block,
    group_line,
    scan_age,
    scanned_text,
    waited,
)
from storage.models import State, utcnow

# --- the digest --------------------------------------------------------------------------------

OVERDUE_SHOWN = 20
NAME_SHOWN = 100  # an image's name in a digest line (WorkSpaces names are at most 64)


def digest(report: Digest) -> list[Message]:
    """The digest as one message, or several (posted in order) when it needs more blocks.

    Up to one page of images: the images themselves with their buttons. Up to
    ``report.named_max``: one short line per image (name, ID, how long it has waited, where its
    update stands) under its account and region; each section of lines has a button that opens
    the listing page holding those images with their Approve and Snooze buttons. More: one line
    per account and region with a button that lists them (paged). Every image stays reachable
    and no message breaks a Block Kit limit.
    """
    page = report.page
    if page.total_images == 0:
        if report.quiet:
            return []
        text = ":white_check_mark: No WorkSpaces image needs an update today"
        if report.snoozed:
            text += f" ({report.snoozed} snoozed update{'s' if report.snoozed != 1 else ''})"
        text += "."
        if page.listing.scanned_at is not None:
            text += f" As AWS showed it {scan_age(page.listing.scanned_at)}."
        return [text_message(text)]
    counted = count_text(page.total_images, page.total_regions)
    head = f":calendar: *WorkSpaces image digest* — {counted}"
    if report.snoozed:
        head += f" · {report.snoozed} snoozed not shown"
    top: list[Block] = [section(head)]
    if report.overdue:
        top.append(section(_overdue(report)))
    if page.listing.scanned_at is not None:
        top.append(context(scanned_text(page.listing.scanned_at, button=False)))
    if page.failures:
        top.append(failures_block(page.failures))
    if page.pages == 1:
        body = entry_blocks(page.entries, four_eyes=page.four_eyes, page=page)
    elif report.names_each:
        body = _named(report)
    else:
        top.append(
            context(
                f"More than {report.named_max} images: one line per account and region. "
                "*List them* shows its images with their Approve and Snooze buttons."
            )
        )
        body = [group_line(group) for group in report.groups]
    return _split(top, body, f"WorkSpaces image digest: {page.total_images} updates available")


def _split(top: list[Block], body: Sequence[Block], text: str) -> list[Message]:
    """``top`` then ``body``, cut into messages of at most MAX_BLOCKS blocks, each after the
    first saying which part of the digest it is."""
    chunks: list[list[Block]] = [list(top)]
    for block in body:
        if len(chunks[-1]) >= MAX_BLOCKS:
            chunks.append([{}])  # room for its "continued" line, written once all are counted
        chunks[-1].append(block)
    for n, chunk in enumerate(chunks[1:], start=2):
        chunk[0] = context(f"WorkSpaces image digest, continued ({n} of {len(chunks)})")
    return [{"text": text, "blocks": chunk} for chunk in chunks]


def _named(report: Digest) -> list[Block]:
    """Every image as one line, under a heading for its account and region, in sections of at
    most SECTION_TEXT characters. The lines of one listing page share a section (or several)
    whose button opens that page."""
    summaries = {(g.account_id, g.region): g for g in report.groups}
    now = utcnow()
    limit = timedelta(days=report.overdue_days)
    label = "Request or snooze" if report.page.four_eyes else "Approve or snooze"
    out: list[Block] = []
    seen: set[tuple[str, str]] = set()
    for members in _by_page(report.entries):
        items: list[tuple[str, Entry]] = []
        group: tuple[str, str] | None = None
        for entry in members:
            line = _named_line(entry, now, limit)
            key = (entry.offer.account_id, entry.offer.region)
            if key != group:
                line = _heading(summaries.get(key), entry, continued=key in seen) + "\n" + line
                group = key
                seen.add(key)
            items.append((line, entry))
        for lines, first in _pack(items):
            out.append(section(lines, _open_button(first, label)))
    return out


def _by_page(entries: Sequence[Entry]) -> list[list[Entry]]:
    runs: list[list[Entry]] = []
    for entry in entries:
        if runs and runs[-1][0].offer.page == entry.offer.page:
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


def _pack(items: Sequence[tuple[str, Entry]]) -> list[tuple[str, Entry]]:
    """Lines joined into texts of at most SECTION_TEXT characters (none is cut), each with
    the entry of its first line."""
    packed: list[tuple[str, Entry]] = []
    for line, entry in items:
        if packed and len(packed[-1][0]) + 1 + len(line) <= SECTION_TEXT:
            packed[-1] = (packed[-1][0] + "\n" + line, packed[-1][1])
        else:
            packed.append((line, entry))
    return packed


def _heading(group: GroupSummary | None, entry: Entry, *, continued: bool) -> str:
    offer = entry.offer
    head = f"*{offer.region}* · account {offer.account_id}"
    if continued:
        return f"{head} (continued)"
    if group is None:
        return head
    parts = [f"{group.count} image{'s' if group.count != 1 else ''}"]
    if group.overdue:
        parts.append(f"{group.overdue} waiting over the limit")
    if group.in_flight:
        parts.append(f"{group.in_flight} in flight")
    return f"{head} — {', '.join(parts)}"


def _named_line(entry: Entry, now: datetime, limit: timedelta) -> str:
    offer = entry.offer
    parts = [f"• *{escape(cut(offer.image_name, NAME_SHOWN))}* `{offer.image_id}`"]
    span = waited(entry, now)
    if span is not None and span.days >= 1:
        parts.append(f"waiting {days_text(span)}" + (" :warning:" if span > limit else ""))
    elif span is not None:
        parts.append("new today")
    marker = _marker(entry)
    if marker:
        parts.append(marker)
    return " · ".join(parts)


def _marker(entry: Entry) -> str:
    """Where an image's update stands, in a few words. Never who asked or decided: the line
    may be about a request made in another channel."""
    offer, request = entry.offer, entry.request
    if offer.not_updatable_reason:
        return "_cannot be updated by wsimg_"
    if offer.withdrawn_reason:
        return "_no longer offered_"
    if entry.snooze is not None:
        return f":zzz: snoozed until {when_text(entry.snooze.until)}"
    if request is None:
        return ""
    match request.state:
        case State.requested:
            return ":raised_hand: asked for, waiting for an approver"
        case State.approved | State.submitting:
            return ":gear: approved, creating the new image"
        case State.pending:
            new = f"`{request.new_image_id}`" if request.new_image_id else "the new image"
            return f":hourglass_flowing_sand: building {new}"
        case State.available:
            return ":white_check_mark: updated"
        case State.error | State.failed:
            return ":x: the last update failed"
        case State.rejected:
            return ":no_entry: rejected"
        case _:
            return ""


def _open_button(entry: Entry, label: str) -> Block:
    return {
        "type": "button",
        "action_id": action_id(Action.OPEN, entry.offer.position),
        "text": {"type": "plain_text", "text": label},
        "value": entry.offer.key,
    }


def _overdue(report: Digest) -> str:
    now = utcnow()
    days = report.overdue_days
    shown = [
        f"*{escape(e.offer.image_name)}* "
        f"({e.offer.region}, {days_text(waited(e, now) or timedelta())})"
        for e in report.overdue[:OVERDUE_SHOWN]
    ]
    more = len(report.overdue) - len(shown)
    text = f":warning: *{len(report.overdue)} waiting more than {days} days:* " + ", ".join(shown)
    if more > 0:
        text += f", and {more} more" + (" (listed below)" if report.names_each else "")
    return text
