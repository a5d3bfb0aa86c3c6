"""The WorkSpaces operations on bundles and WorkSpaces: DescribeWorkspaceBundles,
UpdateWorkspaceBundle, DescribeWorkspaces, RebuildWorkspaces, DescribeWorkspacesConnectionStatus
and DescribeWorkspaceSnapshots, per (account, region) like images.

Each ``_op_<Operation>`` runs under the store's lock, after the request passed botocore's
model, and answers the operation's output or raises ``SimulatorError`` with the service's
error code."""

from __future__ import annotations

from typing import Any

from bot.fakes.workspaces.protocol import SimulatorError
from bot.fakes.workspaces.store import ImageStore, StoredBundle, StoredWorkspace

# The states RebuildWorkspaces accepts a WorkSpace in (AWS: "You cannot rebuild a WorkSpace
# unless its state is AVAILABLE, ERROR, UNHEALTHY, STOPPED, or REBOOTING").
REBUILDABLE = ("AVAILABLE", "ERROR", "UNHEALTHY", "STOPPED", "REBOOTING")
REBUILD_STATE_ERROR = "InvalidResourceState.Workspace"
REBUILD_NOT_FOUND = "ResourceNotFound.Workspace"


class FleetOperations(ImageStore):
    """Bundles and WorkSpaces as the WorkSpaces API shows and changes them."""

    def _bundle_bucket(self, account: str, region: str) -> dict[str, StoredBundle]:
        return self._bundles.setdefault((account, region), {})

    def _workspace_bucket(self, account: str, region: str) -> dict[str, StoredWorkspace]:
        return self._workspaces.setdefault((account, region), {})

    # -- bundles --

    def _op_DescribeWorkspaceBundles(self, params: dict, account: str, region: str) -> dict:
        ids = params.get("BundleIds")
        owner = params.get("Owner")
        if ids is not None and owner is not None:
            raise SimulatorError(
                "InvalidParameterValuesException",
                "BundleIds and Owner cannot be combined; filter by one of them.",
            )
        if owner is not None and owner != "AMAZON":
            raise SimulatorError(
                "InvalidParameterValuesException",
                f"Owner {owner!r} is not valid: specify AMAZON, or leave Owner out for the "
                "bundles of your account.",
            )
        bundles = list(self._bundle_bucket(account, region).values())
        if owner == "AMAZON":
            bundles = []  # the simulator has none of Amazon's public bundles
        elif ids is not None:
            bundles = [bundle for bundle in bundles if bundle.bundle_id in ids]
        page, token = self._page(bundles, params, self.page_size, [ids, owner])
        result: dict[str, Any] = {"Bundles": [bundle.to_api() for bundle in page]}
        if token:
            result["NextToken"] = token
        return result

    def _op_UpdateWorkspaceBundle(self, params: dict, account: str, region: str) -> dict:
        bundle_id = params.get("BundleId")
        image_id = params.get("ImageId")
        if bundle_id is None or image_id is None:
            raise SimulatorError(
                "InvalidParameterValuesException", "Both BundleId and ImageId are required."
            )
        bundle = self._bundle_bucket(account, region).get(bundle_id)
        if bundle is None:
            raise SimulatorError(
                "ResourceNotFoundException", f"The bundle {bundle_id} could not be found."
            )
        image = self._bucket(account, region).get(image_id)
        if image is None:
            raise SimulatorError(
                "ResourceNotFoundException", f"The image {image_id} could not be found."
            )
        if image.state != "AVAILABLE":
            raise SimulatorError(
                "ResourceUnavailableException",
                f"The image {image_id} is {image.state}; a bundle can use an AVAILABLE image only.",
            )
        bundle.image_id = image_id
        bundle.updated = self._clock()
        return {}

    # -- WorkSpaces --

    def _op_DescribeWorkspaces(self, params: dict, account: str, region: str) -> dict:
        ids = params.get("WorkspaceIds")
        directory_id = params.get("DirectoryId")
        bundle_id = params.get("BundleId")
        user_name = params.get("UserName")
        name = params.get("WorkspaceName")
        filters = [key for key in ("WorkspaceIds", "DirectoryId", "BundleId") if key in params]
        if len(filters) > 1:
            raise SimulatorError(
                "InvalidParameterValuesException",
                f"{' and '.join(filters)} cannot be combined; you can filter by only one of "
                "WorkspaceIds, DirectoryId and BundleId.",
            )
        if user_name is not None and directory_id is None:
            raise SimulatorError(
                "InvalidParameterValuesException", "UserName can be used only with DirectoryId."
            )
        selected = [
            workspace
            for workspace in self._workspace_bucket(account, region).values()
            if (ids is None or workspace.workspace_id in ids)
            and (directory_id is None or workspace.directory_id == directory_id)
            and (bundle_id is None or workspace.bundle_id == bundle_id)
            and (user_name is None or workspace.user_name.lower() == user_name.lower())
            and (name is None or workspace.workspace_name == name)
        ]
        limit = params.get("Limit", self.page_size)
        query = [ids, directory_id, bundle_id, user_name, name]
        page, token = self._page(selected, params, limit, query)
        result: dict[str, Any] = {"Workspaces": [workspace.to_api() for workspace in page]}
        if token:
            result["NextToken"] = token
        return result

    def _op_RebuildWorkspaces(self, params: dict, account: str, region: str) -> dict:
        failed: list[dict[str, str]] = []
        for request in params["RebuildWorkspaceRequests"]:
            refusal = self._rebuild(request["WorkspaceId"], account, region)
            if refusal is not None:
                failed.append(refusal)
        return {"FailedRequests": failed}

    def _rebuild(self, workspace_id: str, account: str, region: str) -> dict[str, str] | None:
        """Start one rebuild; the FailedRequest entry if the WorkSpace cannot be rebuilt."""
        workspace = self._workspace_bucket(account, region).get(workspace_id)
        if workspace is None:
            return {
                "WorkspaceId": workspace_id,
                "ErrorCode": REBUILD_NOT_FOUND,
                "ErrorMessage": f"The WorkSpace {workspace_id} could not be found.",
            }
        if workspace.state not in REBUILDABLE:
            return {
                "WorkspaceId": workspace_id,
                "ErrorCode": REBUILD_STATE_ERROR,
                "ErrorMessage": (
                    f"The WorkSpace {workspace_id} is {workspace.state}; it can be rebuilt "
                    f"when {', '.join(REBUILDABLE[:-1])} or {REBUILDABLE[-1]}."
                ),
            }
        now = self._clock()
        bundle = self._bundle_bucket(account, region).get(workspace.bundle_id)
        fails = workspace.failing_rebuilds is None or workspace.failing_rebuilds > 0
        if workspace.failing_rebuilds:
            workspace.failing_rebuilds -= 1
        if workspace.connected:
            workspace.last_connected = now  # the rebuild ends the user's session
        workspace.connected = False
        workspace.state = "REBUILDING"
        workspace.rebuilds += 1
        workspace.rebuild_ready_at = now + self.rebuild_seconds
        workspace.rebuild_image_id = bundle.image_id if bundle else None
        workspace.rebuild_fails = fails
        return None

    def _op_DescribeWorkspacesConnectionStatus(
        self, params: dict, account: str, region: str
    ) -> dict:
        ids = params.get("WorkspaceIds")
        now = self._clock()
        selected = [
            workspace
            for workspace in self._workspace_bucket(account, region).values()
            if ids is None or workspace.workspace_id in ids
        ]
        page, token = self._page(selected, params, self.page_size, [ids])
        statuses: list[dict[str, Any]] = []
        for workspace in page:
            status: dict[str, Any] = {
                "WorkspaceId": workspace.workspace_id,
                "ConnectionState": workspace.connection_state(),
                "ConnectionStateCheckTimestamp": now,
            }
            if workspace.last_connected is not None:
                status["LastKnownUserConnectionTimestamp"] = workspace.last_connected
            statuses.append(status)
        result: dict[str, Any] = {"WorkspacesConnectionStatus": statuses}
        if token:
            result["NextToken"] = token
        return result

    def _op_DescribeWorkspaceSnapshots(self, params: dict, account: str, region: str) -> dict:
        workspace_id = params["WorkspaceId"]
        workspace = self._workspace_bucket(account, region).get(workspace_id)
        if workspace is None:
            raise SimulatorError(
                "ResourceNotFoundException", f"The WorkSpace {workspace_id} could not be found."
            )
        snapshots = (
            [] if workspace.snapshot_at is None else [{"SnapshotTime": workspace.snapshot_at}]
        )
        return {"RebuildSnapshots": snapshots, "RestoreSnapshots": list(snapshots)}
