"""The ``wsimg demo`` transcript: what people did in the Slack stand-in and what the bot said,
in time order, as plain text for a terminal (and readable test failure output).

It reads like what people saw: a click names the button and the item it is for, with the
confirmation dialog Slack showed first; an edited or replaced message shows only the lines
that changed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from bot.fakes.slack.api import SlackWebAPI
from bot.fakes.slack.records import BOT_NAME, Interaction
from bot.slack.render import blocks_to_text, mrkdwn_to_text


def _content_text(
    text: Any, blocks: Any, names: Mapping[str, str], *, attachments: Any = None
) -> str:
    if blocks:
        return blocks_to_text(blocks, user_names=names)
    if isinstance(text, str) and text:
        return mrkdwn_to_text(text, names)
    if attachments:
        return "\n".join(str(a.get("fallback") or a.get("text") or "") for a in attachments if a)
    return ""


def _indent(text: str, prefix: str) -> list[str]:
    return [prefix + line if line else prefix.rstrip() for line in text.splitlines() or [""]]


def _plain(obj: Any, names: Mapping[str, str]) -> str:
    """A text object (plain_text or mrkdwn) as plain text."""
    if not isinstance(obj, Mapping):
        return ""
    text = str(obj.get("text") or "")
    return mrkdwn_to_text(text, names) if obj.get("type") == "mrkdwn" else text


_NAMED_ID = re.compile(r"\*([^*\n]+)\*\s+`([^`\n]+)`")  # how the bot names an image: *name* `id`
SUBJECT_MAX = 60


def _subject(section: Any, names: Mapping[str, str]) -> str:
    """What a clicked button is for, from the section it belongs to: the first ``*name* `id```
    in it (how the bot names an image), else the section's first line, quoted."""
    if not isinstance(section, str) or not section.strip():
        return ""
    if named := _NAMED_ID.search(section):
        return f"{mrkdwn_to_text(named.group(1), names)} ({named.group(2)})"
    first = mrkdwn_to_text(section, names).strip().splitlines()[0]
    return '"' + (first if len(first) <= SUBJECT_MAX else first[: SUBJECT_MAX - 1] + "…") + '"'


def _click_lines(
    i: Interaction, who: Callable[[str | None], str], where: str, names: Mapping[str, str]
) -> list[str]:
    """``> alice in #ops clicked [Approve] on Win10 (wsi-…)``, then the confirmation dialog
    the button has, as Slack showed it before the click went out."""
    head = f"> {who(i.user_id)} in {where} clicked [{i.text}]"
    if subject := _subject(i.detail.get("section"), names):
        head += f" on {subject}"
    lines = [head]
    confirm = i.detail.get("confirm")
    if isinstance(confirm, Mapping):
        lines.append(f'  Slack asked first: "{_plain(confirm.get("title"), names)}"')
        lines.extend(_indent(_plain(confirm.get("text"), names), "    "))
        deny = _plain(confirm.get("deny"), names) or "Cancel"
        yes = _plain(confirm.get("confirm"), names) or "Yes"
        lines.append(f"    [ {deny} ]  [ {yes} ]  ← {who(i.user_id)} chose {yes}")
    return lines


def _changed_lines(before: Any, body: str, names: Mapping[str, str]) -> list[str] | None:
    """The lines that changed from ``before`` (a message's text and blocks) to ``body``, as
    ``- gone`` and ``+ new``; None when before is unknown or shares no line with body (then
    the whole message is shown)."""
    if not isinstance(before, Mapping):
        return None
    old = _content_text(before.get("text"), before.get("blocks"), names).splitlines()
    new = body.splitlines()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    if not any(match.size for match in matcher.get_matching_blocks()):
        return None
    lines: list[str] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            lines.extend(_anchor(old, new, i1, i2))
            lines.extend(f"- {line}" for line in old[i1:i2])
            lines.extend(f"+ {line}" for line in new[j1:j2])
    return lines or ["(no visible change)"]


def _anchor(old: list[str], new: list[str], i1: int, i2: int) -> list[str]:
    """Where a change is, when its lines alone do not say (a listing repeats the same buttons
    under every image): the nearest unchanged line above it found once in the message."""
    around = old[i1:i2] or old[max(i1 - 1, 0) : i1]
    if all(old.count(line) == 1 for line in around):
        return []
    for k in range(i1 - 1, -1, -1):
        if old.count(old[k]) == 1 and new.count(old[k]) == 1:
            return [f"  {old[k]}"] + (["  …"] if k < i1 - 1 else [])
    return []


_VIEW_OUTCOMES = {
    "updated": f"  {BOT_NAME} updated the modal",
    "pushed": f"  {BOT_NAME} opened another modal on top",
    "failed": '  (Slack showed "We had some trouble connecting"; the modal stayed open)',
}


def _modal_interaction_lines(i: Interaction, who: Callable[[str | None], str]) -> list[str]:
    if i.kind == "view_closed":
        return [f'> {who(i.user_id)} closed "{i.text}"']
    lines = [f'> {who(i.user_id)} submitted "{i.text}"']
    for label, value in i.detail.get("values") or []:
        lines.extend(_indent(f"{label}: {value}", "    "))
    if i.status is not None and i.status >= 300:
        lines.append(f"    (the app answered HTTP {i.status})")
    outcome = i.detail.get("outcome")
    if outcome == "errors":
        lines.append(f"  {BOT_NAME} kept the modal open:")
        lines.extend(f"    {message}" for message in (i.detail.get("errors") or {}).values())
    elif outcome in _VIEW_OUTCOMES:
        lines.append(_VIEW_OUTCOMES[outcome])
    return lines


