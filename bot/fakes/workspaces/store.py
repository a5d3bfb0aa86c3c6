"""The simulator's state: images per (account, region) with the lifecycle of
CreateUpdatedWorkspaceImage (PENDING, then AVAILABLE or ERROR some time later) and the accounts
each is shared with; bundles and WorkSpaces per (account, region), a rebuild's REBUILDING
spell; the calls it received, and the failures, denials and holds tests asked for."""

from __future__ import annotations

import hashlib
import json
import random
import string
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.session

from bot.fakes.hold import Hold
from bot.fakes.workspaces.model import validate, validation_message
from bot.fakes.workspaces.protocol import SimulatorError, SimulatorServer, make_token, read_token

DEFAULT_ACCOUNT = "123456789012"
DEFAULT_IMAGE_LIMIT = 40
DEFAULT_PAGE_SIZE = 25
MAX_TAGS = 50
DEFAULT_UPDATE_DESCRIPTION = "Microsoft Windows and WorkSpaces agent updates are available."
# A Linux image gets no Windows updates; the demo fleet describes its updates with this.
LINUX_UPDATE_DESCRIPTION = "WorkSpaces agent updates are available."

_ID_ALPHABET = string.digits + string.ascii_lowercase


@dataclass(frozen=True)
class Call:
    """One request the simulator received (recorded before it is answered)."""

    operation: str
    params: dict[str, Any]
    account: str
    region: str
    time: float


@dataclass
class StoredImage:
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
    error_details: list[tuple[str, str]] = field(default_factory=list)
    source_image_id: str | None = None
    shared_with: list[str] = field(default_factory=list)

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
            if self.error_details:
                data["ErrorDetails"] = [
                    {"ErrorCode": code, "ErrorMessage": message}
                    for code, message in self.error_details
                ]
        return data


@dataclass
class StoredBundle:
    bundle_id: str
    account_id: str
    region: str
    name: str
    description: str | None
    image_id: str
    created: float
    updated: float
    compute_type: str = "STANDARD"
    root_capacity: str = "80"
    user_capacity: str = "50"

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "BundleId": self.bundle_id,
            "Name": self.name,
            "ImageId": self.image_id,
            "RootStorage": {"Capacity": self.root_capacity},
            "UserStorage": {"Capacity": self.user_capacity},
            "ComputeType": {"Name": self.compute_type},
            "State": "AVAILABLE",
            "BundleType": "REGULAR",
            "CreationTime": self.created,
            "LastUpdatedTime": self.updated,
        }
        if self.description:
            data["Description"] = self.description
        return data


@dataclass
class StoredWorkspace:
    workspace_id: str
    account_id: str
    region: str
    directory_id: str
    user_name: str
    bundle_id: str
    state: str
    ip_address: str
    computer_name: str
    built_from_image_id: str
    connected: bool
    last_connected: float | None
    snapshot_at: float | None
    compute_type: str
    root_gib: int
    user_gib: int
    workspace_name: str | None = None
    rebuilds: int = 0
    # A rebuild under way: when it ends, from which image, and whether it ends in ERROR.
    rebuild_ready_at: float | None = None
    rebuild_image_id: str | None = None
    rebuild_fails: bool = False
    # fail_rebuild: how many coming rebuilds end in ERROR (None: all of them).
    failing_rebuilds: int | None = 0

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "WorkspaceId": self.workspace_id,
            "DirectoryId": self.directory_id,
            "UserName": self.user_name,
            "IpAddress": self.ip_address,
            "State": self.state,
            "BundleId": self.bundle_id,
            "ComputerName": self.computer_name,
            "WorkspaceProperties": {
                "RunningMode": "AUTO_STOP",
                "RunningModeAutoStopTimeoutInMinutes": 60,
                "RootVolumeSizeGib": self.root_gib,
                "UserVolumeSizeGib": self.user_gib,
                "ComputeTypeName": self.compute_type,
            },
        }
        if self.workspace_name:
            data["WorkspaceName"] = self.workspace_name
        return data

    def connection_state(self) -> str:
        """CONNECTED or DISCONNECTED while the WorkSpace runs; UNKNOWN otherwise (AWS: "The
        connection state is unknown if the WorkSpace is stopped")."""
        if self.state not in RUNNING_STATES:
            return "UNKNOWN"
        return "CONNECTED" if self.connected else "DISCONNECTED"


# The states in which a WorkSpace reports whether its user is connected.
RUNNING_STATES = frozenset({"AVAILABLE", "IMPAIRED", "UNHEALTHY"})


@dataclass(frozen=True)
class Injected:
    code: str
    message: str
    region: str | None
    account_id: str | None

    def matches(self, account: str, region: str) -> bool:
        return self.region in (None, region) and self.account_id in (None, account)


@dataclass(frozen=True)
class BuildFailure:
    """How updates of one source image end (``fail_build``)."""

    code: str
    message: str
    details: tuple[tuple[str, str], ...]


@dataclass
class IssuedKey:
    account_id: str
    arn: str
    expires: float


