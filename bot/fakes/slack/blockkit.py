"""Block Kit as Slack checks it: the limits a message, a modal or a Home tab must keep
(:func:`validate_blocks`, :func:`validate_view`, :func:`validate_home_view`, Slack-style
errors with json-pointers), the ids Slack fills in, and the buttons a message holds
(:func:`find_buttons`)."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

MAX_BLOCKS_PER_MESSAGE = 50
MAX_BLOCKS_PER_VIEW = 100
_BLOCK_TYPES = frozenset(
    {
        "section",
        "header",
        "context",
        "actions",
        "divider",
        "image",
        "input",
        "rich_text",
        "video",
        "file",
        "markdown",
    }
)
_VIEW_BLOCK_TYPES = _BLOCK_TYPES - {"file", "markdown"}  # those two are for messages only
TEXT_INPUT_TYPES = frozenset(
    {"plain_text_input", "email_text_input", "url_text_input", "number_input"}
)
_INPUT_ELEMENT_TYPES = TEXT_INPUT_TYPES | {
    "static_select",
    "multi_static_select",
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
    "checkboxes",
    "radio_buttons",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "rich_text_input",
    "file_input",
}
MODAL_TEXT_MAX = 24  # title, submit and close of a modal


class _BlockChecker:
    def __init__(
        self,
        max_blocks: int,
        *,
        root: str = "",
        block_types: frozenset[str] = _BLOCK_TYPES,
        action_ids_per_block: bool = False,
    ) -> None:
        self.max_blocks = max_blocks
        self.root = root  # prefix of every json-pointer ("/view" for views)
        self.block_types = block_types
        self.action_ids_per_block = action_ids_per_block
        self.errors: list[str] = []
        self.block_ids: set[str] = set()
        self.action_ids: set[str] = set()

    def err(self, pointer: str, message: str) -> None:
        self.errors.append(f"{message} [json-pointer:{self.root}{pointer}]")

    def boolean(self, value: Any, p: str) -> None:
        if value is not None and not isinstance(value, bool):
            self.err(p, "must be a boolean")

    def view(self, v: Any) -> None:
        """A modal view object, as views.open / views.update / a response_action take it."""
        if not isinstance(v, dict):
            self.err("", "must be an object")
            return
        if v.get("type") is None:
            self.err("/type", "missing required field: type")
        elif v["type"] != "modal":
            self.err("/type", "must be a valid enum value")
        self.text(v.get("title"), "/title", MODAL_TEXT_MAX, plain_only=True)
        for key in ("submit", "close"):
            self.text(v.get(key), f"/{key}", MODAL_TEXT_MAX, plain_only=True, required=False)
        for key, limit in (("callback_id", 255), ("private_metadata", 3000), ("external_id", 255)):
            self.max_str(v.get(key), f"/{key}", limit)
        for key in ("clear_on_close", "notify_on_close"):
            self.boolean(v.get(key), f"/{key}")
        if v.get("blocks") is None:
            self.err("/blocks", "missing required field: blocks")
            return
        self.check(v["blocks"])
        if v.get("submit") is None and isinstance(v["blocks"], list):
            inputs = [
                i
                for i, b in enumerate(v["blocks"])
                if isinstance(b, dict) and b.get("type") == "input"
            ]
            if inputs:
                self.err(f"/blocks/{inputs[0]}/input", "must define `submit` to use `input` block")

    def home(self, v: Any) -> None:
        """A Home tab view, as views.publish takes it: no title, submit or close."""
        if not isinstance(v, dict):
            self.err("", "must be an object")
            return
        if v.get("type") is None:
            self.err("/type", "missing required field: type")
        elif v["type"] != "home":
            self.err("/type", "must be a valid enum value")
        for key, limit in (("callback_id", 255), ("private_metadata", 3000), ("external_id", 255)):
            self.max_str(v.get(key), f"/{key}", limit)
        if v.get("blocks") is None:
            self.err("/blocks", "missing required field: blocks")
            return
        self.check(v["blocks"])

    def check(self, blocks: Any) -> None:
        if not isinstance(blocks, list):
            self.err("/blocks", "must be an array")
            return
        if len(blocks) > self.max_blocks:
            self.err("/blocks", f"no more than {self.max_blocks} items allowed")
        for i, block in enumerate(blocks):
            self.block(block, f"/blocks/{i}")

    def text(
        self, obj: Any, p: str, max_len: int, *, plain_only: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self.err(p, "missing required field")
            return
        if not isinstance(obj, dict):
            self.err(p, "must be an object")
            return
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if obj.get("type") not in allowed:
            self.err(f"{p}/type", "must be a valid enum value")
        text = obj.get("text")
        if not isinstance(text, str):
            self.err(f"{p}/text", "missing required field: text")
        elif not text:
            self.err(f"{p}/text", "must be more than 0 characters")
        elif len(text) > max_len:
            self.err(f"{p}/text", f"must be less than {max_len + 1} characters")

    def max_str(self, value: Any, p: str, max_len: int) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            self.err(p, "must be a string")
        elif len(value) > max_len:
            self.err(p, f"must be less than {max_len + 1} characters")

    def items(self, value: Any, p: str, lo: int, hi: int) -> list[Any]:
        if not isinstance(value, list):
            self.err(p, "must be an array")
            return []
        if len(value) < lo:
            self.err(p, f"must provide at least {lo} items")
        if len(value) > hi:
            self.err(p, f"no more than {hi} items allowed")
        return value

    def block(self, b: Any, p: str) -> None:
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            self.err(p, "missing required field: type")
            return
        kind = b["type"]
        if kind not in self.block_types:
            self.err(f"{p}/type", "must be a valid enum value")
            return
        if self.action_ids_per_block:
            self.action_ids = set()
        if "block_id" in b:
            block_id = b["block_id"]
            self.max_str(block_id, f"{p}/block_id", 255)
            if isinstance(block_id, str):
                if block_id in self.block_ids:
                    self.err(f"{p}/block_id", f"duplicate block_id: {block_id}")
                self.block_ids.add(block_id)
        if kind == "section":
            if b.get("text") is None and not b.get("fields"):
                self.err(p, "must provide either text or fields")
            self.text(b.get("text"), f"{p}/text", 3000, required=False)
            if b.get("fields") is not None:
                for i, f in enumerate(self.items(b["fields"], f"{p}/fields", 1, 10)):
                    self.text(f, f"{p}/fields/{i}", 2000)
            if b.get("accessory") is not None:
                self.element(b["accessory"], f"{p}/accessory")
        elif kind == "header":
            self.text(b.get("text"), f"{p}/text", 150, plain_only=True)
        elif kind == "context":
            for i, e in enumerate(self.items(b.get("elements"), f"{p}/elements", 1, 10)):
                if isinstance(e, dict) and e.get("type") == "image":
                    self.max_str(e.get("alt_text"), f"{p}/elements/{i}/alt_text", 2000)
                else:
                    self.text(e, f"{p}/elements/{i}", 3000)
        elif kind == "actions":
            for i, e in enumerate(self.items(b.get("elements"), f"{p}/elements", 1, 25)):
                self.element(e, f"{p}/elements/{i}")
        elif kind == "image":
            if not isinstance(b.get("alt_text"), str):
                self.err(f"{p}/alt_text", "missing required field: alt_text")
            self.max_str(b.get("alt_text"), f"{p}/alt_text", 2000)
            self.text(b.get("title"), f"{p}/title", 2000, plain_only=True, required=False)
        elif kind == "input":
            self.input_block(b, p)

    def input_block(self, b: dict[str, Any], p: str) -> None:
        self.text(b.get("label"), f"{p}/label", 2000, plain_only=True)
        self.text(b.get("hint"), f"{p}/hint", 2000, plain_only=True, required=False)
        for key in ("optional", "dispatch_action"):
            self.boolean(b.get(key), f"{p}/{key}")
        element = b.get("element")
        if element is None:
            self.err(f"{p}/element", "missing required field: element")
        elif isinstance(element, dict) and element.get("type") not in _INPUT_ELEMENT_TYPES:
            self.err(f"{p}/element/type", "must be a valid enum value")
        else:
            self.element(element, f"{p}/element")

    def element(self, e: Any, p: str) -> None:
        if not isinstance(e, dict) or not isinstance(e.get("type"), str):
            self.err(p, "missing required field: type")
            return
        if "action_id" in e:
            action_id = e["action_id"]
            self.max_str(action_id, f"{p}/action_id", 255)
            if isinstance(action_id, str):
                if action_id in self.action_ids:
                    self.err(f"{p}/action_id", f"duplicate action_id: {action_id}")
                self.action_ids.add(action_id)
        kind = e["type"]
        if kind == "button":
            self.text(e.get("text"), f"{p}/text", 75, plain_only=True)
            self.max_str(e.get("value"), f"{p}/value", 2000)
            self.max_str(e.get("url"), f"{p}/url", 3000)
            if e.get("style") is not None and e["style"] not in ("primary", "danger"):
                self.err(f"{p}/style", "must be a valid enum value")
            if e.get("confirm") is not None:
                self.confirm(e["confirm"], f"{p}/confirm")
        elif kind in ("static_select", "multi_static_select", "overflow"):
            if kind == "overflow":
                options = self.items(e.get("options"), f"{p}/options", 1, 5)
            else:
                self.text(e.get("placeholder"), f"{p}/placeholder", 150, required=False)
                options = e.get("options") or []
                if options:
                    options = self.items(options, f"{p}/options", 1, 100)
            for i, o in enumerate(options):
                self.option(o, f"{p}/options/{i}")
        elif kind in ("checkboxes", "radio_buttons"):
            for i, o in enumerate(self.items(e.get("options"), f"{p}/options", 1, 10)):
                self.option(o, f"{p}/options/{i}")
        elif kind in TEXT_INPUT_TYPES:
            self.text_input(e, p)
        elif kind == "image":
            self.max_str(e.get("alt_text"), f"{p}/alt_text", 2000)

    def text_input(self, e: dict[str, Any], p: str) -> None:
        self.text(e.get("placeholder"), f"{p}/placeholder", 150, plain_only=True, required=False)
        self.max_str(e.get("initial_value"), f"{p}/initial_value", 3000)
        for key in ("multiline", "focus_on_load"):
            self.boolean(e.get(key), f"{p}/{key}")
        for key, lo in (("min_length", 0), ("max_length", 1)):
            value = e.get(key)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                self.err(f"{p}/{key}", "must be an integer")
            elif value < lo:
                self.err(f"{p}/{key}", f"must be at least {lo}")
            elif value > 3000:
                self.err(f"{p}/{key}", "must be at most 3000")

    def option(self, o: Any, p: str) -> None:
        if not isinstance(o, dict):
            self.err(p, "must be an object")
            return
        self.text(o.get("text"), f"{p}/text", 75)
        self.max_str(o.get("value"), f"{p}/value", 150)

    def confirm(self, c: Any, p: str) -> None:
        if not isinstance(c, dict):
            self.err(p, "must be an object")
            return
        self.text(c.get("title"), f"{p}/title", 100, plain_only=True)
        self.text(c.get("text"), f"{p}/text", 300)
        self.text(c.get("confirm"), f"{p}/confirm", 30, plain_only=True)
        self.text(c.get("deny"), f"{p}/deny", 30, plain_only=True)


def validate_blocks(blocks: Any, *, max_blocks: int = MAX_BLOCKS_PER_MESSAGE) -> list[str]:
    """Check ``blocks`` against the Block Kit limits Slack enforces for a message.

    Returns Slack-style error strings (``"must be less than 3001 characters
    [json-pointer:/blocks/0/text/text]"``); an empty list means Slack would accept them.
    Checked: at most ``max_blocks`` blocks (50 for messages, 100 for views), section text
    ≤ 3000 and fields ≤ 10 of ≤ 2000, header ≤ 150, context ≤ 10 elements, actions ≤ 25 elements,
    block_id/action_id ≤ 255 and unique in the message, button text ≤ 75, value ≤ 2000, url ≤
    3000, non-empty text objects of a valid type.
    """
    checker = _BlockChecker(max_blocks)
    checker.check(blocks)
    return checker.errors


def validate_view(view: Any) -> list[str]:
    """Check a modal view object the way views.open / views.update do.

    Returns Slack-style error strings with json-pointers under ``/view`` (an empty list means
    Slack would accept it). Checked: ``type`` is ``modal``; ``title`` (required), ``submit`` and
    ``close`` are plain_text of at most 24 characters; ``callback_id`` ≤ 255, ``private_metadata``
    ≤ 3000, ``external_id`` ≤ 255; at most 100 blocks, checked as :func:`validate_blocks` does
    (block_ids unique in the view, action_ids unique within a block) plus ``input`` blocks
    (label ≤ 2000, an input element such as plain_text_input or static_select); a view holding
    an ``input`` block must define ``submit``.
    """
    checker = _BlockChecker(
        MAX_BLOCKS_PER_VIEW,
        root="/view",
        block_types=_VIEW_BLOCK_TYPES,
        action_ids_per_block=True,
    )
    checker.view(view)
    return checker.errors


def validate_home_view(view: Any) -> list[str]:
    """Check a Home tab view the way views.publish does: ``type`` is ``home``; ``callback_id``
    ≤ 255, ``private_metadata`` ≤ 3000, ``external_id`` ≤ 255; at most 100 blocks, checked as
    :func:`validate_view` checks a modal's. Slack-style errors under ``/view``."""
    checker = _BlockChecker(
        MAX_BLOCKS_PER_VIEW,
        root="/view",
        block_types=_VIEW_BLOCK_TYPES,
        action_ids_per_block=True,
    )
    checker.home(view)
    return checker.errors


def fill_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give blocks and their interactive elements the block_id / action_id Slack generates
    for those sent without one (state.values is keyed by them)."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", secrets.token_urlsafe(3))
        for element in block_elements(block):
            if element.get("type") not in (None, "image", "mrkdwn", "plain_text"):
                element.setdefault("action_id", secrets.token_urlsafe(3))
    return blocks


