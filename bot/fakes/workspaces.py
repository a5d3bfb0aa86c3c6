"""An Amazon WorkSpaces (and minimal STS) simulator that the real boto3 reaches over HTTP.

Used by the tests and by ``wsimg demo``: point AWS_ENDPOINT_URL at ``WorkSpacesSimulator.url``
and every boto3 client talks to it. It speaks the protocols botocore actually sends (AWS JSON
1.1 for WorkSpaces, the query protocol with XML answers for STS), checks every WorkSpaces
request against botocore's own service model (types, lengths, patterns, enums) the way the
service does, and keeps images per (account, region) with the semantics of
CreateUpdatedWorkspaceImage: PENDING, then AVAILABLE or ERROR some time later.

Tests steer it with ``fail_next``, ``throttle``, ``deny``, ``hold``, ``fail_build`` and read
``calls``. The region comes from the SigV4 credential scope and the account from the access key:
any key is the default account, keys issued by the simulator's AssumeRole belong to the role's
account. Signatures are not verified.

Run it alone with ``python -m bot.fakes.workspaces --port 4566``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import json
import random
import re
import socket
import string
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import botocore.session
from botocore.model import OperationNotFoundError, Shape

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_IMAGE_LIMIT = 40
MAX_TAGS = 50
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "WorkspacesService."
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
DEFAULT_UPDATE_DESCRIPTION = "Microsoft Windows and WorkSpaces agent updates are available."

IMPLEMENTED = (
    "DescribeWorkspaceImages",
    "CreateUpdatedWorkspaceImage",
    "DeleteWorkspaceImage",
    "CreateTags",
    "DescribeTags",
)
STS_OPERATIONS = ("AssumeRole", "GetCallerIdentity")

# Variables that would make boto3 ignore or second-guess the simulator (a developer's profile,
# a real session token, the instance metadata service): unset them when pointing boto3 here.
CLEARED_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL_WORKSPACES",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
    "AWS_CA_BUNDLE",
)

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/(?P<name>[\w+=,.@/-]+)$")
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
_CREDENTIAL_SCOPE = re.compile(
    r"Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/"
)
_ID_ALPHABET = string.digits + string.ascii_lowercase
_SECRET_ALPHABET = string.ascii_letters + string.digits


class SimulatorError(Exception):
    """An error answer: HTTP ``status`` with AWS error ``code`` and ``message``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Call:
    """One request the simulator received (recorded before it is answered)."""

    operation: str
    params: dict[str, Any]
    account: str
    region: str
    time: float


class Hold:
    """A gate that keeps matching requests waiting until ``release()``.

    ``wait_until_blocked(n)`` returns once n requests are waiting at the gate together, which
    lets a test prove that something is (or is not) waiting for AWS without measuring time.
    """

    def __init__(self, operation: str, timeout: float) -> None:
        self.operation = operation
        self.timeout = timeout
        self._released = threading.Event()
        self._cond = threading.Condition()
        self.waiting = 0
        self.arrived = 0

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def release(self) -> None:
        self._released.set()

    def wait_until_blocked(self, count: int = 1, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.waiting >= count, timeout)

    def block(self) -> None:
        """Wait at the gate (the caller's thread) until released or timed out."""
        self._block()

    def _block(self) -> None:
        with self._cond:
            self.arrived += 1
            self.waiting += 1
            self._cond.notify_all()
        try:
            # A forgotten release must not hang a test run forever: give up after `timeout`.
            self._released.wait(self.timeout)
        finally:
            with self._cond:
                self.waiting -= 1
                self._cond.notify_all()

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class _StoredImage:
    image_id: str
    account_id: str
    region: str
    name: str
    description: str | None
    platform: str | None
    state: str
    update_available: bool
    update_description: str | None
    created: float
    tags: dict[str, str] = field(default_factory=dict)
    ready_at: float | None = None
    final_state: str = "AVAILABLE"
    error_code: str | None = None
    error_message: str | None = None
    source_image_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ImageId": self.image_id,
            "Name": self.name,
            "State": self.state,
            "RequiredTenancy": "DEFAULT",
            "Created": self.created,
            "OwnerAccountId": self.account_id,
            "Updates": {"UpdateAvailable": self.update_available},
        }
        if self.description:
            data["Description"] = self.description
        if self.platform:
            data["OperatingSystem"] = {"Type": self.platform}
        if self.update_available and self.update_description:
            data["Updates"]["Description"] = self.update_description
        if self.state == "ERROR":
            data["ErrorCode"] = self.error_code or "UpdateFailed"
            data["ErrorMessage"] = self.error_message or "The image update failed."
        return data


