"""Block Kit for a rollout: its plan (bundles, shares, the image quota, each step with its
button) and its progress message (Pause, Resume, Cancel). Every button carries only the
rollout's id; the server looks it up and re-authorises the clicker."""

from __future__ import annotations

import re
from datetime import datetime

from bot.domain.plans import Plan, Progress
from bot.slack.blocks import Block, Message, context, cut, escape, section
from bot.slack.ids import Action, action_id
from bot.slack.listing_view import slots_text
from storage.models import Rollout, RolloutState

MAX_BUNDLES_SHOWN = 20  # a plan stays well under Slack's 50 blocks
_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]{2,20})&gt;")


def _shown(text: str) -> str:
    """Escaped, except the user mentions wsimg itself wrote (``paused by <@U…>``)."""
    return _MENTION.sub(r"<@\1>", escape(text))


def _button(
    action: Action,
    label: str,
    rollout_id: str,
    *,
    confirm: tuple[str, str] | None = None,
    style: str | None = None,
) -> Block:
    button: Block = {
        "type": "button",
        "action_id": action_id(action, rollout_id[:8]),
        "text": {"type": "plain_text", "text": cut(label, 75)},
        "value": rollout_id,
    }
    if style:
        button["style"] = style
    if confirm is not None:
        title, text = confirm
        button["confirm"] = {
            "title": {"type": "plain_text", "text": cut(title, 100)},
            "text": {"type": "mrkdwn", "text": cut(text, 300)},
            "confirm": {"type": "plain_text", "text": "Go ahead"},
            "deny": {"type": "plain_text", "text": "Not now"},
        }
    return button


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "an unknown time"


def quota_text(plan: Plan) -> str:
    region = plan.rollout.region
    if plan.image_count is None:
        return f"{region}: image count unknown (quota {plan.quota})"
    return f"{region}{slots_text(plan.image_count, plan.quota)}"


def plan(found: Plan) -> Message:
    rollout = found.rollout
    new, source = f"`{rollout.new_image_id}`", f"`{rollout.source_image_id}`"
    blocks: list[Block] = [
        section(
            f":rocket: *Rollout of {new}* (updated from {source}, "
            f"{escape(found.request.source_image_name)}) — {rollout.state}"
        ),
        context(quota_text(found)),
    ]
    if found.bundles:
        lines = []
        for use in found.bundles[:MAX_BUNDLES_SHOWN]:
            states = ", ".join(f"{n} {s}" for s, n in sorted(use.states.items())) or "none"
            where = "on the new image" if use.moved else "on the source"
            lines.append(
                f"• *{escape(use.bundle.name)}* (`{use.bundle.bundle_id}`, {where}): "
                f"{use.workspaces} WorkSpace{'s' if use.workspaces != 1 else ''} ({states}), "
                f"{use.connected} connected now"
            )
        if len(found.bundles) > MAX_BUNDLES_SHOWN:
            lines.append(f"… and {len(found.bundles) - MAX_BUNDLES_SHOWN} more bundles")
        blocks.append(section("*Bundles*\n" + "\n".join(lines)))
    elif found.bundles_known:
        blocks.append(section(f"*Bundles*: none uses {source}."))
    else:
        blocks.append(section("*Bundles*: AWS would not list them (below); nothing is offered."))
    shares = ", ".join(found.source_shares) or "no account"
    blocks.append(
        section(
            f"*Shared*: the source with {shares}; the new image with "
            f"{', '.join(found.new_shares) or 'no account'}."
        )
    )
    if found.progress is not None:
        blocks.append(section(f"*Rebuild*: {found.progress.line()}"))
    done = [
        f"{what} by <@{who}>"
        for what, who in (
            ("bundles pointed", rollout.bundles_by),
            ("rebuild started", rollout.rebuild_by),
            ("shared", rollout.share_by),
            ("source retired", rollout.retire_by),
        )
        if who
    ]
    if done:
        blocks.append(context("; ".join(done)))
    for problem in found.problems:
        blocks.append(context(f":warning: {escape(problem)}"))
    for failures in found.failed.values():
        for failure in failures[:5]:
            blocks.append(context(f":x: {escape(failure)} — click again to retry"))
    buttons = _plan_buttons(found)
    if buttons:
        blocks.append(section("*Next*: each step asks before it changes anything."))
        blocks.append({"type": "actions", "elements": buttons})
    else:
        blocks.append(context("Nothing is left to do here."))
    return {"text": f"Rollout of {rollout.new_image_id}: {rollout.state}", "blocks": blocks}


