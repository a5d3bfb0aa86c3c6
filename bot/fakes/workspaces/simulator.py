"""The simulator tests and ``wsimg demo`` start: :class:`WorkSpacesSimulator`, its lifecycle on
127.0.0.1, the environment that points boto3 at it, and the controls tests steer it with."""

from __future__ import annotations

import string
import threading
from collections.abc import Sequence
from typing import Any

from bot.fakes.hold import Hold
from bot.fakes.workspaces.model import validate, validation_message
from bot.fakes.workspaces.protocol import SimulatorServer
from bot.fakes.workspaces.service import STS_OPERATIONS, WorkSpacesService
from bot.fakes.workspaces.store import (
    DEFAULT_ACCOUNT,
    BuildFailure,
    Call,
    Injected,
    StoredBundle,
    StoredWorkspace,
)

_LOWER = string.ascii_lowercase + string.digits
_UPPER = string.ascii_uppercase + string.digits

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


class WorkSpacesSimulator(WorkSpacesService):
    """In-memory WorkSpaces images, bundles and WorkSpaces behind a local HTTP endpoint.
    Thread-safe.

    ``pending_seconds``: how long an updated or copied image stays PENDING. ``rebuild_seconds``:
    how long a rebuilt WorkSpace stays REBUILDING. ``image_limit``: images per account and
    region (the real default quota is 40). ``credential_seconds``: the most an AssumeRole
    credential lives. ``clock``: the time source for image and rebuild lifecycles (tests may
    pass a fake one). ``seed``: makes generated IDs reproducible. ``latency``: seconds after
    which every call is answered, the simulator's own work included (0 by default), as a
    far-away AWS would. The attribute
    ``page_size`` (25) is how many items a page of DescribeWorkspaceBundles and DescribeWorkspaces
    ConnectionStatus holds (and of DescribeWorkspaces and DescribeWorkspaceImagePermissions
    without a limit): lower it to make a test see several pages.
    """

    # -- lifecycle --

    def start(self) -> WorkSpacesSimulator:
        if self._server is not None:
            return self
        self._server = SimulatorServer(("127.0.0.1", self.port), self.handle)
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
        entry = Injected(code, message or f"Simulated {code}", region, account_id)
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

    def fail_build(
        self,
        source_image_id: str,
        code: str,
        message: str,
        details: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        """Updates of ``source_image_id`` started from now on end in ERROR with code/message.

        ``details``: the (ErrorCode, ErrorMessage) pairs DescribeWorkspaceImages lists as the
        image's ``ErrorDetails``; each code must be one of botocore's
        WorkspaceImageErrorDetailCode values (ValueError otherwise). Without ``details``, the
        image has one detail equal to code/message if ``code`` is such a value, else none.
        """
        allowed = self._model.shape_for("WorkspaceImageErrorDetailCode").enum
        pairs: tuple[tuple[str, str], ...]
        if details is None:
            pairs = ((code, message),) if code in allowed else ()
        else:
            pairs = tuple((detail_code, detail_message) for detail_code, detail_message in details)
            wrong = [detail_code for detail_code, _ in pairs if detail_code not in allowed]
            if wrong:
                raise ValueError(
                    f"{', '.join(wrong)} not in WorkspaceImageErrorDetailCode "
                    f"({', '.join(allowed)})"
                )
        with self._lock:
            self._build_failures[source_image_id] = BuildFailure(code, message, pairs)

    # -- bundles, WorkSpaces and image permissions --

    def add_bundle(
        self,
        *,
        region: str,
        name: str,
        image_id: str,
        account_id: str = DEFAULT_ACCOUNT,
        description: str | None = None,
    ) -> str:
        """Put a bundle of the account in the store, using ``image_id`` (an image of the same
        account and region); returns its ID (``wsb-`` and 9 characters).

        It is AVAILABLE, REGULAR, STANDARD compute with 80 GB root and 50 GB user storage.
        ValueError for a name CreateWorkspaceBundle would refuse or one the account already
        uses in the region, or for an image that is not there.
        """
        problems: list[str] = []
        validate(self._model.shape_for("WorkspaceBundleName"), name, "Name", problems)
        if problems:
            raise ValueError(validation_message(problems))
        with self._lock:
            if image_id not in self._bucket(account_id, region):
                raise ValueError(f"no image {image_id} in {account_id} {region}")
            bundles = self._bundles.setdefault((account_id, region), {})
            if any(bundle.name == name for bundle in bundles.values()):
                raise ValueError(f"a bundle named {name} already exists in {region}")
            now = self._clock()
            bundle_id = self._new_id("wsb-")
            bundles[bundle_id] = StoredBundle(
                bundle_id=bundle_id,
                account_id=account_id,
                region=region,
                name=name,
                description=description,
                image_id=image_id,
                created=now,
                updated=now,
            )
            return bundle_id

    def add_workspace(
        self,
        *,
        region: str,
        bundle_id: str,
        user_name: str,
        account_id: str = DEFAULT_ACCOUNT,
        state: str = "AVAILABLE",
        connected: bool = False,
        last_connected: float | None = None,
        snapshot_at: float | None = None,
        directory_id: str | None = None,
        workspace_name: str | None = None,
    ) -> str:
        """Put a WorkSpace on ``bundle_id`` (a bundle of the same account and region), built
        from the bundle's image as it is now; returns its ID (``ws-`` and 9 characters).

        ``connected``: whether its user is connected. ``last_connected`` (epoch seconds): the
        user's last known connection; by default now if connected, else 24 hours ago by the
        simulator's clock. ``snapshot_at``: its latest snapshot; by default 6 hours ago.
        ``directory_id``: by default one directory (``d-`` and 10 hex digits) per account and
        region. ``state``: any WorkspaceState of the model. ValueError for an unknown bundle,
        state or a user name the model would refuse.
        """
        problems: list[str] = []
        validate(self._model.shape_for("UserName"), user_name, "UserName", problems)
        validate(self._model.shape_for("WorkspaceState"), state, "State", problems)
        if directory_id is not None:
            validate(self._model.shape_for("DirectoryId"), directory_id, "DirectoryId", problems)
        if workspace_name is not None:
            validate(self._model.shape_for("WorkspaceName"), workspace_name, "Name", problems)
        if problems:
            raise ValueError(validation_message(problems))
        with self._lock:
            bundle = self._bundles.get((account_id, region), {}).get(bundle_id)
            if bundle is None:
                raise ValueError(f"no bundle {bundle_id} in {account_id} {region}")
            image = self._bucket(account_id, region).get(bundle.image_id)
            now = self._clock()
            if directory_id is None:
                directory_id = self._directories.setdefault(
                    (account_id, region),
                    "d-" + "".join(self._rng.choice("0123456789abcdef") for _ in range(10)),
                )
            if image is not None and image.platform == "LINUX":
                computer = "A-" + "".join(self._rng.choice(_LOWER) for _ in range(13))
            else:
                computer = "WSAMZN-" + "".join(self._rng.choice(_UPPER) for _ in range(8))
            default_seen = now if connected else now - 24 * 3600
            workspace_id = self._new_id("ws-")
            self._workspaces.setdefault((account_id, region), {})[workspace_id] = StoredWorkspace(
                workspace_id=workspace_id,
                account_id=account_id,
                region=region,
                directory_id=directory_id,
                user_name=user_name,
                bundle_id=bundle_id,
                state=state,
                ip_address=self._new_ip(account_id, region),
                computer_name=computer,
                built_from_image_id=bundle.image_id,
                connected=connected,
                last_connected=last_connected if last_connected is not None else default_seen,
                snapshot_at=snapshot_at if snapshot_at is not None else now - 6 * 3600,
                compute_type=bundle.compute_type,
                root_gib=int(bundle.root_capacity),
                user_gib=int(bundle.user_capacity),
                workspace_name=workspace_name,
            )
            return workspace_id

    def _stored_workspace(self, workspace_id: str) -> StoredWorkspace:
        for bucket in self._workspaces.values():
            if workspace_id in bucket:
                return bucket[workspace_id]
        raise KeyError(workspace_id)

    def _stored_bundle(self, bundle_id: str) -> StoredBundle:
        for bucket in self._bundles.values():
            if bundle_id in bucket:
                return bucket[bundle_id]
        raise KeyError(bundle_id)

    def set_connected(self, workspace_id: str, connected: bool, at: float | None = None) -> None:
        """The WorkSpace's user connects (``connected``) or disconnects.

        ``at`` (epoch seconds) becomes the last known user connection; without it, connecting
        sets it to now, and disconnecting a connected user sets it to now (they were there
        until now) and leaves it alone otherwise. KeyError for an unknown WorkSpace.
        """
        with self._lock:
            self._settle()
            workspace = self._stored_workspace(workspace_id)
            if at is not None:
                workspace.last_connected = at
            elif connected or workspace.connected:
                workspace.last_connected = self._clock()
            workspace.connected = connected

    def set_workspace_state(self, workspace_id: str, state: str) -> None:
        """Put the WorkSpace in ``state`` (any WorkspaceState), ending a rebuild under way.

        While the state is not AVAILABLE, IMPAIRED or UNHEALTHY, DescribeWorkspacesConnection
        Status reports the connection as UNKNOWN. ValueError for a state not in the model.
        """
        problems: list[str] = []
        validate(self._model.shape_for("WorkspaceState"), state, "State", problems)
        if problems:
            raise ValueError(validation_message(problems))
        with self._lock:
            self._settle()
            workspace = self._stored_workspace(workspace_id)
            workspace.state = state
            workspace.rebuild_ready_at = None

    def set_snapshot(self, workspace_id: str, at: float | None) -> None:
        """The WorkSpace's latest snapshot was taken ``at`` (epoch seconds); None: it has none."""
        with self._lock:
            self._stored_workspace(workspace_id).snapshot_at = at

    def fail_rebuild(self, workspace_id: str, times: int | None = None) -> None:
        """Rebuilds of the WorkSpace started from now on are accepted, then end in ERROR after
        ``rebuild_seconds``: all of them, or with ``times`` the next ``times`` (0 lifts it)."""
        with self._lock:
            self._stored_workspace(workspace_id).failing_rebuilds = times

    def rebuilds(self, workspace_id: str) -> int:
        """How many rebuilds of the WorkSpace RebuildWorkspaces accepted."""
        with self._lock:
            return self._stored_workspace(workspace_id).rebuilds

    def bundle(self, bundle_id: str) -> dict[str, Any]:
        """The bundle as DescribeWorkspaceBundles shows it, plus its Region and OwnerAccountId.
        KeyError for an unknown bundle."""
        with self._lock:
            bundle = self._stored_bundle(bundle_id)
            return {**bundle.to_api(), "Region": bundle.region, "OwnerAccountId": bundle.account_id}

    def workspace(self, workspace_id: str) -> dict[str, Any]:
        """The WorkSpace as DescribeWorkspaces shows it, plus what the simulator knows of it:
        Region, AccountId, ConnectionState (as DescribeWorkspacesConnectionStatus reports it),
        connected (the stored flag), last_connected, snapshot_at, built_from_image_id (the image
        it was built or last rebuilt from) and rebuilds. KeyError for an unknown WorkSpace."""
        with self._lock:
            self._settle()
            workspace = self._stored_workspace(workspace_id)
            return {
                **workspace.to_api(),
                "Region": workspace.region,
                "AccountId": workspace.account_id,
                "ConnectionState": workspace.connection_state(),
                "connected": workspace.connected,
                "last_connected": workspace.last_connected,
                "snapshot_at": workspace.snapshot_at,
                "built_from_image_id": workspace.built_from_image_id,
                "rebuilds": workspace.rebuilds,
            }

    def workspace_ids(
        self, *, region: str | None = None, account_id: str | None = None
    ) -> list[str]:
        """The IDs of the WorkSpaces, optionally of one region and account, oldest first."""
        with self._lock:
            return [
                workspace_id
                for (account, reg), bucket in self._workspaces.items()
                if (region is None or reg == region)
                and (account_id is None or account == account_id)
                for workspace_id in bucket
            ]

    def share_image(self, image_id: str, account_id: str) -> None:
        """Share the image with ``account_id`` as UpdateWorkspaceImagePermission would (no
        checks of state or account). KeyError for an unknown image."""
        with self._lock:
            image = self._find(image_id)
            if image is None:
                raise KeyError(image_id)
            if account_id not in image.shared_with:
                image.shared_with.append(account_id)

    def image_permissions(self, image_id: str) -> list[str]:
        """The accounts the image is shared with, in the order they were added."""
        with self._lock:
            image = self._find(image_id)
            if image is None:
                raise KeyError(image_id)
            return list(image.shared_with)
