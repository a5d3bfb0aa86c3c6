"""Requests checked against botocore's own WorkSpaces model (types, lengths, patterns, enums)
the way the service checks them, with the service's error sentences."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from botocore.model import Shape


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 100 else text[:97] + "..."


def validate(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    """Check ``value`` against ``shape`` like the service does; append one line per problem."""
    where = path or "input"
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            errors.append(f"Value at '{where}' failed to satisfy constraint: must be an object")
            return
        for name in shape.required_members:
            if value.get(name) is None:
                errors.append(
                    f"Value null at '{_join(path, name)}' failed to satisfy constraint: "
                    f"Member must not be null"
                )
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None:
                errors.append(f"'{_join(path, name)}' is not a member of {shape.name}")
            elif member_value is not None:
                validate(member, member_value, _join(path, name), errors)
        return
    if kind == "list":
        if not isinstance(value, list):
            errors.append(f"Value at '{where}' failed to satisfy constraint: must be a list")
            return
        _check_length(len(value), meta, _show(value), where, errors)
        for index, item in enumerate(value):
            validate(shape.member, item, f"{where}[{index}]", errors)
        return
    if kind == "map":
        if not isinstance(value, dict):
            errors.append(f"Value at '{where}' failed to satisfy constraint: must be a map")
            return
        _check_length(len(value), meta, _show(value), where, errors)
        for key, item in value.items():
            validate(shape.key, key, f"{where}.key", errors)
            validate(shape.value, item, f"{where}[{key}]", errors)
        return
    if kind == "string":
        if not isinstance(value, str):
            errors.append(
                f"Value {_show(value)} at '{where}' failed to satisfy constraint: "
                f"Member must be a string"
            )
            return
        _check_length(len(value), meta, f"'{_show(value)}'", where, errors)
        enum = meta.get("enum")
        if enum and value not in enum:
            errors.append(
                f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        pattern = meta.get("pattern")
        if pattern and not _pattern_matches(pattern, value):
            errors.append(
                f"Value '{_show(value)}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
        return
    if kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(
                f"Value {_show(value)} at '{where}' failed to satisfy constraint: "
                f"Member must be an integer"
            )
            return
        if "min" in meta and value < meta["min"]:
            errors.append(
                f"Value {value} at '{where}' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {meta['min']}"
            )
        if "max" in meta and value > meta["max"]:
            errors.append(
                f"Value {value} at '{where}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {meta['max']}"
            )
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            errors.append(
                f"Value {_show(value)} at '{where}' failed to satisfy constraint: "
                f"Member must be a boolean"
            )
        return
    if kind in ("float", "double"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            errors.append(
                f"Value {_show(value)} at '{where}' failed to satisfy constraint: "
                f"Member must be a number"
            )
        return
    if kind == "timestamp":
        if not isinstance(value, int | float | str) or isinstance(value, bool):
            errors.append(
                f"Value {_show(value)} at '{where}' failed to satisfy constraint: "
                f"Member must be a timestamp"
            )
        return
    if kind == "blob":
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError, ValueError):
            errors.append(f"Value at '{where}' failed to satisfy constraint: must be base64")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check_length(
    length: int, meta: Mapping[str, Any], shown: str, where: str, errors: list[str]
) -> None:
    if "min" in meta and length < meta["min"]:
        errors.append(
            f"Value {shown} at '{where}' failed to satisfy constraint: "
            f"Member must have length greater than or equal to {meta['min']}"
        )
    if "max" in meta and length > meta["max"]:
        errors.append(
            f"Value {shown} at '{where}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {meta['max']}"
        )


_PATTERNS: dict[str, re.Pattern[str] | None] = {}


def _pattern_matches(pattern: str, value: str) -> bool:
    # Search, like AWS: a pattern constrains the whole value only where it has its own anchors.
    if pattern not in _PATTERNS:
        try:
            _PATTERNS[pattern] = re.compile(pattern)
        except re.error:
            _PATTERNS[pattern] = None  # a Java-only construct: not checked
    compiled = _PATTERNS[pattern]
    return compiled is None or compiled.search(value) is not None


def validation_message(errors: list[str]) -> str:
    plural = "s" if len(errors) > 1 else ""
    return f"{len(errors)} validation error{plural} detected: " + "; ".join(errors)
