"""Bundles in the WorkSpaces simulator, through the real boto3: DescribeWorkspaceBundles,
UpdateWorkspaceBundle, and DeleteWorkspaceImage refusing an image a bundle uses or one that is
still shared."""

from __future__ import annotations

import re
from typing import Any

import boto3
import botocore.exceptions
import pytest

from bot.fakes.workspaces import WorkSpacesSimulator
from tests.fakes.workspaces_kit import FakeClock, error_code

# -- DescribeWorkspaceBundles ---------------------------------------------------------------


def test_a_bundle_is_described_like_the_service_describes_it(
    sim: WorkSpacesSimulator, ws: Any, clock: FakeClock
) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    bundle_id = sim.add_bundle(
        region="us-east-1", name="Sales-Standard", image_id=image, description="Sales desks"
    )
    assert re.fullmatch(r"wsb-[0-9a-z]{9}", bundle_id)
    [bundle] = ws.describe_workspace_bundles()["Bundles"]
    assert bundle["BundleId"] == bundle_id
    assert bundle["Name"] == "Sales-Standard"
    assert bundle["Description"] == "Sales desks"
    assert bundle["ImageId"] == image
    assert "Owner" not in bundle
    assert bundle["ComputeType"] == {"Name": "STANDARD"}
    assert bundle["RootStorage"]["Capacity"] and bundle["UserStorage"]["Capacity"]
    assert (bundle["State"], bundle["BundleType"]) == ("AVAILABLE", "REGULAR")
    assert bundle["CreationTime"].timestamp() == clock.now
    assert bundle["LastUpdatedTime"].timestamp() == clock.now
    assert sim.bundle(bundle_id)["ImageId"] == image


def test_bundles_are_kept_per_account_and_region(sim: WorkSpacesSimulator, ws: Any) -> None:
    east = sim.add_bundle(
        region="us-east-1", name="b", image_id=sim.add_image(region="us-east-1", name="i")
    )
    sim.add_bundle(
        region="eu-west-1", name="b", image_id=sim.add_image(region="eu-west-1", name="i")
    )
    other = "210987654321"
    sim.add_bundle(
        region="us-east-1",
        account_id=other,
        name="b",
        image_id=sim.add_image(region="us-east-1", account_id=other, name="i"),
    )
    assert [b["BundleId"] for b in ws.describe_workspace_bundles()["Bundles"]] == [east]


def test_bundles_by_id_leave_unknown_ids_out(sim: WorkSpacesSimulator, ws: Any) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    first = sim.add_bundle(region="us-east-1", name="one", image_id=image)
    sim.add_bundle(region="us-east-1", name="two", image_id=image)
    answer = ws.describe_workspace_bundles(BundleIds=[first, "wsb-000000000"])
    assert [b["BundleId"] for b in answer["Bundles"]] == [first]


def test_amazon_owned_bundles_are_none_of_the_simulator(sim: WorkSpacesSimulator, ws: Any) -> None:
    sim.add_bundle(
        region="us-east-1", name="b", image_id=sim.add_image(region="us-east-1", name="i")
    )
    assert ws.describe_workspace_bundles(Owner="AMAZON")["Bundles"] == []