def render_transcript(api: SlackWebAPI, *, user_names: dict[str, str] | None = None) -> str:
    """Everything people did and the bot said, in time order, as readable plain text.

    Covers slash commands and clicks sent by :class:`SlackUser` (with their acks),
    chat.postMessage / update / postEphemeral / delete, response_url payloads, modals
    (``modal opened for bob: Reject update``, then what was submitted) and Home tabs (opened,
    clicked, and what views.publish showed: the changed lines after the first). Thread replies are
    indented under a ``↳`` marker. A click shows the button's label, the item it is for and
    its confirmation dialog; an edit or replacement shows the changed lines (``-``/``+``).
    """
    names: dict[str, str] = {}
    with api._lock:
        for uid, user in api._users.items():
            names[uid] = user["name"]
    names.update(user_names or {})

    def who(user_id: str | None) -> str:
        return names.get(user_id or "", user_id or "someone")

    def where(channel: str | None) -> str:
        if not channel:
            return "?"
        if channel.startswith("D"):
            return f"DM with {who('U' + channel[1:])}"
        with api._lock:
            known = channel in api._channels
        return "#" + api.channel_name(channel) if known else channel

    out: list[list[str]] = []

    def emit(header: str, body: str, *, reply: bool = False) -> None:
        if reply:
            out.append([f"  ↳ {header}", *_indent(body, "      ")])
        else:
            out.append([header, *_indent(body, "    ")])

    def emit_change(header: str, before: Any, body: str, *, reply: bool = False) -> None:
        changed = _changed_lines(before, body, names)
        if changed is None:
            emit(f"{header}:", body, reply=reply)
        else:
            emit(f"{header} (changed lines):", "\n".join(changed), reply=reply)

    for entry in api.timeline:
        if entry.interaction is not None:
            i = entry.interaction
            if i.kind in ("view_submission", "view_closed"):
                out.append(_modal_interaction_lines(i, who))
                continue
            if i.kind == "home_opened":
                out.append([f"> {who(i.user_id)} opened {BOT_NAME}'s {i.text.capitalize()} tab"])
                continue
            if i.kind == "command":
                lines = [f"> {who(i.user_id)} in {where(i.channel_id)}: {i.text}"]
            else:  # a click on a message, or on the Home tab (no channel)
                place = where(i.channel_id) if i.channel_id else "the Home tab"
                lines = _click_lines(i, who, place, names)
            if i.status is not None and i.status >= 300:
                lines.append(f"    (the app answered HTTP {i.status})")
            ack = i.ack
            if isinstance(ack, Mapping) and (ack.get("text") or ack.get("blocks")):
                lines.append(f"  {BOT_NAME} (only visible to {who(i.user_id)}):")
                body = _content_text(ack.get("text"), ack.get("blocks"), names)
                lines.extend(_indent(body, "    "))
            elif isinstance(ack, str) and ack.strip():
                lines.append(f"  {BOT_NAME} (only visible to {who(i.user_id)}):")
                lines.extend(_indent(ack.strip(), "    "))
            out.append(lines)
        elif entry.call is not None:
            call, d = entry.call, entry.detail
            args = call.args
            body = _content_text(
                args.get("text"), args.get("blocks"), names, attachments=args.get("attachments")
            )
            reply = bool(d.get("thread_ts")) and d.get("thread_ts") != d.get("ts")
            channel = d.get("channel")
            if call.method == "chat.postMessage":
                head = "reply in thread" if reply else where(channel)
                emit(f"{head} · {BOT_NAME}:", body, reply=reply)
            elif call.method == "chat.update":
                after = d.get("after") or {}
                if after:
                    body = _content_text(after.get("text"), after.get("blocks"), names)
                header = f"{where(channel)} · {BOT_NAME} edited its message"
                emit_change(header, d.get("before"), body, reply=reply)
            elif call.method == "chat.postEphemeral":
                emit(f"{where(channel)} · {BOT_NAME} (only visible to {who(d.get('user'))}):", body)
            elif call.method == "chat.delete":
                out.append([f"{where(channel)} · {BOT_NAME} deleted its message"])
            elif call.method in ("views.open", "views.update"):
                verb = "opened" if call.method == "views.open" else "updated"
                out.append([f"modal {verb} for {who(d.get('user'))}: {d.get('title')}"])
            elif call.method == "views.publish":
                view = args.get("view")
                blocks = view.get("blocks") if isinstance(view, Mapping) else None
                body = _content_text(None, blocks, names)
                emit_change(f"Home tab of {who(d.get('user'))}", d.get("before"), body)
        elif entry.response is not None:
            payload, d = entry.response.payload, entry.detail
            body = _content_text(payload.get("text"), payload.get("blocks"), names)
            effect = d.get("effect")
            if effect == "deleted":
                out.append([f"{BOT_NAME} deleted the message"])
            elif effect == "replaced":
                emit_change(f"{BOT_NAME} replaced the message", d.get("before"), body)
            elif effect == "in_channel":
                reply = bool(d.get("thread_ts"))
                head = "reply in thread" if reply else where(d.get("channel"))
                emit(f"{head} · {BOT_NAME}:", body, reply=reply)
            else:
                emit(f"{BOT_NAME} (only visible to {who(d.get('user'))}):", body)
    return "\n\n".join("\n".join(block) for block in out) + ("\n" if out else "")
