"""``seed_rollout``: the bundles, WorkSpaces and share a demo rolls an updated image out to,
as boto3 sees them, and one rollout walked through by hand."""

from __future__ import annotations

from typing import Any

import pytest

from bot.fakes.workspaces import DEFAULT_ACCOUNT, RolloutSeed, WorkSpacesSimulator, seed_rollout
from tests.fakes.workspaces_kit import FakeClock


@pytest.fixture
def fleet(sim: WorkSpacesSimulator) -> RolloutSeed:
    return seed_rollout(sim)


def test_the_seed_has_an_updatable_image_on_two_bundles_and_a_third_bundle(
    fleet: RolloutSeed, ws: Any
) -> None:
    assert (fleet.account_id, fleet.region) == (DEFAULT_ACCOUNT, "us-east-1")
    [image] = ws.describe_workspace_images(ImageIds=[fleet.image_id])["Images"]
    assert image["OperatingSystem"] == {"Type": "WINDOWS"}
    assert image["Updates"]["UpdateAvailable"] is True
    bundles = {b["BundleId"]: b["ImageId"] for b in ws.describe_workspace_bundles()["Bundles"]}
    assert bundles == {
        fleet.bundle_ids[0]: fleet.image_id,
        fleet.bundle_ids[1]: fleet.image_id,
        fleet.other_bundle_id: fleet.other_image_id,
    }


def test_the_seed_has_five_workspaces_one_connected(fleet: RolloutSeed, ws: Any) -> None:
    workspaces = ws.describe_workspaces()["Workspaces"]
    assert [w["WorkspaceId"] for w in workspaces] == list(fleet.workspace_ids)
    assert {w["BundleId"] for w in workspaces} == set(fleet.bundle_ids)
    assert len({w["UserName"] for w in workspaces}) == 5
    statuses = ws.describe_workspaces_connection_status(WorkspaceIds=list(fleet.workspace_ids))
    connected = [
        s["WorkspaceId"]
        for s in statuses["WorkspacesConnectionStatus"]
        if s["ConnectionState"] == "CONNECTED"
    ]
    assert connected == [fleet.connected_workspace_id]


def test_the_seed_shares_the_image_with_one_account(
    sim: WorkSpacesSimulator, fleet: RolloutSeed, ws: Any
) -> None:
    answer = ws.describe_workspace_image_permissions(ImageId=fleet.image_id)
    assert answer["ImagePermissions"] == [{"SharedAccountId": fleet.shared_account_id}]
    assert fleet.shared_account_id != fleet.account_id
    assert sim.image_permissions(fleet.other_image_id) == []


def test_a_rollout_by_hand_over_the_seed(
    sim: WorkSpacesSimulator, fleet: RolloutSeed, ws: Any, clock: FakeClock
) -> None:
    new_id = ws.create_updated_workspace_image(
        Name="Win11-Sales-Golden-2", Description="updated", SourceImageId=fleet.image_id
    )["ImageId"]
    clock.now += sim.pending_seconds
    for bundle_id in fleet.bundle_ids:
        ws.update_workspace_bundle(BundleId=bundle_id, ImageId=new_id)
    idle = [w for w in fleet.workspace_ids if w != fleet.connected_workspace_id]
    for workspace_id in idle:
        answer = ws.rebuild_workspaces(RebuildWorkspaceRequests=[{"WorkspaceId": workspace_id}])
        assert answer["FailedRequests"] == []
    clock.now += sim.rebuild_seconds
    assert {sim.workspace(w)["built_from_image_id"] for w in idle} == {new_id}
    connected = sim.workspace(fleet.connected_workspace_id)
    assert connected["built_from_image_id"] == fleet.image_id
    # The old image is still shared: it stays until the share is lifted.
    ws.update_workspace_image_permission(
        ImageId=fleet.image_id, AllowCopyImage=False, SharedAccountId=fleet.shared_account_id
    )
    ws.delete_workspace_image(ImageId=fleet.image_id)
    assert sim.get_image(fleet.image_id) is None
