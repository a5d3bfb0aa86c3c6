"""WorkSpaces in the simulator, through the real boto3: DescribeWorkspaces, RebuildWorkspaces
(REBUILDING, then AVAILABLE or ERROR by the fake clock), DescribeWorkspacesConnectionStatus and
DescribeWorkspaceSnapshots, and the controls that set them up."""

from __future__ import annotations

import re
from typing import Any

import boto3
import botocore.exceptions
import pytest

from bot.fakes.workspaces import WorkSpacesSimulator
from tests.fakes.workspaces_kit import FakeClock, error_code

REGION = "us-east-1"


def _bundle(sim: WorkSpacesSimulator, name: str = "b", image: str | None = None) -> str:
    image_id = image or sim.add_image(region=REGION, name=f"img-{name}")
    return sim.add_bundle(region=REGION, name=name, image_id=image_id)


def _workspace(sim: WorkSpacesSimulator, bundle_id: str, user: str = "ann", **kw: Any) -> str:
    return sim.add_workspace(region=REGION, bundle_id=bundle_id, user_name=user, **kw)


def _rebuild(ws: Any, workspace_id: str) -> list[dict[str, Any]]:
    answer = ws.rebuild_workspaces(RebuildWorkspaceRequests=[{"WorkspaceId": workspace_id}])
    return answer.get("FailedRequests", [])


# -- DescribeWorkspaces ----------------------------------------------------------------------


def test_a_workspace_is_described_with_the_models_fields(sim: WorkSpacesSimulator, ws: Any) -> None:
    bundle_id = _bundle(sim)
    workspace_id = _workspace(sim, bundle_id)
    assert re.fullmatch(r"ws-[0-9a-z]{9}", workspace_id)
    [item] = ws.describe_workspaces()["Workspaces"]
    assert item["WorkspaceId"] == workspace_id
    assert re.fullmatch(r"d-[0-9a-f]{10}", item["DirectoryId"])
    assert item["UserName"] == "ann"
    assert item["State"] == "AVAILABLE"
    assert item["BundleId"] == bundle_id
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", item["IpAddress"])
    assert item["ComputerName"]
    assert item["WorkspaceProperties"]["ComputeTypeName"] == "STANDARD"


