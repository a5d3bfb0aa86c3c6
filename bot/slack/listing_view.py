"""Block Kit for a listing: its summary line, how old its scan is, its images with their
Approve and Snooze buttons (or, over one page in several accounts and regions, one line per
account and region), "Approve all N", and the page buttons. Pure functions, as in
bot/slack/blocks.py, whose primitives they use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bot.domain.digests import SNOOZE_DAYS
from bot.domain.pages import Entry, GroupSummary, ListingPage
from bot.slack.blocks import (
    MAX_BLOCKS,
    Block,
    Message,
    context,
    cut,
    escape,
    foreign_status_line,
    section,
    status_line,
    when_text,
)
from bot.slack.ids import Action, action_id
from storage.models import IN_FLIGHT, State, utcnow


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
    if page.listing.kind != "updates" or not page.entries:
        return context(scanned_text(page.listing.scanned_at, button=False))
    return section(
        scanned_text(page.listing.scanned_at),
        {
            "type": "button",
            "action_id": action_id(Action.REFRESH, 0),
            "text": {"type": "plain_text", "text": "Refresh"},
            "value": page.entries[0].offer.key,
        },
    )


def scan_age(scanned_at: datetime, now: datetime | None = None) -> str:
    """When the fleet scan something shows began: "just now (08:25 UTC)", "12 min ago (…)",
    "3 h ago (…)"."""
    age = max((now or datetime.now(UTC)) - scanned_at, timedelta(0))
    minutes = int(age.total_seconds() // 60)
    when = (
        "just now"
        if minutes < 1
        else f"{minutes} min ago"
        if minutes < 120
        else f"{minutes // 60} h ago"
    )
    return f"{when} ({scanned_at:%H:%M} UTC)"


def scanned_text(scanned_at: datetime, now: datetime | None = None, *, button: bool = True) -> str:
    """How old the fleet scan a listing or digest shows is, and how to see it fresh (with a
    *Refresh* button only where there is one)."""
    again = "*Refresh* (or `/wsimg updates refresh`)" if button else "`/wsimg updates refresh`"
    return (
        f"As AWS showed it {scan_age(scanned_at, now)}; {again} asks again. Each click checks "
        "its image live."
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
