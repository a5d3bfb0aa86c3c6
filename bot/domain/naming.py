"""Names, descriptions and tags for the images wsimg creates, cut to the WorkSpaces API's rules.

CreateUpdatedWorkspaceImage accepts a Name of 1-64 characters from ``[a-zA-Z0-9_./()-]`` and a
Description of 1-256 characters from ``[a-zA-Z0-9_./() -]``; boto3 checks neither, so anything
derived from a user-chosen image name is sanitised here first. The Name is deterministic for an
update request: after a crash, wsimg finds the image it may already have created by this Name.
Pure functions, no AWS access.
"""

from __future__ import annotations

import datetime
import hashlib
import re

from anyascii import anyascii

NAME_MAX = 64
DESCRIPTION_MAX = 256
TAG_KEY_MAX = 127
TAG_VALUE_MAX = 255

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_./()\-]+$")
DESCRIPTION_PATTERN = re.compile(r"^[a-zA-Z0-9_./() -]+$")

# Tag keys wsimg puts on the images it creates (fixed, well under 127 characters).
TAG_MANAGED_BY = "wsimg:managed-by"
TAG_REQUEST_ID = "wsimg:request-id"
TAG_SOURCE_IMAGE_ID = "wsimg:source-image-id"
TAG_REQUESTED_BY = "wsimg:requested-by"
TAG_APPROVED_BY = "wsimg:approved-by"

_FALLBACK_SOURCE = "image"
_SHORT_ID_LEN = 8

_NOT_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_./()]+")
_NOT_DESCRIPTION_CHARS = re.compile(r"[^a-zA-Z0-9_./() -]+")
_NOT_TAG_VALUE_CHARS = re.compile(r"[^a-zA-Z0-9 _.:/=+\-@]+")
_ASCII_ALNUM = re.compile(r"[A-Za-z0-9]")


def to_ascii(text: str) -> str:
    """Spell ``text`` in ASCII so that it keeps its meaning: ``Бухгалтерия`` -> ``Bukhgalteriya``,
    ``Ελληνικά`` -> ``Ellinika``, ``北京`` -> ``BeiJing``, ``Straße`` -> ``Strasse``.

    anyascii spells an emoji as its shortcode (``🚀`` -> ``:rocket:``); those are dropped, as a
    pictograph in an image name names nothing.
    """
    if text.isascii():
        return text
    return "".join(_spelled(ch) for ch in text)


def _spelled(char: str) -> str:
    spelled = anyascii(char)
    if len(spelled) > 2 and spelled[0] == spelled[-1] == ":":
        return ""
    return spelled


def short_request_id(request_id: str) -> str:
    """The first 8 ASCII letters/digits of the request ID (a hash if it has none)."""
    chars = _ASCII_ALNUM.findall(request_id)
    if chars:
        return "".join(chars[:_SHORT_ID_LEN])
    return hashlib.sha256(request_id.encode("utf-8", "surrogatepass")).hexdigest()[:_SHORT_ID_LEN]


def _name_part(source_name: str, limit: int) -> str:
    part = _NOT_NAME_CHARS.sub("-", to_ascii(source_name)).strip("-")
    if len(part) > limit:
        cut = part[:limit]
        # Prefer ending on a whole word when that keeps most of the room.
        boundary = cut.rfind("-")
        if part[limit] != "-" and boundary >= limit * 2 // 3:
            cut = cut[:boundary]
        part = cut.rstrip("-")
    return part or _FALLBACK_SOURCE


def updated_image_name(source_name: str, request_id: str, when: datetime.date) -> str:
    """``<source>-upd-<YYYYMMDD>-<short request id>``, valid for CreateUpdatedWorkspaceImage.

    The suffix always survives the cut to 64 characters, so two requests never share a Name.
    """
    stamp = f"{when.year:04d}{when.month:02d}{when.day:02d}"  # %Y is not padded below 1000
    suffix = f"-upd-{stamp}-{short_request_id(request_id)}"
    return _name_part(source_name, NAME_MAX - len(suffix)) + suffix


def updated_image_description(source_name: str, source_image_id: str, request_id: str) -> str:
    """``Updated by wsimg from wsi-... (<source name>) request <short id>``, ≤ 256 characters."""
    image_id = _NOT_DESCRIPTION_CHARS.sub("-", to_ascii(source_image_id)).strip(" -")[:64]
    head = f"Updated by wsimg from {image_id or 'unknown image'}"
    tail = f" request {short_request_id(request_id)}"
    room = DESCRIPTION_MAX - len(head) - len(tail) - len(" ()")
    name = " ".join(_NOT_DESCRIPTION_CHARS.sub(" ", to_ascii(source_name)).split())
    name = name[:room].rstrip()
    middle = f" ({name})" if name else ""
    return head + middle + tail


def sanitize_tag_value(value: str) -> str:
    """Keep only letters, digits, spaces and ``_ . : / = + - @``; at most 255 characters."""
    cleaned = _NOT_TAG_VALUE_CHARS.sub("", to_ascii(value))
    return " ".join(cleaned.split())[:TAG_VALUE_MAX].rstrip()


def update_tags(
    *,
    request_id: str,
    source_image_id: str,
    requested_by: str | None = None,
    approved_by: str | None = None,
) -> dict[str, str]:
    """The tags wsimg puts on an updated image (keys fixed, values sanitised)."""
    tags = {
        TAG_MANAGED_BY: "wsimg",
        TAG_REQUEST_ID: sanitize_tag_value(request_id),
        TAG_SOURCE_IMAGE_ID: sanitize_tag_value(source_image_id),
    }
    if requested_by:
        tags[TAG_REQUESTED_BY] = sanitize_tag_value(requested_by)
    if approved_by:
        tags[TAG_APPROVED_BY] = sanitize_tag_value(approved_by)
    return tags
