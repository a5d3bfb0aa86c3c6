"""Block Kit as plain text, for a terminal: `wsimg digest --dry-run` and the demo transcript."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any

_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_ANGLE = re.compile(r"<([^<>]+)>")
RULE = "─" * 40


def mrkdwn_to_text(text: str, user_names: Mapping[str, str] | None = None) -> str:
    """Slack mrkdwn to plain text: no bold stars; links, mentions and dates made readable."""
    names = user_names or {}

    def angle(m: re.Match[str]) -> str:
        inner = m.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (label or names.get(target[1:], target[1:]))
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!subteam^"):
            return label or "@" + target[len("!subteam^") :]
        if target.startswith("!date^"):
            return label or target
        if target.startswith("!"):
            return "@" + target[1:]
        return f"{label} ({target})" if label and label != target else target

    out = _ANGLE.sub(angle, text)
    out = _BOLD.sub(r"\1", out)
    return html.unescape(out)


def _text_of(obj: Any, names: Mapping[str, str]) -> str:
    if isinstance(obj, str):
        return obj
    if not isinstance(obj, Mapping):
        return ""
    text = str(obj.get("text", ""))
    return mrkdwn_to_text(text, names) if obj.get("type") == "mrkdwn" else text


def _element_text(e: Mapping[str, Any], names: Mapping[str, str]) -> str:
    kind = e.get("type")
    if kind == "button":
        return f"[ {_text_of(e.get('text'), names)} ]"
    if kind == "image":
        return f"[image: {e.get('alt_text', '')}]"
    if kind in ("static_select", "multi_static_select", "external_select", "users_select"):
        placeholder = _text_of(e.get("placeholder"), names) or "choose"
        return f"[ {placeholder} ▾ ]"
    if kind == "overflow":
        return "[ … ]"
    if kind in ("plain_text", "mrkdwn"):
        return _text_of(e, names)
    return f"[{kind}]"


def _rich_text(element: Any, names: Mapping[str, str]) -> str:
    if isinstance(element, Mapping):
        kind = element.get("type")
        if kind == "text":
            return str(element.get("text", ""))
        if kind == "link":
            return str(element.get("text") or element.get("url", ""))
        if kind == "user":
            return "@" + names.get(element.get("user_id", ""), element.get("user_id", ""))
        if kind == "channel":
            return "#" + str(element.get("channel_id", ""))
        if kind == "emoji":
            return f":{element.get('name', '')}:"
        inner = "".join(_rich_text(e, names) for e in element.get("elements") or [])
        if kind in ("rich_text_section", "rich_text_preformatted", "rich_text_quote"):
            return inner + "\n"
        return inner
    return ""


def blocks_to_text(
    blocks: Iterable[Mapping[str, Any]] | None, *, user_names: Mapping[str, str] | None = None
) -> str:
    """Plain-text rendering of Block Kit blocks for a terminal: headers, section text and
    fields, context, dividers as a rule, buttons as ``[ Label ]``."""
    names = user_names or {}
    lines: list[str] = []
    for block in blocks or []:
        kind = block.get("type")
        if kind == "header":
            lines.append(_text_of(block.get("text"), names))
        elif kind == "section":
            if block.get("text"):
                lines.append(_text_of(block["text"], names))
            for f in block.get("fields") or []:
                lines.append("  " + " ".join(_text_of(f, names).splitlines()))
            if block.get("accessory"):
                lines.append("  " + _element_text(block["accessory"], names))
        elif kind == "context":
            lines.append(" · ".join(_element_text(e, names) for e in block.get("elements") or []))
        elif kind == "divider":
            lines.append(RULE)
        elif kind == "actions":
            lines.append("  ".join(_element_text(e, names) for e in block.get("elements") or []))
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "rich_text":
            lines.append(_rich_text(block, names).rstrip("\n"))
        elif kind == "input":
            lines.append(f"{_text_of(block.get('label'), names)}: ____")
        elif kind == "markdown":
            lines.append(str(block.get("text", "")))
        else:
            lines.append(f"[{kind}]")
    return "\n".join(lines)
