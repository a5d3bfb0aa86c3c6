"""Image permissions and copies in the WorkSpaces simulator, through the real boto3:
DescribeWorkspaceImagePermissions, UpdateWorkspaceImagePermission, what a shared image looks
like to the account it is shared with, and CopyWorkspaceImage."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.exceptions
import pytest

from bot.fakes.workspaces import DEFAULT_ACCOUNT, WorkSpacesSimulator
from tests.fakes.workspaces_kit import FakeClock, error_code

OTHER = "210987654321"


def _client_of(account: str, region: str = "us-east-1") -> Any:
    creds = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/wsimg", RoleSessionName="test"
    )["Credentials"]
    return boto3.client(
        "workspaces",
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _share(ws: Any, image: str, account: str, allow: bool = True) -> None:
    ws.update_workspace_image_permission(
        ImageId=image, AllowCopyImage=allow, SharedAccountId=account
    )


# -- image permissions -----------------------------------------------------------------------


def test_sharing_and_unsharing_are_idempotent(sim: WorkSpacesSimulator, ws: Any) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    assert ws.describe_workspace_image_permissions(ImageId=image)["ImagePermissions"] == []
    _share(ws, image, OTHER)
    _share(ws, image, OTHER)
    answer = ws.describe_workspace_image_permissions(ImageId=image)
    assert answer["ImageId"] == image
    assert answer["ImagePermissions"] == [{"SharedAccountId": OTHER}]
    assert sim.image_permissions(image) == [OTHER]
    _share(ws, image, OTHER, allow=False)
    _share(ws, image, OTHER, allow=False)
    assert ws.describe_workspace_image_permissions(ImageId=image)["ImagePermissions"] == []


def test_permissions_come_in_pages(sim: WorkSpacesSimulator, ws: Any) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    accounts = [f"{100000000000 + i}" for i in range(5)]
    for account in accounts:
        sim.share_image(image, account)
    seen: list[str] = []
    params: dict[str, Any] = {"ImageId": image, "MaxResults": 2}
    pages = 0
    while True:
        answer = ws.describe_workspace_image_permissions(**params)
        pages += 1
        seen.extend(p["SharedAccountId"] for p in answer["ImagePermissions"])
        if "NextToken" not in answer:
            break
        params["NextToken"] = answer["NextToken"]
    assert (seen, pages) == (accounts, 3)


def test_permissions_of_an_unknown_image_are_resource_not_found(ws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspace_image_permissions(ImageId="wsi-000000000")
    assert error_code(caught) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _share(ws, "wsi-000000000", OTHER)
    assert error_code(caught) == "ResourceNotFoundException"


def test_permissions_max_results_is_at_most_25(unchecked_ws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        unchecked_ws.describe_workspace_image_permissions(ImageId="wsi-000000000", MaxResults=100)
    assert error_code(caught) == "ValidationException"


def test_only_an_available_image_can_be_shared(sim: WorkSpacesSimulator, ws: Any) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    pending = ws.create_updated_workspace_image(
        Name="golden-upd", Description="updated", SourceImageId=image
    )["ImageId"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _share(ws, pending, OTHER)
    assert error_code(caught) == "ResourceUnavailableException"


def test_an_image_cannot_be_shared_with_its_own_account(sim: WorkSpacesSimulator, ws: Any) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _share(ws, image, DEFAULT_ACCOUNT)
    assert error_code(caught) == "InvalidParameterValuesException"


def test_a_malformed_account_is_a_validation_error(sim: WorkSpacesSimulator, ws: Any) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        _share(ws, image, "12345")
    assert error_code(caught) == "ValidationException"


def test_a_shared_image_shows_to_the_other_account_as_shared(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    image = sim.add_image(region="us-east-1", name="golden")
    theirs = sim.add_image(region="us-east-1", account_id=OTHER, name="theirs")
    _share(ws, image, OTHER)
    other = _client_of(OTHER)
    shared = other.describe_workspace_images(ImageType="SHARED")["Images"]
    assert [(i["ImageId"], i["OwnerAccountId"]) for i in shared] == [(image, DEFAULT_ACCOUNT)]
    owned = other.describe_workspace_images(ImageType="OWNED")["Images"]
    assert [i["ImageId"] for i in owned] == [theirs]
    assert {i["ImageId"] for i in other.describe_workspace_images()["Images"]} == {image, theirs}
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        other.describe_workspace_image_permissions(ImageId=image)
    assert error_code(caught) == "ResourceNotFoundException"
    assert [i["ImageId"] for i in ws.describe_workspace_images(ImageType="SHARED")["Images"]] == []


# -- CopyWorkspaceImage ----------------------------------------------------------------------


def test_a_copy_is_pending_then_available_in_the_calling_region(
    sim: WorkSpacesSimulator, clock: FakeClock
) -> None:
    source = sim.add_image(region="us-east-1", name="golden", description="Golden image")
    west = boto3.client("workspaces", region_name="eu-west-1")
    new_id = west.copy_workspace_image(
        Name="golden-copy",
        Description="copied",
        SourceImageId=source,
        SourceRegion="us-east-1",
        Tags=[{"Key": "team", "Value": "it"}],
    )["ImageId"]
    assert new_id != source
    [image] = west.describe_workspace_images(ImageIds=[new_id])["Images"]
    assert (image["State"], image["Name"], image["Description"]) == (
        "PENDING",
        "golden-copy",
        "copied",
    )
    assert image["OperatingSystem"] == {"Type": "WINDOWS"}
    clock.now += sim.pending_seconds
    [image] = west.describe_workspace_images(ImageIds=[new_id])["Images"]
    assert image["State"] == "AVAILABLE"
    assert west.describe_tags(ResourceId=new_id)["TagList"] == [{"Key": "team", "Value": "it"}]
    copied, original = sim.get_image(new_id), sim.get_image(source)
    assert copied is not None and copied["Region"] == "eu-west-1"
    assert original is not None and original["State"] == "AVAILABLE"


def test_a_copy_within_the_region_needs_a_new_name(sim: WorkSpacesSimulator, ws: Any) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.copy_workspace_image(Name="golden", SourceImageId=source, SourceRegion="us-east-1")
    assert error_code(caught) == "ResourceAlreadyExistsException"
    assert ws.copy_workspace_image(Name="golden-2", SourceImageId=source, SourceRegion="us-east-1")[
        "ImageId"
    ]


def test_a_copy_counts_against_the_image_quota(
    monkeypatch: pytest.MonkeyPatch, sim: WorkSpacesSimulator, ws: Any
) -> None:
    monkeypatch.setattr(sim, "image_limit", 1)
    source = sim.add_image(region="us-east-1", name="golden")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.copy_workspace_image(Name="copy", SourceImageId=source, SourceRegion="us-east-1")
    assert error_code(caught) == "ResourceLimitExceededException"


def test_a_missing_source_is_resource_not_found(sim: WorkSpacesSimulator, ws: Any) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    for region in ("eu-west-1", "us-east-1"):
        image_id = source if region == "eu-west-1" else "wsi-000000000"
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            ws.copy_workspace_image(Name="copy", SourceImageId=image_id, SourceRegion=region)
        assert error_code(caught) == "ResourceNotFoundException"


def test_a_source_that_is_not_available_is_resource_unavailable(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    source = sim.add_image(region="us-east-1", name="golden", state="ERROR")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.copy_workspace_image(Name="copy", SourceImageId=source, SourceRegion="us-east-1")
    assert error_code(caught) == "ResourceUnavailableException"


def test_another_accounts_image_is_copied_only_once_shared(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    other = _client_of(OTHER)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        other.copy_workspace_image(Name="copy", SourceImageId=source, SourceRegion="us-east-1")
    assert error_code(caught) == "ResourceNotFoundException"
    _share(ws, source, OTHER)
    new_id = other.copy_workspace_image(
        Name="copy", SourceImageId=source, SourceRegion="us-east-1"
    )["ImageId"]
    copied = sim.get_image(new_id)
    assert copied is not None and copied["OwnerAccountId"] == OTHER


def test_copy_requires_name_source_and_region(unchecked_ws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        unchecked_ws.copy_workspace_image(Name="copy", SourceImageId="wsi-000000000")
    assert error_code(caught) == "ValidationException"
    assert "SourceRegion" in caught.value.response["Error"]["Message"]