def test_workspaces_filter_by_ids_bundle_or_directory_and_user(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    first, second = _bundle(sim, "one"), _bundle(sim, "two")
    ann = _workspace(sim, first, "ann")
    bob = _workspace(sim, first, "bob")
    cat = _workspace(sim, second, "cat")
    directory = sim.workspace(ann)["DirectoryId"]

    def ids(**params: Any) -> list[str]:
        return [w["WorkspaceId"] for w in ws.describe_workspaces(**params)["Workspaces"]]

    assert ids() == [ann, bob, cat]
    assert ids(BundleId=first) == [ann, bob]
    assert ids(WorkspaceIds=[cat, "ws-000000000"]) == [cat]
    assert ids(DirectoryId=directory) == [ann, bob, cat]
    assert ids(DirectoryId=directory, UserName="bob") == [bob]


@pytest.mark.parametrize(
    "params",
    [
        {"WorkspaceIds": ["ws-000000000"], "BundleId": "wsb-000000000"},
        {"DirectoryId": "d-0000000000", "BundleId": "wsb-000000000"},
        {"WorkspaceIds": ["ws-000000000"], "DirectoryId": "d-0000000000"},
        {"UserName": "ann"},
        {"BundleId": "wsb-000000000", "UserName": "ann"},
    ],
)
def test_describe_workspaces_takes_one_filter_and_username_only_with_a_directory(
    ws: Any, params: dict[str, Any]
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspaces(**params)
    assert error_code(caught) == "InvalidParameterValuesException"


def test_describe_workspaces_pages_by_limit(sim: WorkSpacesSimulator, ws: Any) -> None:
    bundle_id = _bundle(sim)
    made = [_workspace(sim, bundle_id, f"user{i}") for i in range(5)]
    first = ws.describe_workspaces(Limit=2)
    assert len(first["Workspaces"]) == 2 and first["NextToken"]
    pages = list(
        ws.get_paginator("describe_workspaces").paginate(
            BundleId=bundle_id, PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(page["Workspaces"]) for page in pages] == [2, 2, 1]
    assert [w["WorkspaceId"] for page in pages for w in page["Workspaces"]] == made
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspaces(BundleId=bundle_id, NextToken=first["NextToken"])
    assert error_code(caught) == "InvalidParameterValuesException"


def test_describe_workspaces_limit_and_id_count_come_from_the_model(unchecked_ws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        unchecked_ws.describe_workspaces(Limit=26)
    assert error_code(caught) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        unchecked_ws.describe_workspaces(WorkspaceIds=[f"ws-{i:09d}" for i in range(26)])
    assert error_code(caught) == "ValidationException"


def test_add_workspace_refuses_what_the_service_would_not_have(sim: WorkSpacesSimulator) -> None:
    bundle_id = _bundle(sim)
    with pytest.raises(ValueError, match="no bundle"):
        sim.add_workspace(region="eu-west-1", bundle_id=bundle_id, user_name="ann")
    with pytest.raises(ValueError, match="State"):
        _workspace(sim, bundle_id, state="SLEEPING")


# -- RebuildWorkspaces -----------------------------------------------------------------------


def test_a_rebuild_is_rebuilding_then_available_from_the_bundles_current_image(
    sim: WorkSpacesSimulator, ws: Any, clock: FakeClock
) -> None:
    old = sim.add_image(region=REGION, name="old")
    new = sim.add_image(region=REGION, name="new")
    bundle_id = _bundle(sim, image=old)
    workspace_id = _workspace(sim, bundle_id, connected=True)
    before = sim.workspace(workspace_id)
    ws.update_workspace_bundle(BundleId=bundle_id, ImageId=new)
    assert _rebuild(ws, workspace_id) == []
    [item] = ws.describe_workspaces(WorkspaceIds=[workspace_id])["Workspaces"]
    assert item["State"] == "REBUILDING"
    assert sim.rebuilds(workspace_id) == 1
    clock.now += sim.rebuild_seconds - 0.5
    assert ws.describe_workspaces()["Workspaces"][0]["State"] == "REBUILDING"
    clock.now += 1
    [item] = ws.describe_workspaces(WorkspaceIds=[workspace_id])["Workspaces"]
    assert item["State"] == "AVAILABLE"
    assert item["IpAddress"] != before["IpAddress"]
    after = sim.workspace(workspace_id)
    assert after["built_from_image_id"] == new
    assert after["ConnectionState"] == "DISCONNECTED"


def test_the_image_is_the_bundles_at_the_moment_of_the_rebuild(
    sim: WorkSpacesSimulator, ws: Any, clock: FakeClock
) -> None:
    old = sim.add_image(region=REGION, name="old")
    new = sim.add_image(region=REGION, name="new")
    bundle_id = _bundle(sim, image=old)
    workspace_id = _workspace(sim, bundle_id)
    _rebuild(ws, workspace_id)
    ws.update_workspace_bundle(BundleId=bundle_id, ImageId=new)
    clock.now += sim.rebuild_seconds
    assert sim.workspace(workspace_id)["State"] == "AVAILABLE"
    assert sim.workspace(workspace_id)["built_from_image_id"] == old


def test_a_failing_rebuild_is_accepted_and_ends_in_error(
    sim: WorkSpacesSimulator, ws: Any, clock: FakeClock
) -> None:
    old = sim.add_image(region=REGION, name="old")
    bundle_id = _bundle(sim, image=old)
    workspace_id = _workspace(sim, bundle_id)
    sim.fail_rebuild(workspace_id, times=1)
    assert _rebuild(ws, workspace_id) == []
    assert sim.workspace(workspace_id)["State"] == "REBUILDING"
    clock.now += sim.rebuild_seconds
    assert ws.describe_workspaces()["Workspaces"][0]["State"] == "ERROR"
    assert _rebuild(ws, workspace_id) == []  # ERROR can be rebuilt; this one succeeds
    sim.complete_pending()
    assert sim.workspace(workspace_id)["State"] == "AVAILABLE"
    assert sim.rebuilds(workspace_id) == 2


def test_fail_rebuild_without_times_fails_every_rebuild(sim: WorkSpacesSimulator, ws: Any) -> None:
    workspace_id = _workspace(sim, _bundle(sim))
    sim.fail_rebuild(workspace_id)
    for _ in range(2):
        _rebuild(ws, workspace_id)
        sim.complete_pending()
        assert sim.workspace(workspace_id)["State"] == "ERROR"


@pytest.mark.parametrize("state", ["ERROR", "UNHEALTHY", "STOPPED", "REBOOTING"])
def test_the_states_a_workspace_can_be_rebuilt_in(
    sim: WorkSpacesSimulator, ws: Any, state: str
) -> None:
    workspace_id = _workspace(sim, _bundle(sim), state=state)
    assert _rebuild(ws, workspace_id) == []
    assert sim.workspace(workspace_id)["State"] == "REBUILDING"


@pytest.mark.parametrize("state", ["REBUILDING", "PENDING", "SUSPENDED", "STARTING"])
def test_other_states_refuse_a_rebuild_in_failed_requests(
    sim: WorkSpacesSimulator, ws: Any, state: str
) -> None:
    workspace_id = _workspace(sim, _bundle(sim))
    sim.set_workspace_state(workspace_id, state)
    [failed] = _rebuild(ws, workspace_id)
    assert failed["WorkspaceId"] == workspace_id
    assert failed["ErrorCode"] == "InvalidResourceState.Workspace"
    assert failed["ErrorMessage"] == (
        f"The WorkSpace {workspace_id} is {state}; it can be rebuilt when AVAILABLE, ERROR, "
        "UNHEALTHY, STOPPED or REBOOTING."
    )
    assert sim.rebuilds(workspace_id) == 0


def test_a_second_rebuild_while_rebuilding_is_refused(sim: WorkSpacesSimulator, ws: Any) -> None:
    workspace_id = _workspace(sim, _bundle(sim))
    assert _rebuild(ws, workspace_id) == []
    [failed] = _rebuild(ws, workspace_id)
    assert "is REBUILDING" in failed["ErrorMessage"]
    assert sim.rebuilds(workspace_id) == 1


def test_an_unknown_workspace_is_a_failed_request(sim: WorkSpacesSimulator, ws: Any) -> None:
    [failed] = _rebuild(ws, "ws-000000000")
    assert failed["WorkspaceId"] == "ws-000000000"
    assert failed["ErrorCode"] == "ResourceNotFound.Workspace"
    assert sim.count("RebuildWorkspaces") == 1


def test_rebuild_takes_exactly_one_workspace_per_request(unchecked_ws: Any) -> None:
    for requests in ([], [{"WorkspaceId": "ws-000000000"}, {"WorkspaceId": "ws-000000001"}]):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            unchecked_ws.rebuild_workspaces(RebuildWorkspaceRequests=requests)
        assert error_code(caught) == "ValidationException"


def test_a_workspace_of_another_region_is_not_found(sim: WorkSpacesSimulator) -> None:
    workspace_id = _workspace(sim, _bundle(sim))
    west = boto3.client("workspaces", region_name="eu-west-1")
    [failed] = _rebuild(west, workspace_id)
    assert failed["ErrorCode"] == "ResourceNotFound.Workspace"
    assert west.describe_workspaces(WorkspaceIds=[workspace_id])["Workspaces"] == []


# -- DescribeWorkspacesConnectionStatus ------------------------------------------------------


def test_connection_status_reports_state_and_times(
    sim: WorkSpacesSimulator, ws: Any, clock: FakeClock
) -> None:
    bundle_id = _bundle(sim)
    away = _workspace(sim, bundle_id, "ann")
    here = _workspace(sim, bundle_id, "bob", connected=True)
    seen = _workspace(sim, bundle_id, "cat", last_connected=clock.now - 3600)
    answer = ws.describe_workspaces_connection_status(WorkspaceIds=[away, here, seen])
    by_id = {s["WorkspaceId"]: s for s in answer["WorkspacesConnectionStatus"]}
    assert by_id[away]["ConnectionState"] == "DISCONNECTED"
    assert by_id[away]["LastKnownUserConnectionTimestamp"].timestamp() == clock.now - 24 * 3600
    assert by_id[here]["ConnectionState"] == "CONNECTED"
    assert by_id[here]["LastKnownUserConnectionTimestamp"].timestamp() == clock.now
    assert by_id[seen]["LastKnownUserConnectionTimestamp"].timestamp() == clock.now - 3600
    assert all(s["ConnectionStateCheckTimestamp"].timestamp() == clock.now for s in by_id.values())


def test_set_connected_moves_the_last_known_connection(
    sim: WorkSpacesSimulator, ws: Any, clock: FakeClock
) -> None:
    workspace_id = _workspace(sim, _bundle(sim))
    sim.set_connected(workspace_id, True)
    clock.now += 600
    sim.set_connected(workspace_id, False)
    [status] = ws.describe_workspaces_connection_status(WorkspaceIds=[workspace_id])[
        "WorkspacesConnectionStatus"
    ]
    assert status["ConnectionState"] == "DISCONNECTED"
    assert status["LastKnownUserConnectionTimestamp"].timestamp() == clock.now
    sim.set_connected(workspace_id, True, at=clock.now - 60)
    assert sim.workspace(workspace_id)["ConnectionState"] == "CONNECTED"
    assert sim.workspace(workspace_id)["last_connected"] == clock.now - 60


def test_a_stopped_or_rebuilding_workspace_has_an_unknown_connection(
    sim: WorkSpacesSimulator, ws: Any, clock: FakeClock
) -> None:
    bundle_id = _bundle(sim)
    stopped = _workspace(sim, bundle_id, "ann", state="STOPPED")
    connected = _workspace(sim, bundle_id, "bob", connected=True)
    clock.now += 60
    _rebuild(ws, connected)
    answer = ws.describe_workspaces_connection_status()["WorkspacesConnectionStatus"]
    by_id = {s["WorkspaceId"]: s for s in answer}
    assert by_id[stopped]["ConnectionState"] == "UNKNOWN"
    assert by_id[connected]["ConnectionState"] == "UNKNOWN"
    # The rebuild ended bob's session just now.
    assert by_id[connected]["LastKnownUserConnectionTimestamp"].timestamp() == clock.now


def test_connection_status_pages_through_every_workspace(sim: WorkSpacesSimulator, ws: Any) -> None:
    bundle_id = _bundle(sim)
    made = [_workspace(sim, bundle_id, f"user{i}") for i in range(5)]
    sim.page_size = 2
    pages = list(ws.get_paginator("describe_workspaces_connection_status").paginate())
    assert [len(page["WorkspacesConnectionStatus"]) for page in pages] == [2, 2, 1]
    got = [s["WorkspaceId"] for page in pages for s in page["WorkspacesConnectionStatus"]]
    assert got == made
    pages = list(
        ws.get_paginator("describe_workspaces_connection_status").paginate(WorkspaceIds=made[:3])
    )
    assert [len(page["WorkspacesConnectionStatus"]) for page in pages] == [2, 1]


def test_connection_status_takes_at_most_25_ids(unchecked_ws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        unchecked_ws.describe_workspaces_connection_status(
            WorkspaceIds=[f"ws-{i:09d}" for i in range(26)]
        )
    assert error_code(caught) == "ValidationException"


# -- DescribeWorkspaceSnapshots --------------------------------------------------------------


def test_snapshots_give_the_latest_snapshot_time(
    sim: WorkSpacesSimulator, ws: Any, clock: FakeClock
) -> None:
    bundle_id = _bundle(sim)
    default = _workspace(sim, bundle_id, "ann")
    chosen = _workspace(sim, bundle_id, "bob", snapshot_at=clock.now - 600)
    answer = ws.describe_workspace_snapshots(WorkspaceId=default)
    assert [s["SnapshotTime"].timestamp() for s in answer["RebuildSnapshots"]] == [
        clock.now - 6 * 3600
    ]
    assert answer["RestoreSnapshots"] == answer["RebuildSnapshots"]
    answer = ws.describe_workspace_snapshots(WorkspaceId=chosen)
    assert answer["RebuildSnapshots"][0]["SnapshotTime"].timestamp() == clock.now - 600
    sim.set_snapshot(chosen, None)
    assert ws.describe_workspace_snapshots(WorkspaceId=chosen)["RebuildSnapshots"] == []


def test_snapshots_of_an_unknown_workspace_are_resource_not_found(ws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspace_snapshots(WorkspaceId="ws-000000000")
    assert error_code(caught) == "ResourceNotFoundException"


def test_new_operations_are_counted_and_can_be_failed(sim: WorkSpacesSimulator, ws: Any) -> None:
    workspace_id = _workspace(sim, _bundle(sim))
    sim.fail_next("DescribeWorkspaces", "ResourceUnavailableException", times=1)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspaces()
    assert error_code(caught) == "ResourceUnavailableException"
    assert len(ws.describe_workspaces()["Workspaces"]) == 1
    ws.describe_workspace_snapshots(WorkspaceId=workspace_id)
    ws.describe_workspaces_connection_status(WorkspaceIds=[workspace_id])
    assert sim.count("DescribeWorkspaces") == 2
    assert sim.count("DescribeWorkspaceSnapshots") == 1
    assert sim.count("DescribeWorkspacesConnectionStatus") == 1