@dataclass(frozen=True)
class _Injected:
    code: str
    message: str
    region: str | None
    account_id: str | None

    def matches(self, account: str, region: str) -> bool:
        return self.region in (None, region) and self.account_id in (None, account)


@dataclass
class _IssuedKey:
    account_id: str
    arn: str
    expires: float


# -- model validation ----------------------------------------------------------------------


def _show(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _validate(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
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
                _validate(member, member_value, _join(path, name), errors)
        return
    if kind == "list":
        if not isinstance(value, list):
            errors.append(f"Value at '{where}' failed to satisfy constraint: must be a list")
            return
        _check_length(len(value), meta, _show(value), where, errors)
        for index, item in enumerate(value):
            _validate(shape.member, item, f"{where}[{index}]", errors)
        return
    if kind == "map":
        if not isinstance(value, dict):
            errors.append(f"Value at '{where}' failed to satisfy constraint: must be a map")
            return
        _check_length(len(value), meta, _show(value), where, errors)
        for key, item in value.items():
            _validate(shape.key, key, f"{where}.key", errors)
            _validate(shape.value, item, f"{where}[{key}]", errors)
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


# -- the simulator -------------------------------------------------------------------------


class WorkSpacesSimulator:
    """In-memory WorkSpaces images behind a local HTTP endpoint. Thread-safe.

    ``pending_seconds``: how long an updated image stays PENDING. ``image_limit``: images per
    account and region (the real default quota is 40). ``credential_seconds``: the most an
    AssumeRole credential lives. ``clock``: the time source for image lifecycles (tests may pass
    a fake one). ``seed``: makes generated image IDs reproducible.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        pending_seconds: float = 2.0,
        image_limit: int = DEFAULT_IMAGE_LIMIT,
        credential_seconds: int = 3600,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
        hold_timeout: float = 30.0,
    ) -> None:
        self.port = port
        self.pending_seconds = pending_seconds
        self.image_limit = image_limit
        self.credential_seconds = credential_seconds
        self.hold_timeout = hold_timeout
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._images: dict[tuple[str, str], dict[str, _StoredImage]] = {}
        self._keys: dict[str, _IssuedKey] = {}
        self._calls: list[Call] = []
        self._failures: dict[str, list[_Injected]] = {}
        self._denied: set[tuple[str, str | None, str | None]] = set()
        self._holds: dict[str, Hold] = {}
        self._holds_after: dict[str, Hold] = {}
        self._build_failures: dict[str, tuple[str, str]] = {}
        self._lost: dict[str, int] = {}
        self._model = botocore.session.get_session().get_service_model("workspaces")
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --

    def start(self) -> WorkSpacesSimulator:
        if self._server is not None:
            return self
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"workspaces-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        with self._lock:
            holds = list(self._holds.values())
        for hold in holds:
            hold.release()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> WorkSpacesSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return f"http://127.0.0.1:{self.port}"

    def environment(self, *, region: str = "us-east-1") -> dict[str, str]:
        """Environment variables that point boto3 (with fake credentials) at this simulator.

        Also unset the names in ``CLEARED_ENV``.
        """
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "AKIASIMULATOR0000000",
            "AWS_SECRET_ACCESS_KEY": "simulator-secret-not-a-real-key",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }

    # -- the store --

    def _new_id(self) -> str:
        return "wsi-" + "".join(self._rng.choice(_ID_ALPHABET) for _ in range(9))

    def add_image(
        self,
        *,
        region: str,
        account_id: str = DEFAULT_ACCOUNT,
        name: str,
        platform: str | None = "WINDOWS",
        update_available: bool = True,
        update_description: str | None = DEFAULT_UPDATE_DESCRIPTION,
        state: str = "AVAILABLE",
        image_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Put an image in the store (as if it had been made by hand); returns its ID."""
        name_shape = self._model.shape_for("WorkspaceImageName")
        problems: list[str] = []
        _validate(name_shape, name, "Name", problems)
        if state not in ("AVAILABLE", "PENDING", "ERROR"):
            problems.append(f"state {state!r} is not AVAILABLE, PENDING or ERROR")
        if problems:
            raise ValueError(validation_message(problems))
        with self._lock:
            new_id = image_id or self._new_id()
            if self._find(new_id) is not None:
                raise ValueError(f"image {new_id} already exists")
            self._bucket(account_id, region)[new_id] = _StoredImage(
                image_id=new_id,
                account_id=account_id,
                region=region,
                name=name,
                description=description,
                platform=platform,
                state=state,
                update_available=update_available,
                update_description=update_description if update_available else None,
                created=self._clock(),
                tags=dict(tags or {}),
            )
            return new_id

    def _bucket(self, account_id: str, region: str) -> dict[str, _StoredImage]:
        return self._images.setdefault((account_id, region), {})

    def _find(self, image_id: str) -> _StoredImage | None:
        for bucket in self._images.values():
            if image_id in bucket:
                return bucket[image_id]
        return None

    def get_image(self, image_id: str) -> dict[str, Any] | None:
        """The image as DescribeWorkspaceImages would show it, plus its Tags; None if absent."""
        with self._lock:
            self._settle()
            image = self._find(image_id)
            if image is None:
                return None
            return {**image.to_api(), "Region": image.region, "Tags": dict(image.tags)}

    def images(self, *, region: str | None = None, account_id: str | None = None) -> list[dict]:
        with self._lock:
            self._settle()
            return [
                {**image.to_api(), "Region": image.region, "Tags": dict(image.tags)}
                for (account, reg), bucket in self._images.items()
                if (region is None or reg == region)
                and (account_id is None or account == account_id)
                for image in bucket.values()
            ]

    def rename(self, image_id: str, name: str) -> None:
        """Give an image any name, unchecked: lets a test feed wsimg a name AWS would refuse."""
        with self._lock:
            image = self._find(image_id)
            if image is None:
                raise KeyError(image_id)
            image.name = name

    def withdraw_update(self, image_id: str) -> None:
        """The image no longer has an update available (updated by hand, say)."""
        with self._lock:
            image = self._find(image_id)
            if image is None:
                raise KeyError(image_id)
            image.update_available = False
            image.update_description = None

    def remove_image(self, image_id: str) -> None:
        with self._lock:
            for bucket in self._images.values():
                bucket.pop(image_id, None)

    def _settle(self, *, force: bool = False) -> None:
        """Move PENDING images whose time has come to their final state."""
        now = self._clock()
        for bucket in self._images.values():
            for image in bucket.values():
                if image.state != "PENDING" or image.ready_at is None:
                    continue
                if force or image.ready_at <= now:
                    image.state = image.final_state
                    image.ready_at = None

    def complete_pending(self) -> None:
        """Finish every PENDING update now (AVAILABLE, or ERROR where ``fail_build`` said so)."""
        with self._lock:
            self._settle(force=True)

    # -- controls for tests --

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def count(self, operation: str) -> int:
        with self._lock:
            return sum(1 for call in self._calls if call.operation == operation)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def fail_next(
        self,
        operation: str,
        code: str,
        message: str = "",
        times: int = 1,
        *,
        region: str | None = None,
        account_id: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests for ``operation`` with error ``code``.

        ``code`` is sent as is (``ResourceLimitExceededException``); ``region`` and
        ``account_id`` narrow which requests are hit.
        """
        entry = _Injected(code, message or f"Simulated {code}", region, account_id)
        with self._lock:
            self._failures.setdefault(operation, []).extend([entry] * times)

    def throttle(
        self,
        operation: str,
        times: int = 1,
        *,
        region: str | None = None,
        account_id: str | None = None,
    ) -> None:
        """Answer ``times`` requests with the throttling error botocore retries."""
        code = "Throttling" if operation in STS_OPERATIONS else "ThrottlingException"
        self.fail_next(
            operation, code, "Rate exceeded", times, region=region, account_id=account_id
        )

    def deny(
        self, operation: str, *, region: str | None = None, account_id: str | None = None
    ) -> None:
        """Answer ``operation`` with AccessDenied until ``allow(operation)``.

        ``region`` and ``account_id`` narrow the denial. Denying CreateTags also denies
        CreateUpdatedWorkspaceImage calls that pass Tags.
        """
        with self._lock:
            self._denied.add((operation, region, account_id))

    def allow(self, operation: str) -> None:
        """Lift every denial of ``operation``."""
        with self._lock:
            self._denied = {d for d in self._denied if d[0] != operation}

    def _is_denied(self, operation: str, account: str, region: str) -> bool:
        return any(
            op == operation and reg in (None, region) and acc in (None, account)
            for op, reg, acc in self._denied
        )

    def hold(self, operation: str, *, after: bool = False) -> Hold:
        """Keep calls of ``operation`` waiting until the hold is released: before they are
        carried out, or with ``after=True`` once carried out, before the reply goes back (a
        caller killed while held has made its change and never learns of it)."""
        hold = Hold(operation, self.hold_timeout)
        gates = self._holds_after if after else self._holds
        with self._lock:
            previous = gates.get(operation)
            gates[operation] = hold
        if previous is not None:
            previous.release()
        return hold

    def lose_response(self, operation: str, times: int = 1) -> None:
        """Carry out the next ``times`` calls of ``operation``, then answer each with a 500,
        as if the reply had been lost on the way: the caller cannot tell it worked."""
        with self._lock:
            self._lost[operation] = self._lost.get(operation, 0) + times

    def fail_build(self, source_image_id: str, code: str, message: str) -> None:
        """Updates of ``source_image_id`` started from now on end in ERROR with code/message."""
        with self._lock:
            self._build_failures[source_image_id] = (code, message)

    # -- HTTP entry point --

    def handle(
        self, method: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP request. ``headers`` keys must be lower case."""
        is_form = "x-www-form-urlencoded" in headers.get("content-type", "")
        auth = _CREDENTIAL_SCOPE.search(headers.get("authorization", ""))
        service = auth.group("service") if auth else ("sts" if is_form else "workspaces")
        try:
            if method != "POST":
                raise SimulatorError("InvalidRequest", f"{method} is not supported; use POST.")
            if auth is None:
                raise SimulatorError(
                    "MissingAuthenticationToken",
                    "Missing Authentication Token: the request is not signed (SigV4).",
                    status=403,
                )
            if service == "sts":
                return self._handle_sts(auth, body)
            if service != "workspaces":
                raise SimulatorError(
                    "UnknownService", f"The simulator serves workspaces and sts, not {service}."
                )
            return self._handle_workspaces(auth, headers, body)
        except SimulatorError as err:
            if service == "sts":
                return _sts_error(err)
            return _json_error(err)

    def _identity(self, auth: re.Match[str]) -> tuple[str, str]:
        key = auth.group("key")
        with self._lock:
            issued = self._keys.get(key)
        if issued is None:
            return DEFAULT_ACCOUNT, f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/wsimg-simulator"
        if issued.expires <= time.time():
            raise SimulatorError(
                "ExpiredTokenException", "The security token included in the request is expired"
            )
        return issued.account_id, issued.arn

    def _before(self, operation: str, params: dict[str, Any], account: str, region: str) -> None:
        """Record the call, then apply the test's hold, denial and injected failure."""
        with self._lock:
            self._calls.append(Call(operation, params, account, region, self._clock()))
            hold = self._holds.get(operation)
        if hold is not None and not hold.released:
            hold._block()

    def _injected(
        self, operation: str, principal: str, params: dict[str, Any], account: str, region: str
    ) -> None:
        service = "sts" if operation in STS_OPERATIONS else "workspaces"
        with self._lock:
            denied = self._is_denied(operation, account, region)
            denied_tags = (
                operation == "CreateUpdatedWorkspaceImage"
                and bool(params.get("Tags"))
                and self._is_denied("CreateTags", account, region)
            )
            queue = self._failures.get(operation, [])
            injected = next((e for e in queue if e.matches(account, region)), None)
            if injected is not None:
                queue.remove(injected)
        if denied or denied_tags:
            action = operation if denied else "CreateTags"
            code = "AccessDenied" if service == "sts" else "AccessDeniedException"
            raise SimulatorError(
                code,
                f"User: {principal} is not authorized to perform: {service}:{action}",
            )
        if injected is not None:
            raise SimulatorError(injected.code, injected.message)

    # -- WorkSpaces --

    def _handle_workspaces(
        self, auth: re.Match[str], headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        content_type = headers.get("content-type", "")
        target = headers.get("x-amz-target", "")
        if not content_type.startswith(JSON_CONTENT_TYPE) or not target.startswith(TARGET_PREFIX):
            raise SimulatorError(
                "UnsupportedProtocolException",
                "The simulator speaks AWS JSON 1.1 only (Content-Type "
                f"{JSON_CONTENT_TYPE}, X-Amz-Target {TARGET_PREFIX}<Operation>); got "
                f"Content-Type {content_type or 'none'!r}, X-Amz-Target {target or 'none'!r}.",
            )
        operation = target[len(TARGET_PREFIX) :]
        try:
            params = json.loads(body or b"{}")
        except ValueError as exc:
            raise SimulatorError("SerializationException", f"Body is not JSON: {exc}") from exc
        account, principal = self._identity(auth)
        region = auth.group("region")
        try:
            op_model = self._model.operation_model(operation)
        except OperationNotFoundError as exc:
            raise SimulatorError(
                "UnknownOperationException", f"WorkSpaces has no operation {operation}."
            ) from exc
        self._before(operation, params, account, region)
        errors: list[str] = []
        if op_model.input_shape is not None:
            _validate(op_model.input_shape, params, "", errors)
        if errors:
            raise SimulatorError("ValidationException", validation_message(errors))
        self._injected(operation, principal, params, account, region)
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise SimulatorError(
                "NotImplementedBySimulatorException",
                f"{operation} is not implemented by the simulator "
                f"(implemented: {', '.join(IMPLEMENTED)}).",
            )
        with self._lock:
            self._settle()
            result = handler(params, account, region)
            lost = self._lost.get(operation, 0) > 0
            if lost:
                self._lost[operation] -= 1
            hold = self._holds_after.get(operation)
        if hold is not None and not hold.released:
            hold._block()
        if lost:
            raise SimulatorError("InternalFailure", "The reply was lost.", status=500)
        return _json_response(result)

    def _op_DescribeWorkspaceImages(self, params: dict, account: str, region: str) -> dict:
        bucket = self._bucket(account, region)
        ids = params.get("ImageIds")
        image_type = params.get("ImageType")
        selected = [
            image
            for image in bucket.values()
            if (ids is None or image.image_id in ids) and image_type != "SHARED"
        ]
        limit = params.get("MaxResults", 25)
        fingerprint = hashlib.sha256(
            json.dumps([ids, image_type], sort_keys=True).encode()
        ).hexdigest()[:12]
        start = 0
        if "NextToken" in params:
            start = _read_token(params["NextToken"], fingerprint)
        page = selected[start : start + limit]
        result: dict[str, Any] = {"Images": [image.to_api() for image in page]}
        if start + limit < len(selected):
            result["NextToken"] = _make_token(start + limit, fingerprint)
        return result

    def _op_CreateUpdatedWorkspaceImage(self, params: dict, account: str, region: str) -> dict:
        bucket = self._bucket(account, region)
        source_id = params["SourceImageId"]
        source = bucket.get(source_id)
        if source is None:
            raise SimulatorError(
                "ResourceNotFoundException", f"The image {source_id} could not be found."
            )
        if source.state != "AVAILABLE":
            raise SimulatorError(
                "InvalidResourceStateException",
                f"The image {source_id} is {source.state}; it must be AVAILABLE.",
            )
        if source.platform != "WINDOWS":
            raise SimulatorError(
                "OperationNotSupportedException",
                f"The image {source_id} runs {source.platform or 'an unknown OS'}; only Windows "
                f"images can be updated with this operation.",
            )
        if not source.update_available:
            raise SimulatorError(
                "OperationNotSupportedException", f"No update is available for {source_id}."
            )
        if any(image.name == params["Name"] for image in bucket.values()):
            raise SimulatorError(
                "ResourceAlreadyExistsException",
                f"An image named {params['Name']} already exists.",
            )
        if len(bucket) >= self.image_limit:
            raise SimulatorError(
                "ResourceLimitExceededException",
                f"The maximum number of images ({self.image_limit}) has been reached.",
            )
        tags = {tag["Key"]: tag.get("Value", "") for tag in params.get("Tags", [])}
        if len(tags) > MAX_TAGS:
            raise SimulatorError("ResourceLimitExceededException", "Too many tags.")
        new_id = self._new_id()
        failure = self._build_failures.get(source_id)
        bucket[new_id] = _StoredImage(
            image_id=new_id,
            account_id=account,
            region=region,
            name=params["Name"],
            description=params["Description"],
            platform=source.platform,
            state="PENDING",
            update_available=False,
            update_description=None,
            created=self._clock(),
            tags=tags,
            ready_at=self._clock() + self.pending_seconds,
            final_state="ERROR" if failure else "AVAILABLE",
            error_code=failure[0] if failure else None,
            error_message=failure[1] if failure else None,
            source_image_id=source_id,
        )
        return {"ImageId": new_id}

    def _op_DeleteWorkspaceImage(self, params: dict, account: str, region: str) -> dict:
        bucket = self._bucket(account, region)
        image = bucket.get(params["ImageId"])
        if image is None:
            return {}
        if image.state == "PENDING":
            raise SimulatorError(
                "InvalidResourceStateException",
                f"The image {image.image_id} is PENDING and cannot be deleted yet.",
            )
        del bucket[image.image_id]
        return {}

    def _tagged(self, resource_id: str, account: str, region: str) -> _StoredImage:
        image = self._bucket(account, region).get(resource_id)
        if image is None:
            raise SimulatorError(
                "ResourceNotFoundException", f"The resource {resource_id} could not be found."
            )
        return image

    def _op_CreateTags(self, params: dict, account: str, region: str) -> dict:
        image = self._tagged(params["ResourceId"], account, region)
        merged = {**image.tags, **{t["Key"]: t.get("Value", "") for t in params["Tags"]}}
        if len(merged) > MAX_TAGS:
            raise SimulatorError("ResourceLimitExceededException", "Too many tags.")
        image.tags = merged
        return {}

    def _op_DescribeTags(self, params: dict, account: str, region: str) -> dict:
        image = self._tagged(params["ResourceId"], account, region)
        return {"TagList": [{"Key": k, "Value": v} for k, v in image.tags.items()]}

    # -- STS --

    def _handle_sts(self, auth: re.Match[str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        action = form.pop("Action", "")
        form.pop("Version", None)
        if action not in STS_OPERATIONS:
            raise SimulatorError("InvalidAction", f"The simulator's STS has no action {action!r}.")
        account, principal = self._identity(auth)
        self._before(action, form, account, auth.group("region"))
        self._injected(action, principal, form, account, auth.group("region"))
        if action == "GetCallerIdentity":
            result = (
                f"<Arn>{escape(principal)}</Arn><UserId>{escape(auth.group('key'))}</UserId>"
                f"<Account>{account}</Account>"
            )
            return _sts_response(action, result)
        return _sts_response(action, self._assume_role(form))

    def _assume_role(self, form: dict[str, str]) -> str:
        role_arn = form.get("RoleArn", "")
        session_name = form.get("RoleSessionName", "")
        match = _ROLE_ARN.match(role_arn)
        if not match:
            raise SimulatorError("ValidationError", f"{role_arn!r} is not a valid role ARN.")
        if not _SESSION_NAME.match(session_name):
            raise SimulatorError("ValidationError", f"Invalid RoleSessionName {session_name!r}.")
        try:
            duration = int(form.get("DurationSeconds", "3600"))
        except ValueError as exc:
            raise SimulatorError("ValidationError", "DurationSeconds must be a number.") from exc
        if not 900 <= duration <= 43200:
            raise SimulatorError("ValidationError", "DurationSeconds must be 900-43200.")
        lifetime = min(duration, self.credential_seconds)
        account = match.group("account")
        role_name = match.group("name").rsplit("/", 1)[-1]
        assumed_arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"
        with self._lock:
            key = "ASIA" + "".join(
                self._rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)
            )
            secret = "".join(self._rng.choice(_SECRET_ALPHABET) for _ in range(40))
            token = "".join(self._rng.choice(_SECRET_ALPHABET) for _ in range(64))
            expires = time.time() + lifetime
            self._keys[key] = _IssuedKey(account_id=account, arn=assumed_arn, expires=expires)
        expiration = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            "<Credentials>"
            f"<AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
            f"<SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration>"
            "</Credentials>"
            f"<AssumedRoleUser><Arn>{escape(assumed_arn)}</Arn>"
            f"<AssumedRoleId>AROASIMULATOR:{escape(session_name)}</AssumedRoleId></AssumedRoleUser>"
            "<PackedPolicySize>0</PackedPolicySize>"
        )


# -- wire formats ----------------------------------------------------------------------------


def _request_id() -> str:
    return str(uuid.uuid4())


def _json_response(result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(result).encode()
    return 200, {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-RequestId": _request_id()}, body


def _json_error(err: SimulatorError) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"__type": err.code, "message": err.message}).encode()
    headers = {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-RequestId": _request_id()}
    return err.status, headers, body


def _sts_response(action: str, result_xml: str) -> tuple[int, dict[str, str], bytes]:
    body = (
        f'<{action}Response xmlns="{STS_NAMESPACE}"><{action}Result>{result_xml}</{action}Result>'
        f"<ResponseMetadata><RequestId>{_request_id()}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )
    return 200, {"Content-Type": "text/xml"}, body.encode()


def _sts_error(err: SimulatorError) -> tuple[int, dict[str, str], bytes]:
    code = err.code.removesuffix("Exception") if err.code != "ThrottlingException" else "Throttling"
    body = (
        f'<ErrorResponse xmlns="{STS_NAMESPACE}"><Error><Type>Sender</Type>'
        f"<Code>{escape(code)}</Code><Message>{escape(err.message)}</Message></Error>"
        f"<RequestId>{_request_id()}</RequestId></ErrorResponse>"
    )
    return err.status, {"Content-Type": "text/xml"}, body.encode()


def _make_token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(f"v1:{offset}:{fingerprint}".encode()).decode()


def _read_token(token: str, fingerprint: str) -> int:
    try:
        version, offset, seen = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if version != "v1" or seen != fingerprint:
            raise ValueError(token)
        return int(offset)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise SimulatorError(
            "InvalidParameterValuesException",
            "The NextToken is invalid or belongs to a different query.",
        ) from exc


# -- HTTP server -----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "WorkSpacesSimulator"
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, payload = self.server.simulator.handle(self.command, headers, body)
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: WorkSpacesSimulator) -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive connections so their handler threads finish."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away; nothing to report
        super().handle_error(request, client_address)


# -- demo data and standalone use -------------------------------------------------------------

_DEMO_NAMES = (
    ("Win11-Office-Standard", "WINDOWS", True),
    ("Win10-Engineering", "WINDOWS", True),
    ("Win2022-Finance", "WINDOWS", True),
    ("Win11-Contact-Center", "WINDOWS", False),
    ("AmazonLinux2-Developers", "LINUX", True),
    ("Win2019-Legacy-ERP", "WINDOWS", True),
    ("Ubuntu22-Data-Science", "LINUX", False),
    ("Win11-Design-GPU", "WINDOWS", True),
)


def seed_demo_data(
    simulator: WorkSpacesSimulator,
    *,
    regions: Iterable[str] = ("us-east-1", "eu-west-1"),
    per_region: int = 6,
    seed: int = 0,
    account_id: str = DEFAULT_ACCOUNT,
) -> list[str]:
    """Fill the simulator with a plausible fleet; the same seed gives the same fleet."""
    rng = random.Random(seed)
    created: list[str] = []
    for region in regions:
        for index in range(per_region):
            base, platform, update = _DEMO_NAMES[index % len(_DEMO_NAMES)]
            name = base if index < len(_DEMO_NAMES) else f"{base}-{index}"
            created.append(
                simulator.add_image(
                    region=region,
                    account_id=account_id,
                    name=name,
                    platform=platform,
                    update_available=update and rng.random() < 0.8,
                    description=f"{base.replace('-', ' ')} golden image",
                )
            )
    return created


def main(argv: list[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Serve until Ctrl-C (or until ``stop`` is set)."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.fakes.workspaces",
        description="Run the WorkSpaces simulator on 127.0.0.1 until interrupted.",
    )
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--seed", type=int, default=0, help="random seed for the demo fleet")
    parser.add_argument("--images", type=int, default=6, help="demo images per region")
    parser.add_argument("--regions", default="us-east-1,eu-west-1", help="comma list")
    parser.add_argument("--pending-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    simulator = WorkSpacesSimulator(
        port=args.port, pending_seconds=args.pending_seconds, seed=args.seed
    )
    simulator.start()
    seed_demo_data(simulator, regions=regions, per_region=args.images, seed=args.seed)
    print(simulator.url, flush=True)
    print(
        f"export AWS_ENDPOINT_URL={simulator.url} AWS_ACCESS_KEY_ID=fake "
        f"AWS_SECRET_ACCESS_KEY=fake WSIMG_REGIONS={','.join(regions)}",
        file=sys.stderr,
        flush=True,
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            (stop or threading.Event()).wait()
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
