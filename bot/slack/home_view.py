"""Block Kit for the Home tab (bot/domain/home.py decides what it holds): how many images the
last fleet scan saw with an update and how long ago, the requests waiting for a decision, the
images being built, the rollouts with their progress and their Pause or Resume button, and the
last finished requests.

A view holds at most 100 blocks and a section 3000 characters: each list shows its first
``MAX_LISTED`` entries and says how many more there are and where to see them, never a list
cut silently. The Pause and Resume buttons are the rollout progress message's own
(bot/slack/rollout_view.py): they carry the rollout's id only, and the click is checked again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.domain.ports import FleetGlance, Home, HomeRollout
from bot.slack.blocks import (
    SECTION_TEXT,
    STATE_ICONS,
    Block,
    context,
    cut,
    escape,
    section,
    when_text,
)
from bot.slack.ids import Action, action_id
from bot.slack.listing_view import count_text, scan_age
from bot.slack.rollout_view import _shown
from storage.models import RolloutState, State, UpdateRequest

MAX_LISTED = 15  # entries of each list of requests, and rollouts
LINE_MAX = 400  # one entry: a list of MAX_LISTED fits in three sections (50 blocks in all)

_ROLLOUT_ICON: dict[str, str] = {
    RolloutState.rebuilding: ":arrows_counterclockwise:",
    RolloutState.paused: ":double_vertical_bar:",
}


def home(shown: Home) -> Block:
    """The Home tab view, for views.publish."""
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "WorkSpaces image updates"}},
        context(
            f"As of {when_text(shown.as_of)}. "
            + (
                "As an approver you see every channel's updates."
                if shown.everything
                else "You see the updates you asked for; approvers see every channel's."
            )
        ),
    ]
    if shown.notice:
        blocks.append(section(shown.notice))
    if shown.fleet is not None:
        blocks.append(section(_fleet_text(shown.fleet)))
    more = _more_text(shown)
    blocks += _listed("Waiting for a decision", shown.waiting, _waiting_line, more)
    blocks += _listed("Building", shown.building, _building_line, more)
    blocks += _rollouts(shown.rollouts, more)
    blocks += _listed("Finished lately", shown.finished, _finished_line, more)
    return {"type": "home", "blocks": blocks}


def _fleet_text(fleet: FleetGlance) -> str:
    if fleet.scanned_at is None:
        return (
            "*Fleet* · not scanned yet: `/wsimg updates` asks AWS and lists the images with "
            "an update."
        )
    if fleet.updates == 0:
        found = "No image has a WorkSpaces update available"
    else:
        found = count_text(fleet.updates, fleet.regions)
    running = " A scan is running now." if fleet.scanning else ""
    return (
        f"*Fleet* · {found}, as AWS showed it {scan_age(fleet.scanned_at)}.{running} "
        "`/wsimg updates` lists them; `/wsimg updates refresh` asks AWS again."
    )


def _more_text(shown: Home) -> Callable[[int], str]:
    where = (
        "`/wsimg status all` lists every one"
        if shown.everything
        else "`/wsimg status` in the channel where you asked lists them"
    )
    return lambda count: f"…and {count} more: {where}."


def _listed(
    title: str,
    requests: Sequence[UpdateRequest],
    line: Callable[[UpdateRequest], str],
    more: Callable[[int], str],
) -> list[Block]:
    head = f"*{title}* · {len(requests)}"
    if not requests:
        return [{"type": "divider"}, section(f"{head}\nNone.")]
    chunks = [head]
    for request in requests[:MAX_LISTED]:
        entry = cut(line(request), LINE_MAX)
        if len(chunks[-1]) + 1 + len(entry) <= SECTION_TEXT:
            chunks[-1] += "\n" + entry
        else:
            chunks.append(entry)
    blocks = [{"type": "divider"}, *(section(chunk) for chunk in chunks)]
    if len(requests) > MAX_LISTED:
        blocks.append(context(more(len(requests) - MAX_LISTED)))
    return blocks


def _image(request: UpdateRequest) -> str:
    return (
        f"`{request.short_id}` *{escape(request.source_image_name)}* "
        f"`{request.source_image_id}` · {request.region}"
    )


def _where(request: UpdateRequest) -> str:
    return f" in <#{request.channel_id}>" if request.channel_id else ""


def _waiting_line(request: UpdateRequest) -> str:
    return (
        f":raised_hand: {_image(request)} · asked for by <@{request.requested_by}>"
        f"{_where(request)} {when_text(request.created_at)}"
    )


def _building_line(request: UpdateRequest) -> str:
    who = request.approved_by or request.requested_by
    if request.state == State.pending and request.new_image_id:
        doing = f"building `{request.new_image_id}`"
    elif request.state == State.approved and request.worker_id is None:
        doing = "queued until a build finishes (WSIMG_MAX_CONCURRENT_UPDATES)"
    else:
        doing = "creating the updated image"
    return (
        f":hourglass_flowing_sand: {_image(request)} · {doing}, approved by <@{who}>"
        f"{_where(request)} {when_text(request.approved_at)}"
    )


def _finished_line(request: UpdateRequest) -> str:
    icon = STATE_ICONS.get(request.state, ":white_circle:")
    new = f" → `{request.new_image_id}`" if request.new_image_id else ""
    return (
        f"{icon} {_image(request)} · *{request.state}*{new}{_where(request)} "
        f"{when_text(request.completed_at or request.updated_at)}"
    )


def _rollouts(rollouts: Sequence[HomeRollout], more: Callable[[int], str]) -> list[Block]:
    blocks: list[Block] = [
        {"type": "divider"},
        section(f"*Rollouts* · {len(rollouts)}" + ("" if rollouts else "\nNone rebuilding.")),
    ]
    for item in rollouts[:MAX_LISTED]:
        blocks += _rollout(item)
    if len(rollouts) > MAX_LISTED:
        blocks.append(context(more(len(rollouts) - MAX_LISTED)))
    return blocks


def _rollout(item: HomeRollout) -> list[Block]:
    rollout, request = item.rollout, item.request
    icon = _ROLLOUT_ICON.get(rollout.state, ":information_source:")
    done = item.progress.line() if item.progress is not None else "no WorkSpace yet"
    text = (
        f"{icon} *Rebuild of `{rollout.new_image_id}`* ({escape(request.source_image_name)}, "
        f"{rollout.region}){_where(request)} — {rollout.state}: {done}"
    )
    if rollout.state == RolloutState.paused and rollout.paused_reason:
        text += f"\n*Paused*: {_shown(rollout.paused_reason)}"
    blocks = [section(text)]
    button = _decision(item)
    if button is not None:
        blocks.append({"type": "actions", "elements": [button]})
    return blocks


def _decision(item: HomeRollout) -> Block | None:
    """Pause while it rebuilds, Resume while it is paused, for those who may click them."""
    rollout = item.rollout
    if not item.may_decide:
        return None
    if rollout.state == RolloutState.rebuilding:
        action, label, style = Action.ROLLOUT_PAUSE, "Pause", None
    elif rollout.state == RolloutState.paused:
        action, label, style = Action.ROLLOUT_RESUME, "Resume", "primary"
    else:
        return None
    button: Block = {
        "type": "button",
        "action_id": action_id(action, rollout.id[:8]),
        "text": {"type": "plain_text", "text": label},
        "value": rollout.id,
    }
    if style:
        button["style"] = style
    return button