def test_bundle_ids_and_owner_cannot_be_combined(sim: WorkSpacesSimulator, ws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspace_bundles(BundleIds=["wsb-000000000"], Owner="AMAZON")
    assert error_code(caught) == "InvalidParameterValuesException"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspace_bundles(Owner="SOMEONE")
    assert error_code(caught) == "InvalidParameterValuesException"


def test_bundles_come_in_pages_of_page_size(sim: WorkSpacesSimulator, ws: Any) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    ids = [sim.add_bundle(region="us-east-1", name=f"b-{i}", image_id=image) for i in range(7)]
    sim.page_size = 3
    first = ws.describe_workspace_bundles()
    assert len(first["Bundles"]) == 3
    pages = list(ws.get_paginator("describe_workspace_bundles").paginate())
    assert [len(page["Bundles"]) for page in pages] == [3, 3, 1]
    assert [b["BundleId"] for page in pages for b in page["Bundles"]] == ids
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspace_bundles(BundleIds=ids[:2], NextToken=first["NextToken"])
    assert error_code(caught) == "InvalidParameterValuesException"


def test_more_than_25_bundle_ids_is_a_validation_error(unchecked_ws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        unchecked_ws.describe_workspace_bundles(BundleIds=[f"wsb-{i:09d}" for i in range(26)])
    assert error_code(caught) == "ValidationException"


def test_add_bundle_refuses_an_image_that_is_not_there(sim: WorkSpacesSimulator) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    with pytest.raises(ValueError, match="no image"):
        sim.add_bundle(region="eu-west-1", name="b", image_id=image)
    with pytest.raises(ValueError, match="Name"):
        sim.add_bundle(region="us-east-1", name="has space", image_id=image)


# -- UpdateWorkspaceBundle ------------------------------------------------------------------


def test_update_points_the_bundle_at_the_image_and_leaves_workspaces_alone(
    sim: WorkSpacesSimulator, ws: Any, clock: FakeClock
) -> None:
    old = sim.add_image(region="us-east-1", name="old")
    new = sim.add_image(region="us-east-1", name="new")
    bundle_id = sim.add_bundle(region="us-east-1", name="b", image_id=old)
    workspace_id = sim.add_workspace(region="us-east-1", bundle_id=bundle_id, user_name="ann")
    clock.now += 300
    ws.update_workspace_bundle(BundleId=bundle_id, ImageId=new)
    [bundle] = ws.describe_workspace_bundles(BundleIds=[bundle_id])["Bundles"]
    assert bundle["ImageId"] == new
    assert bundle["LastUpdatedTime"].timestamp() == clock.now
    assert bundle["CreationTime"].timestamp() == clock.now - 300
    assert sim.workspace(workspace_id)["built_from_image_id"] == old
    assert sim.count("UpdateWorkspaceBundle") == 1


def test_update_of_an_unknown_bundle_is_resource_not_found(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.update_workspace_bundle(BundleId="wsb-000000000", ImageId=image)
    assert error_code(caught) == "ResourceNotFoundException"


def test_update_to_an_image_of_another_region_is_resource_not_found(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    bundle_id = sim.add_bundle(region="us-east-1", name="b", image_id=image)
    elsewhere = sim.add_image(region="eu-west-1", name="golden")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.update_workspace_bundle(BundleId=bundle_id, ImageId=elsewhere)
    assert error_code(caught) == "ResourceNotFoundException"
    assert sim.bundle(bundle_id)["ImageId"] == image


def test_update_to_an_image_that_is_not_available_is_resource_unavailable(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    bundle_id = sim.add_bundle(region="us-east-1", name="b", image_id=image)
    pending = ws.create_updated_workspace_image(
        Name="golden-upd", Description="updated", SourceImageId=image
    )["ImageId"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.update_workspace_bundle(BundleId=bundle_id, ImageId=pending)
    assert error_code(caught) == "ResourceUnavailableException"


def test_update_with_a_malformed_bundle_id_is_a_validation_error(unchecked_ws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        unchecked_ws.update_workspace_bundle(BundleId="bundle-1", ImageId="wsi-000000000")
    assert error_code(caught) == "ValidationException"


# -- DeleteWorkspaceImage --------------------------------------------------------------------


def test_delete_refuses_an_image_a_bundle_uses(sim: WorkSpacesSimulator, ws: Any) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    other = sim.add_image(region="us-east-1", name="other")
    bundle_id = sim.add_bundle(region="us-east-1", name="Sales-Standard", image_id=image)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.delete_workspace_image(ImageId=image)
    assert error_code(caught) == "ResourceAssociatedException"
    assert bundle_id in caught.value.response["Error"]["Message"]
    ws.update_workspace_bundle(BundleId=bundle_id, ImageId=other)
    ws.delete_workspace_image(ImageId=image)
    assert sim.get_image(image) is None


def test_a_bundle_of_another_region_does_not_hold_an_image(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    sim.add_bundle(
        region="eu-west-1", name="b", image_id=sim.add_image(region="eu-west-1", name="golden")
    )
    ws.delete_workspace_image(ImageId=image)
    assert sim.get_image(image) is None


def test_delete_refuses_an_image_still_shared(sim: WorkSpacesSimulator, ws: Any) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    ws.update_workspace_image_permission(
        ImageId=image, AllowCopyImage=True, SharedAccountId="210987654321"
    )
    sim.share_image(image, "111122223333")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.delete_workspace_image(ImageId=image)
    assert error_code(caught) == "ResourceAssociatedException"
    assert "shared with 2 account(s)" in caught.value.response["Error"]["Message"]
    for account in ("210987654321", "111122223333"):
        ws.update_workspace_image_permission(
            ImageId=image, AllowCopyImage=False, SharedAccountId=account
        )
    ws.delete_workspace_image(ImageId=image)
    assert sim.get_image(image) is None


def test_delete_still_refuses_a_pending_image_first(sim: WorkSpacesSimulator, ws: Any) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    pending = ws.create_updated_workspace_image(
        Name="golden-upd", Description="updated", SourceImageId=image
    )["ImageId"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.delete_workspace_image(ImageId=pending)
    assert error_code(caught) == "InvalidResourceStateException"


def test_another_accounts_bundles_are_its_own(sim: WorkSpacesSimulator) -> None:
    other = "210987654321"
    image = sim.add_image(region="us-east-1", account_id=other, name="theirs")
    bundle_id = sim.add_bundle(region="us-east-1", account_id=other, name="b", image_id=image)
    sts = boto3.client("sts", region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{other}:role/wsimg", RoleSessionName="test")[
        "Credentials"
    ]
    theirs = boto3.client(
        "workspaces",
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert [b["BundleId"] for b in theirs.describe_workspace_bundles()["Bundles"]] == [bundle_id]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        theirs.delete_workspace_image(ImageId=image)
    assert error_code(caught) == "ResourceAssociatedException"
