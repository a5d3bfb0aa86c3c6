"""The ``wsimg demo`` transcript: what people did in the Slack stand-in and what the bot said,
in time order, as plain text for a terminal (and readable test failure output)."""

from __future__ import annotations

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
    chat.postMessage / update / postEphemeral / delete, response_url payloads, and modals
    (``modal opened for bob: Reject update``, then what was submitted). Thread replies are
    indented under a ``↳`` marker.
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

    for entry in api.timeline:
        if entry.interaction is not None:
            i = entry.interaction
            if i.kind in ("view_submission", "view_closed"):
                out.append(_modal_interaction_lines(i, who))
                continue
            if i.kind == "command":
                lines = [f"> {who(i.user_id)} in {where(i.channel_id)}: {i.text}"]
            else:
                lines = [f"> {who(i.user_id)} clicked [ {i.text} ] in {where(i.channel_id)}"]
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
                emit(f"{where(channel)} · {BOT_NAME} edited its message:", body, reply=reply)
            elif call.method == "chat.postEphemeral":
                emit(f"{where(channel)} · {BOT_NAME} (only visible to {who(d.get('user'))}):", body)
            elif call.method == "chat.delete":
                out.append([f"{where(channel)} · {BOT_NAME} deleted its message"])
            elif call.method in ("views.open", "views.update"):
                verb = "opened" if call.method == "views.open" else "updated"
                out.append([f"modal {verb} for {who(d.get('user'))}: {d.get('title')}"])
        elif entry.response is not None:
            payload, d = entry.response.payload, entry.detail
            body = _content_text(payload.get("text"), payload.get("blocks"), names)
            effect = d.get("effect")
            if effect == "deleted":
                out.append([f"{BOT_NAME} deleted the message"])
            elif effect == "replaced":
                emit(f"{BOT_NAME} replaced the message:", body)
            elif effect == "in_channel":
                reply = bool(d.get("thread_ts"))
                head = "reply in thread" if reply else where(d.get("channel"))
                emit(f"{head} · {BOT_NAME}:", body, reply=reply)
            else:
                emit(f"{BOT_NAME} (only visible to {who(d.get('user'))}):", body)
    return "\n\n".join("\n".join(block) for block in out) + ("\n" if out else "")