def block_elements(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The interactive elements of a block: input element, actions elements, accessory."""
    kind = block.get("type")
    if kind == "input" and isinstance(block.get("element"), dict):
        return [block["element"]]
    if kind == "actions":
        return [e for e in block.get("elements") or [] if isinstance(e, dict)]
    if kind == "section" and isinstance(block.get("accessory"), dict):
        return [block["accessory"]]
    return []


def find_buttons(blocks: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Every button in ``blocks`` (actions elements and section accessories), in order, as
    dicts with ``action_id``, ``value``, ``block_id``, ``text``, ``style``, ``url``,
    ``confirm`` (the dialog Slack shows before the click goes out, or None) and ``section``:
    the mrkdwn text of the section the button belongs to (the one it sits in, or the one
    right above its actions block), as a person reads which item a button is for."""
    found: list[dict[str, Any]] = []
    above: Mapping[str, Any] = {}
    for block in blocks or []:
        if block.get("type") == "actions":
            elements = list(block.get("elements") or [])
            section = above
        elif block.get("type") == "section" and block.get("accessory"):
            elements = [block["accessory"]]
            section = block
        else:
            elements, section = [], {}
        above = block if block.get("type") == "section" else {}
        for e in elements:
            if e.get("type") != "button":
                continue
            found.append(
                {
                    "action_id": e.get("action_id"),
                    "value": e.get("value"),
                    "block_id": block.get("block_id"),
                    "text": (e.get("text") or {}).get("text", ""),
                    "style": e.get("style"),
                    "url": e.get("url"),
                    "confirm": copy.deepcopy(e.get("confirm")),
                    "section": str((section.get("text") or {}).get("text") or ""),
                }
            )
    return found
