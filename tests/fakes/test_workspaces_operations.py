"""The WorkSpaces simulator's operations behave like WorkSpaces (and STS) toward the real boto3."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest

from bot.fakes.workspaces import DEFAULT_ACCOUNT, WorkSpacesSimulator
from tests.fakes.workspaces_kit import FakeClock, error_code

# -- DescribeWorkspaceImages -----------------------------------------------------------------


def test_describe_pages_by_25_with_an_opaque_next_token(sim: WorkSpacesSimulator, ws: Any) -> None:
    ids = [sim.add_image(region="us-east-1", name=f"img-{i:02d}") for i in range(30)]
    first = ws.describe_workspace_images(ImageType="OWNED")
    assert len(first["Images"]) == 25
    assert first["NextToken"]
    second = ws.describe_workspace_images(ImageType="OWNED", NextToken=first["NextToken"])
    assert "NextToken" not in second
    seen = [image["ImageId"] for image in first["Images"] + second["Images"]]
    assert seen == ids


def test_a_next_token_from_another_query_is_refused(sim: WorkSpacesSimulator, ws: Any) -> None:
    for i in range(3):
        sim.add_image(region="us-east-1", name=f"img-{i}")
    token = ws.describe_workspace_images(MaxResults=1)["NextToken"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspace_images(ImageType="OWNED", NextToken=token)
    assert error_code(caught) == "InvalidParameterValuesException"


def test_unknown_image_ids_are_just_absent(sim: WorkSpacesSimulator, ws: Any) -> None:
    known = sim.add_image(region="us-east-1", name="golden")
    images = ws.describe_workspace_images(ImageIds=[known, "wsi-000000000"])["Images"]
    assert [image["ImageId"] for image in images] == [known]


def test_images_are_kept_per_region_and_account(sim: WorkSpacesSimulator) -> None:
    east = sim.add_image(region="us-east-1", name="east")
    west = sim.add_image(region="eu-west-1", name="west")
    sim.add_image(region="us-east-1", account_id="210987654321", name="elsewhere")
    east_ids = [
        i["ImageId"]
        for i in boto3.client("workspaces", region_name="us-east-1").describe_workspace_images()[
            "Images"
        ]
    ]
    west_ids = [
        i["ImageId"]
        for i in boto3.client("workspaces", region_name="eu-west-1").describe_workspace_images()[
            "Images"
        ]
    ]
    assert east_ids == [east]
    assert west_ids == [west]


def test_an_image_reports_its_platform_and_update(sim: WorkSpacesSimulator, ws: Any) -> None:
    image_id = sim.add_image(
        region="us-east-1", name="win", update_description="KB5034441 is available"
    )
    linux_id = sim.add_image(
        region="us-east-1", name="lin", platform="LINUX", update_available=False
    )
    by_id = {i["ImageId"]: i for i in ws.describe_workspace_images()["Images"]}
    assert by_id[image_id]["OperatingSystem"] == {"Type": "WINDOWS"}
    assert by_id[image_id]["Updates"] == {
        "UpdateAvailable": True,
        "Description": "KB5034441 is available",
    }
    assert by_id[image_id]["OwnerAccountId"] == DEFAULT_ACCOUNT
    assert by_id[linux_id]["OperatingSystem"] == {"Type": "LINUX"}
    assert by_id[linux_id]["Updates"] == {"UpdateAvailable": False}


def test_add_image_refuses_a_name_the_api_would_refuse(sim: WorkSpacesSimulator) -> None:
    with pytest.raises(ValueError, match="Name"):
        sim.add_image(region="us-east-1", name="has space")


def test_rename_stores_even_a_name_the_api_would_refuse(sim: WorkSpacesSimulator, ws: Any) -> None:
    image_id = sim.add_image(region="us-east-1", name="placeholder")
    sim.rename(image_id, "Ébauche, café crème")
    [image] = ws.describe_workspace_images(ImageIds=[image_id])["Images"]
    assert image["Name"] == "Ébauche, café crème"


# -- CreateUpdatedWorkspaceImage -----------------------------------------------------------


def test_an_update_starts_pending_and_becomes_available_when_its_time_comes(
    sim: WorkSpacesSimulator, ws: Any, clock: FakeClock
) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    new_id = ws.create_updated_workspace_image(
        Name="golden-upd",
        Description="updated",
        SourceImageId=source,
        Tags=[{"Key": "wsimg:request-id", "Value": "r1"}],
    )["ImageId"]
    pending = ws.describe_workspace_images(ImageIds=[new_id])["Images"][0]
    assert pending["State"] == "PENDING"
    assert pending["Updates"]["UpdateAvailable"] is False
    clock.now += 61
    done = ws.describe_workspace_images(ImageIds=[new_id])["Images"][0]
    assert done["State"] == "AVAILABLE"
    assert ws.describe_tags(ResourceId=new_id)["TagList"] == [
        {"Key": "wsimg:request-id", "Value": "r1"}
    ]
    source_after = ws.describe_workspace_images(ImageIds=[source])["Images"][0]
    assert source_after["Updates"]["UpdateAvailable"] is True
    assert source_after["State"] == "AVAILABLE"


def test_a_build_configured_to_fail_ends_in_error_with_code_and_message(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    sim.fail_build(source, "UpdateFailed", "Windows Update failed with 0x80070643")
    new_id = ws.create_updated_workspace_image(
        Name="golden-upd", Description="updated", SourceImageId=source
    )["ImageId"]
    sim.complete_pending()
    image = ws.describe_workspace_images(ImageIds=[new_id])["Images"][0]
    assert image["State"] == "ERROR"
    assert image["ErrorCode"] == "UpdateFailed"
    assert image["ErrorMessage"] == "Windows Update failed with 0x80070643"


def create(ws: Any, source: str, name: str = "golden-upd") -> dict[str, Any]:
    return ws.create_updated_workspace_image(Name=name, Description="updated", SourceImageId=source)


def test_updating_a_missing_image_is_resource_not_found(ws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        create(ws, "wsi-000000000")
    assert error_code(caught) == "ResourceNotFoundException"


def test_updating_a_linux_image_is_not_supported(sim: WorkSpacesSimulator, ws: Any) -> None:
    source = sim.add_image(region="us-east-1", name="lin", platform="LINUX")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        create(ws, source)
    assert error_code(caught) == "OperationNotSupportedException"


def test_updating_an_image_without_an_update_is_not_supported(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    source = sim.add_image(region="us-east-1", name="current", update_available=False)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        create(ws, source)
    assert error_code(caught) == "OperationNotSupportedException"


def test_updating_a_pending_image_is_an_invalid_state(sim: WorkSpacesSimulator, ws: Any) -> None:
    source = sim.add_image(region="us-east-1", name="busy", state="PENDING")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        create(ws, source)
    assert error_code(caught) == "InvalidResourceStateException"


def test_a_second_image_with_the_same_name_already_exists(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    create(ws, source)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        create(ws, source)
    assert error_code(caught) == "ResourceAlreadyExistsException"
    assert sim.count("CreateUpdatedWorkspaceImage") == 2
    assert len(sim.images(region="us-east-1")) == 2


def test_the_image_quota_per_region_is_enforced(
    monkeypatch: pytest.MonkeyPatch, sim: WorkSpacesSimulator, ws: Any
) -> None:
    monkeypatch.setattr(sim, "image_limit", 2)
    source = sim.add_image(region="us-east-1", name="golden")
    create(ws, source, "first")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        create(ws, source, "second")
    assert error_code(caught) == "ResourceLimitExceededException"
    other_region = boto3.client("workspaces", region_name="eu-west-1")
    west_source = sim.add_image(region="eu-west-1", name="golden")
    assert create(other_region, west_source)["ImageId"].startswith("wsi-")


def test_the_default_quota_is_forty_images() -> None:
    assert WorkSpacesSimulator().image_limit == 40


def test_tags_need_create_tags_permission(sim: WorkSpacesSimulator, ws: Any) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    sim.deny("CreateTags")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.create_updated_workspace_image(
            Name="n", Description="d", SourceImageId=source, Tags=[{"Key": "k", "Value": "v"}]
        )
    assert error_code(caught) == "AccessDeniedException"
    assert "workspaces:CreateTags" in caught.value.response["Error"]["Message"]
    assert create(ws, source)["ImageId"]


# -- other operations ----------------------------------------------------------------------


def test_delete_refuses_a_pending_image_and_removes_an_available_one(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    new_id = create(ws, source)["ImageId"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.delete_workspace_image(ImageId=new_id)
    assert error_code(caught) == "InvalidResourceStateException"
    sim.complete_pending()
    ws.delete_workspace_image(ImageId=new_id)
    assert sim.get_image(new_id) is None


def test_create_tags_merges_and_describe_tags_reads_them(sim: WorkSpacesSimulator, ws: Any) -> None:
    image_id = sim.add_image(region="us-east-1", name="golden", tags={"team": "it"})
    ws.create_tags(ResourceId=image_id, Tags=[{"Key": "env", "Value": "prod"}])
    tags = ws.describe_tags(ResourceId=image_id)["TagList"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "prod"), ("team", "it")]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_tags(ResourceId="wsi-000000000")
    assert error_code(caught) == "ResourceNotFoundException"


# -- STS -------------------------------------------------------------------------------------


def test_assume_role_credentials_belong_to_the_role_account(sim: WorkSpacesSimulator) -> None:
    sim.add_image(region="us-east-1", account_id="210987654321", name="theirs")
    sts = boto3.client("sts", region_name="us-east-1")
    assert sts.get_caller_identity()["Account"] == DEFAULT_ACCOUNT
    creds = sts.assume_role(
        RoleArn="arn:aws:iam::210987654321:role/wsimg-reader", RoleSessionName="test"
    )["Credentials"]
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert session.client("sts", region_name="us-east-1").get_caller_identity()["Account"] == (
        "210987654321"
    )
    names = [
        i["Name"]
        for i in session.client("workspaces", region_name="us-east-1").describe_workspace_images()[
            "Images"
        ]
    ]
    assert names == ["theirs"]
    assert sim.calls[-1].account == "210987654321"


def test_sts_errors_come_back_as_query_protocol_errors(sim: WorkSpacesSimulator) -> None:
    sts = boto3.client("sts", region_name="us-east-1")
    sim.deny("AssumeRole")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sts.assume_role(RoleArn="arn:aws:iam::210987654321:role/r", RoleSessionName="test")
    assert error_code(caught) == "AccessDenied"
    sim.allow("AssumeRole")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        sts.assume_role(RoleArn="not-an-arn-but-long-enough", RoleSessionName="test")
    assert error_code(caught) == "ValidationError"
