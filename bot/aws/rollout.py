"""The AWS calls of a rollout: bundles, WorkSpaces, their connections and snapshots, image
permissions, and deleting an image. Every call goes through the gateway's clients (one per
account and region, botocore's standard retries) and leaves as an ``AwsError`` when it fails.

The facts that shape them (botocore's WorkSpaces model): DescribeWorkspaces takes one filter at
a time; RebuildWorkspaces takes exactly one WorkSpace per request and answers FailedRequests
rather than raising; DescribeWorkspacesConnectionStatus and DescribeWorkspaces take at most 25
WorkspaceIds; UpdateWorkspaceImagePermission shares or unshares one account at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bot.aws.gateway import PAGE_SIZE, WorkSpacesGateway, call

# The states RebuildWorkspaces accepts a WorkSpace in.
REBUILDABLE = frozenset({"AVAILABLE", "ERROR", "UNHEALTHY", "STOPPED", "REBOOTING"})


@dataclass(frozen=True)
class Bundle:
    bundle_id: str
    name: str
    image_id: str | None


@dataclass(frozen=True)
class Workspace:
    workspace_id: str
    user_name: str
    bundle_id: str | None
    state: str


@dataclass(frozen=True)
class Connection:
    workspace_id: str
    state: str  # CONNECTED | DISCONNECTED | UNKNOWN
    last_known: datetime | None  # the user's last connection, if WorkSpaces knows it


@dataclass(frozen=True)
class RebuildRefused:
    """A FailedRequest of RebuildWorkspaces."""

    workspace_id: str
    code: str
    message: str


def _utc(value: Any) -> datetime | None:
    return value.astimezone(UTC) if isinstance(value, datetime) else None


def _batches(ids: Iterable[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), PAGE_SIZE):
        yield unique[start : start + PAGE_SIZE]


class RolloutCalls:
    """The rollout's AWS calls for the accounts and regions the gateway reaches."""

    def __init__(self, gateway: WorkSpacesGateway) -> None:
        self._gateway = gateway

    def _pages(
        self, account_id: str, region: str, operation: str, action: str, **params: Any
    ) -> Iterator[dict[str, Any]]:
        client = self._gateway.client(account_id, region)
        pages = iter(client.get_paginator(operation).paginate(**params))
        while True:
            page: dict[str, Any] | None = call(action, region, lambda: next(pages, None))
            if page is None:
                return
            yield page

    # -- bundles ----------------------------------------------------------------------------

    def own_bundles(self, *, account_id: str, region: str) -> list[Bundle]:
        """The account's own bundles in the region (Owner left out: not Amazon's)."""
        return [
            Bundle(item["BundleId"], item.get("Name", ""), item.get("ImageId"))
            for page in self._pages(
                account_id, region, "describe_workspace_bundles", "DescribeWorkspaceBundles"
            )
            for item in page.get("Bundles", [])
        ]

    def bundles(self, *, account_id: str, region: str, bundle_ids: Iterable[str]) -> list[Bundle]:
        found: list[Bundle] = []
        for batch in _batches(bundle_ids):
            for page in self._pages(
                account_id,
                region,
                "describe_workspace_bundles",
                "DescribeWorkspaceBundles",
                BundleIds=batch,
            ):
                found.extend(
                    Bundle(item["BundleId"], item.get("Name", ""), item.get("ImageId"))
                    for item in page.get("Bundles", [])
                )
        return found

    def point_bundle(self, *, account_id: str, region: str, bundle_id: str, image_id: str) -> None:
        client = self._gateway.client(account_id, region)
        call(
            "UpdateWorkspaceBundle",
            region,
            lambda: client.update_workspace_bundle(BundleId=bundle_id, ImageId=image_id),
        )

    # -- WorkSpaces -------------------------------------------------------------------------

    @staticmethod
    def _workspace(item: dict[str, Any]) -> Workspace:
        return Workspace(
            workspace_id=item["WorkspaceId"],
            user_name=item.get("UserName", ""),
            bundle_id=item.get("BundleId"),
            state=item.get("State", "UNKNOWN"),
        )

    def workspaces_on_bundle(
        self, *, account_id: str, region: str, bundle_id: str
    ) -> list[Workspace]:
        return [
            self._workspace(item)
            for page in self._pages(
                account_id, region, "describe_workspaces", "DescribeWorkspaces", BundleId=bundle_id
            )
            for item in page.get("Workspaces", [])
        ]

    def workspaces(
        self, *, account_id: str, region: str, workspace_ids: Iterable[str]
    ) -> dict[str, Workspace]:
        """The WorkSpaces with these IDs (absent ones are missing), 25 IDs per call."""
        found: dict[str, Workspace] = {}
        for batch in _batches(workspace_ids):
            for page in self._pages(
                account_id,
                region,
                "describe_workspaces",
                "DescribeWorkspaces",
                WorkspaceIds=batch,
            ):
                for item in page.get("Workspaces", []):
                    workspace = self._workspace(item)
                    found[workspace.workspace_id] = workspace
        return found

    def connections(
        self, *, account_id: str, region: str, workspace_ids: Iterable[str]
    ) -> dict[str, Connection]:
        found: dict[str, Connection] = {}
        for batch in _batches(workspace_ids):
            for page in self._pages(
                account_id,
                region,
                "describe_workspaces_connection_status",
                "DescribeWorkspacesConnectionStatus",
                WorkspaceIds=batch,
            ):
                for item in page.get("WorkspacesConnectionStatus", []):
                    found[item["WorkspaceId"]] = Connection(
                        workspace_id=item["WorkspaceId"],
                        state=item.get("ConnectionState", "UNKNOWN"),
                        last_known=_utc(item.get("LastKnownUserConnectionTimestamp")),
                    )
        return found

    def latest_snapshot(
        self, *, account_id: str, region: str, workspace_id: str
    ) -> datetime | None:
        """When the snapshot a rebuild would restore the user volume from was taken."""
        client = self._gateway.client(account_id, region)
        answer = call(
            "DescribeWorkspaceSnapshots",
            region,
            lambda: client.describe_workspace_snapshots(WorkspaceId=workspace_id),
        )
        times = [
            moment
            for snapshot in answer.get("RebuildSnapshots") or []
            if (moment := _utc(snapshot.get("SnapshotTime"))) is not None
        ]
        return max(times, default=None)

    def rebuild(self, *, account_id: str, region: str, workspace_id: str) -> RebuildRefused | None:
        """Ask for one WorkSpace's rebuild, once (botocore does not retry it: a reply lost
        after WorkSpaces took it must not become a second rebuild); the FailedRequest when
        WorkSpaces refused it."""
        client = self._gateway.client(account_id, region, retries=False)
        answer = call(
            "RebuildWorkspaces",
            region,
            lambda: client.rebuild_workspaces(
                RebuildWorkspaceRequests=[{"WorkspaceId": workspace_id}]
            ),
        )
        for failed in answer.get("FailedRequests") or []:
            return RebuildRefused(
                workspace_id=failed.get("WorkspaceId", workspace_id),
                code=failed.get("ErrorCode") or "Unknown",
                message=failed.get("ErrorMessage") or "WorkSpaces gave no reason.",
            )
        return None

    # -- images -----------------------------------------------------------------------------

    def shared_with(self, *, account_id: str, region: str, image_id: str) -> list[str]:
        """The accounts the image is shared with."""
        client = self._gateway.client(account_id, region)
        accounts: list[str] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"ImageId": image_id, "MaxResults": PAGE_SIZE}
            if token:
                params["NextToken"] = token
            answer: dict[str, Any] = call(
                "DescribeWorkspaceImagePermissions",
                region,
                partial(client.describe_workspace_image_permissions, **params),
            )
            accounts.extend(
                str(item["SharedAccountId"])
                for item in answer.get("ImagePermissions") or []
                if item.get("SharedAccountId")
            )
            token = answer.get("NextToken")
            if not token:
                return sorted(set(accounts))

    def share(
        self, *, account_id: str, region: str, image_id: str, with_account: str, allow: bool
    ) -> None:
        """Share the image with one account (``allow``) or stop sharing it."""
        client = self._gateway.client(account_id, region)
        call(
            "UpdateWorkspaceImagePermission",
            region,
            lambda: client.update_workspace_image_permission(
                ImageId=image_id, AllowCopyImage=allow, SharedAccountId=with_account
            ),
        )

    def delete_image(self, *, account_id: str, region: str, image_id: str) -> None:
        client = self._gateway.client(account_id, region)
        call(
            "DeleteWorkspaceImage",
            region,
            lambda: client.delete_workspace_image(ImageId=image_id),
        )

    def image_count(self, *, account_id: str, region: str) -> int:
        """How many images the account owns in the region (against its image quota)."""
        return sum(
            len(page.get("Images", []))
            for page in self._pages(
                account_id,
                region,
                "describe_workspace_images",
                "DescribeWorkspaceImages",
                ImageType="OWNED",
                MaxResults=PAGE_SIZE,
            )
        )