class ImageStore:
    """The images and the simulator's records, behind one lock."""

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
        rebuild_seconds: float = 2.0,
        latency: float = 0.0,
    ) -> None:
        if latency < 0:
            raise ValueError(f"latency {latency} is negative")
        self.port = port
        # Seconds every AWS call (WorkSpaces and STS) waits before it is answered, outside
        # the store's lock, so that concurrent calls wait side by side as AWS's would.
        self.latency = latency
        self.pending_seconds = pending_seconds
        self.rebuild_seconds = rebuild_seconds
        # Items per page of DescribeWorkspaceBundles, DescribeWorkspacesConnectionStatus, and of
        # DescribeWorkspaces and DescribeWorkspaceImagePermissions when no limit is asked for.
        self.page_size = DEFAULT_PAGE_SIZE
        self.image_limit = image_limit
        self.credential_seconds = credential_seconds
        self.hold_timeout = hold_timeout
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._images: dict[tuple[str, str], dict[str, StoredImage]] = {}
        self._bundles: dict[tuple[str, str], dict[str, StoredBundle]] = {}
        self._workspaces: dict[tuple[str, str], dict[str, StoredWorkspace]] = {}
        self._directories: dict[tuple[str, str], str] = {}
        self._keys: dict[str, IssuedKey] = {}
        self._calls: list[Call] = []
        self._failures: dict[str, list[Injected]] = {}
        self._denied: set[tuple[str, str | None, str | None]] = set()
        self._holds: dict[str, Hold] = {}
        self._holds_after: dict[str, Hold] = {}
        self._build_failures: dict[str, BuildFailure] = {}
        self._lost: dict[str, int] = {}
        self._model = botocore.session.get_session().get_service_model("workspaces")
        self._server: SimulatorServer | None = None
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        """The simulator's clock (epoch seconds): the one lifecycles and timestamps follow."""
        return self._clock()

    # -- the store --

    def _new_id(self, prefix: str = "wsi-") -> str:
        return prefix + "".join(self._rng.choice(_ID_ALPHABET) for _ in range(9))

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
        validate(name_shape, name, "Name", problems)
        if state not in ("AVAILABLE", "PENDING", "ERROR"):
            problems.append(f"state {state!r} is not AVAILABLE, PENDING or ERROR")
        if problems:
            raise ValueError(validation_message(problems))
        with self._lock:
            new_id = image_id or self._new_id()
            if self._find(new_id) is not None:
                raise ValueError(f"image {new_id} already exists")
            self._bucket(account_id, region)[new_id] = StoredImage(
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

    def _bucket(self, account_id: str, region: str) -> dict[str, StoredImage]:
        return self._images.setdefault((account_id, region), {})

    def _find(self, image_id: str) -> StoredImage | None:
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
        """Move PENDING images and REBUILDING WorkSpaces whose time has come to their end."""
        now = self._clock()
        for bucket in self._images.values():
            for image in bucket.values():
                if image.state != "PENDING" or image.ready_at is None:
                    continue
                if force or image.ready_at <= now:
                    image.state = image.final_state
                    image.ready_at = None
        for workspaces in self._workspaces.values():
            for workspace in workspaces.values():
                ready_at = workspace.rebuild_ready_at
                if workspace.state != "REBUILDING" or ready_at is None:
                    continue
                if force or ready_at <= now:
                    self._finish_rebuild(workspace)

    def _finish_rebuild(self, workspace: StoredWorkspace) -> None:
        workspace.rebuild_ready_at = None
        workspace.connected = False
        if workspace.rebuild_fails:
            workspace.state = "ERROR"
            return
        workspace.state = "AVAILABLE"
        workspace.built_from_image_id = workspace.rebuild_image_id or workspace.built_from_image_id
        workspace.ip_address = self._new_ip(workspace.account_id, workspace.region)

    def _new_ip(self, account_id: str, region: str) -> str:
        taken = {w.ip_address for w in self._workspaces.get((account_id, region), {}).values()}
        while True:
            address = f"10.0.{self._rng.randint(0, 255)}.{self._rng.randint(4, 254)}"
            if address not in taken:
                return address

    def complete_pending(self) -> None:
        """Finish every PENDING update now (AVAILABLE, or ERROR where ``fail_build`` said so),
        and every rebuild under way (AVAILABLE, or ERROR where ``fail_rebuild`` said so)."""
        with self._lock:
            self._settle(force=True)

    # -- helpers of the operations --

    def _check_room(self, bucket: dict[str, StoredImage], name: str) -> None:
        """Refuse a new image whose name is taken or that would exceed the image quota."""
        if any(image.name == name for image in bucket.values()):
            raise SimulatorError(
                "ResourceAlreadyExistsException", f"An image named {name} already exists."
            )
        if len(bucket) >= self.image_limit:
            raise SimulatorError(
                "ResourceLimitExceededException",
                f"The maximum number of images ({self.image_limit}) has been reached.",
            )

    @staticmethod
    def _page(
        items: list[Any], params: Mapping[str, Any], limit: int, query: object
    ) -> tuple[list[Any], str | None]:
        """The page of ``items`` that ``params["NextToken"]`` points at, and the next token.

        ``query`` (the filters, not the limit) is baked into the token: a token handed back
        with another query is refused.
        """
        fingerprint = hashlib.sha256(
            json.dumps(query, sort_keys=True, default=str).encode()
        ).hexdigest()[:12]
        start = read_token(params["NextToken"], fingerprint) if "NextToken" in params else 0
        page = items[start : start + limit]
        more = start + limit < len(items)
        return page, make_token(start + limit, fingerprint) if more else None