def _plan_buttons(found: Plan) -> list[Block]:
    rollout = found.rollout
    live = rollout.state in (RolloutState.open, RolloutState.rebuilding, RolloutState.paused)
    buttons: list[Block] = []
    if live and found.to_move and (rollout.bundles_by is None or found.may_retry("bundle")):
        count = len(found.to_move)
        names = ", ".join(escape(u.bundle.name) for u in found.to_move[:5])
        buttons.append(
            _button(
                Action.ROLLOUT_BUNDLES,
                f"Point {count} bundle{'s' if count != 1 else ''} at the new image",
                rollout.id,
                style="primary",
                confirm=(
                    "Point the bundles?",
                    f"{names} will build new WorkSpaces from `{rollout.new_image_id}`. "
                    "Existing WorkSpaces change only when they are rebuilt.",
                ),
            )
        )
    if found.can_rebuild:
        count = found.workspace_count
        buttons.append(
            _button(
                Action.ROLLOUT_REBUILD,
                f"Rebuild {count} WorkSpace{'s' if count != 1 else ''} in waves",
                rollout.id,
                confirm=(
                    "Rebuild the WorkSpaces?",
                    f"{count} WorkSpaces, {rollout.batch} at a time, only those idle for "
                    f"{rollout.idle_hours} h and not connected. A rebuild replaces the system "
                    "volume, restores the user volume from the latest snapshot (the oldest "
                    f"taken {_when(found.snapshot_at)}) and may give a new IP address.",
                ),
            )
        )
    if found.shares_missing and (rollout.share_by is None or found.may_retry("share")):
        count = len(found.shares_missing)
        buttons.append(
            _button(
                Action.ROLLOUT_SHARE,
                f"Share with {count} account{'s' if count != 1 else ''} like the source",
                rollout.id,
                confirm=(
                    "Share the new image?",
                    f"Share `{rollout.new_image_id}` with {', '.join(found.shares_missing)}.",
                ),
            )
        )
    if found.can_retire:
        buttons.append(
            _button(
                Action.ROLLOUT_RETIRE,
                f"Retire {rollout.source_image_id}",
                rollout.id,
                style="danger",
                confirm=(
                    f"Delete {rollout.source_image_id}?",
                    f"Unshare *{escape(found.request.source_image_name)}* "
                    f"(`{rollout.source_image_id}`) from every account and delete it. This "
                    "cannot be undone.",
                ),
            )
        )
    return buttons


def progress(rollout: Rollout, shown: Progress) -> Message:
    icon = {
        RolloutState.rebuilding: ":arrows_counterclockwise:",
        RolloutState.paused: ":double_vertical_bar:",
        RolloutState.done: ":white_check_mark:",
        RolloutState.cancelled: ":no_entry_sign:",
    }.get(RolloutState(rollout.state), ":information_source:")
    blocks: list[Block] = [
        section(f"{icon} *Rebuild of `{rollout.new_image_id}`* — {rollout.state}: {shown.line()}")
    ]
    if shown.problem:
        blocks.append(
            section(f":warning: *Stalled*: {escape(shown.problem)} wsimg tries again each poll.")
        )
    if rollout.state == RolloutState.paused and rollout.paused_reason:
        blocks.append(section(f"*Paused*: {_shown(rollout.paused_reason)}"))
    for failure in shown.failed[:10]:
        blocks.append(context(f":x: {escape(failure)}"))
    for unknown in shown.unconfirmed[:10]:
        blocks.append(context(f":grey_question: {escape(unknown)}: check it by hand"))
    buttons: list[Block] = []
    if rollout.state == RolloutState.rebuilding:
        buttons.append(_button(Action.ROLLOUT_PAUSE, "Pause", rollout.id))
    if rollout.state == RolloutState.paused:
        buttons.append(_button(Action.ROLLOUT_RESUME, "Resume", rollout.id, style="primary"))
    if rollout.state in (RolloutState.rebuilding, RolloutState.paused):
        buttons.append(
            _button(
                Action.ROLLOUT_CANCEL,
                "Cancel",
                rollout.id,
                style="danger",
                confirm=("Cancel the rollout?", "No further WorkSpace will be rebuilt."),
            )
        )
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": f"Rebuild of {rollout.new_image_id}: {shown.line()}", "blocks": blocks}
