"""The WorkSpaces simulator speaks the wire protocols botocore sends and checks each request
against botocore's model, as the service does."""

from __future__ import annotations

import json
from typing import Any

import botocore.config
import botocore.exceptions
import pytest

from bot.fakes.workspaces import JSON_CONTENT_TYPE, WorkSpacesSimulator
from tests.fakes.workspaces_kit import SIGNED, error_code, post

# -- protocol --------------------------------------------------------------------------------


def test_boto3_speaks_json_1_1_to_workspaces_and_the_simulator_answers_it(ws: Any) -> None:
    # The model lists ["smithy-rpc-v2-cbor", "json"]; botocore must pick json, which is the only
    # protocol the simulator accepts, so a successful call proves what boto3 sent.
    assert ws.meta.service_model.resolved_protocol == "json"
    assert ws.describe_workspace_images()["Images"] == []


def test_a_cbor_request_gets_a_clear_400(sim: WorkSpacesSimulator) -> None:
    status, body = post(
        f"{sim.url}/service/WorkspacesService/operation/DescribeWorkspaceImages",
        b"\xa0",
        {
            "Authorization": SIGNED,
            "Content-Type": "application/cbor",
            "Smithy-Protocol": "rpc-v2-cbor",
        },
    )
    assert status == 400
    answer = json.loads(body)
    assert answer["__type"] == "UnsupportedProtocolException"
    assert "JSON 1.1" in answer["message"]


def test_a_request_without_authorization_is_refused_with_403(sim: WorkSpacesSimulator) -> None:
    status, body = post(
        sim.url,
        b"{}",
        {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": "WorkspacesService.DescribeTags"},
    )
    assert status == 403
    assert json.loads(body)["__type"] == "MissingAuthenticationToken"


def test_an_operation_the_simulator_does_not_implement_gets_a_400_saying_so(ws: Any) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspace_directories()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "not implemented by the simulator" in str(caught.value)


def test_an_operation_unknown_to_workspaces_is_rejected(sim: WorkSpacesSimulator) -> None:
    status, body = post(
        sim.url,
        b"{}",
        {
            "Authorization": SIGNED,
            "Content-Type": JSON_CONTENT_TYPE,
            "X-Amz-Target": "WorkspacesService.MakeCoffee",
        },
    )
    assert status == 400
    assert json.loads(body)["__type"] == "UnknownOperationException"


# -- validation against the botocore model -------------------------------------------------


def test_an_image_name_with_a_space_is_rejected_naming_the_member(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.create_updated_workspace_image(
            Name="golden updated", Description="fine", SourceImageId=source
        )
    assert error_code(caught) == "ValidationException"
    message = caught.value.response["Error"]["Message"]
    assert "'Name'" in message
    assert "regular expression" in message
    assert sim.images(region="us-east-1") == [sim.get_image(source)]


@pytest.mark.parametrize(
    ("params", "member", "constraint"),
    [
        ({"Name": "x" * 65, "Description": "d"}, "'Name'", "length less than or equal to 64"),
        ({"Name": "ok", "Description": "a, b"}, "'Description'", "regular expression"),
        ({"Name": "ok", "Description": "d" * 257}, "'Description'", "less than or equal to 256"),
        (
            {"Name": "ok", "Description": "d", "Tags": [{"Key": "", "Value": "v"}]},
            "'Tags[0].Key'",
            "greater than or equal to 1",
        ),
        (
            {"Name": "ok", "Description": "d", "Tags": [{"Key": "k", "Value": "v" * 256}]},
            "'Tags[0].Value'",
            "less than or equal to 255",
        ),
    ],
)
def test_values_outside_the_model_are_rejected(
    sim: WorkSpacesSimulator,
    unchecked_ws: Any,
    params: dict[str, Any],
    member: str,
    constraint: str,
) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        unchecked_ws.create_updated_workspace_image(SourceImageId=source, **params)
    assert error_code(caught) == "ValidationException"
    assert member in caught.value.response["Error"]["Message"]
    assert constraint in caught.value.response["Error"]["Message"]


def test_max_results_above_25_and_a_bad_image_id_are_rejected(unchecked_ws: Any) -> None:
    ws = unchecked_ws
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspace_images(MaxResults=26)
    assert "'MaxResults'" in caught.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspace_images(ImageIds=["ami-123"])
    assert "'ImageIds[0]'" in caught.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspace_images(ImageIds=[f"wsi-{i:09d}" for i in range(26)])
    assert "'ImageIds'" in caught.value.response["Error"]["Message"]


def test_missing_required_members_and_bad_enums_are_rejected(sim: WorkSpacesSimulator) -> None:
    def send(target: str, params: dict[str, Any]) -> dict[str, Any]:
        status, body = post(
            sim.url,
            json.dumps(params).encode(),
            {
                "Authorization": SIGNED,
                "Content-Type": JSON_CONTENT_TYPE,
                "X-Amz-Target": f"WorkspacesService.{target}",
            },
        )
        assert status == 400
        return json.loads(body)

    missing = send("CreateUpdatedWorkspaceImage", {"Name": "x", "Description": "y"})
    assert missing["__type"] == "ValidationException"
    assert "'SourceImageId'" in missing["message"]
    assert "must not be null" in missing["message"]
    enum = send("DescribeWorkspaceImages", {"ImageType": "MINE"})
    assert "enum value set: [OWNED, SHARED]" in enum["message"]
    wrong_type = send("DescribeWorkspaceImages", {"MaxResults": "5"})
    assert "must be an integer" in wrong_type["message"]
    unknown = send("DescribeWorkspaceImages", {"Owner": "me"})
    assert "'Owner'" in unknown["message"]
