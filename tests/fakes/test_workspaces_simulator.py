"""The WorkSpaces simulator behaves like WorkSpaces toward the real boto3."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest
from botocore.retries.standard import ExponentialBackoff

from bot.fakes.workspaces import (
    CLEARED_ENV,
    DEFAULT_ACCOUNT,
    JSON_CONTENT_TYPE,
    WorkSpacesSimulator,
    main,
    seed_demo_data,
)

SIGNED = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/workspaces/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[WorkSpacesSimulator]:
    with WorkSpacesSimulator(pending_seconds=60, clock=clock, seed=7) as simulator:
        for name in CLEARED_ENV:
            monkeypatch.delenv(name, raising=False)
        for name, value in simulator.environment(region="us-east-1").items():
            monkeypatch.setenv(name, value)
        yield simulator


@pytest.fixture
def unchecked_ws(sim: WorkSpacesSimulator) -> Any:
    """A client that skips botocore's own checks, so only the simulator can refuse a value."""
    config = botocore.config.Config(parameter_validation=False)
    return boto3.client("workspaces", region_name="us-east-1", config=config)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's retry decisions but skip its jittered sleeps (up to seconds each)."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def ws(sim: WorkSpacesSimulator) -> Any:
    return boto3.client("workspaces", region_name="us-east-1")


def error_code(exc_info: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return exc_info.value.response["Error"]["Code"]


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (local simulator URL)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (local simulator URL)
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


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
        ws.describe_workspace_bundles()
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


# -- controls for tests ------------------------------------------------------------------------


def test_calls_record_operation_params_account_and_region(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    ws.describe_workspace_images(ImageType="OWNED", MaxResults=5)
    call = sim.calls[-1]
    assert call.operation == "DescribeWorkspaceImages"
    assert call.params == {"ImageType": "OWNED", "MaxResults": 5}
    assert (call.account, call.region) == (DEFAULT_ACCOUNT, "us-east-1")
    assert sim.count("DescribeWorkspaceImages") == 1


def test_fail_next_injects_any_error_the_given_number_of_times(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    sim.fail_next("DescribeWorkspaceImages", "InternalFailureException", "boom", times=1)
    sim.fail_next("DescribeTags", "InvalidParameterValuesException", "nope", times=2)
    with pytest.raises(botocore.exceptions.ClientError):
        ws.describe_workspace_images()
    for _ in range(2):
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            ws.describe_tags(ResourceId="wsi-000000000")
        assert error_code(caught) == "InvalidParameterValuesException"
    assert ws.describe_workspace_images()["Images"] == []


def test_throttling_is_retried_by_botocore_until_it_passes(
    sim: WorkSpacesSimulator, no_backoff: None
) -> None:
    sim.throttle("DescribeWorkspaceImages", times=2)
    ws = boto3.client(
        "workspaces",
        region_name="us-east-1",
        config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 3}),
    )
    assert ws.describe_workspace_images()["Images"] == []
    assert sim.count("DescribeWorkspaceImages") == 3


def test_deny_answers_access_denied_until_allowed(sim: WorkSpacesSimulator, ws: Any) -> None:
    sim.deny("DescribeWorkspaceImages")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ws.describe_workspace_images()
    assert error_code(caught) == "AccessDeniedException"
    sim.allow("DescribeWorkspaceImages")
    assert ws.describe_workspace_images()["Images"] == []


def test_deny_and_fail_next_can_be_narrowed_to_one_region(sim: WorkSpacesSimulator) -> None:
    east = boto3.client("workspaces", region_name="us-east-1")
    west = boto3.client("workspaces", region_name="eu-west-1")
    sim.deny("DescribeWorkspaceImages", region="eu-west-1")
    sim.fail_next("DescribeTags", "InternalFailureException", "boom", region="us-east-1")
    assert east.describe_workspace_images()["Images"] == []
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        west.describe_workspace_images()
    assert error_code(caught) == "AccessDeniedException"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        west.describe_tags(ResourceId="wsi-000000000")
    assert error_code(caught) == "ResourceNotFoundException"


def test_hold_keeps_requests_waiting_until_released(sim: WorkSpacesSimulator, ws: Any) -> None:
    hold = sim.hold("DescribeWorkspaceImages")
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(ws.describe_workspace_images()))
    worker.start()
    assert hold.wait_until_blocked(1)
    assert results == []
    hold.release()
    worker.join()
    assert results[0]["Images"] == []


def test_stop_releases_held_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    simulator = WorkSpacesSimulator().start()
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in simulator.environment().items():
        monkeypatch.setenv(name, value)
    hold = simulator.hold("DescribeWorkspaceImages")
    client = boto3.client("workspaces", config=botocore.config.Config(retries={"max_attempts": 1}))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.describe_workspace_images()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    assert hold.wait_until_blocked(1)
    simulator.stop()
    worker.join()
    assert hold.released


def test_demo_data_is_the_same_for_the_same_seed() -> None:
    fleets = []
    for _ in range(2):
        simulator = WorkSpacesSimulator(seed=3)
        seed_demo_data(simulator, regions=["us-east-1"], per_region=8, seed=3)
        fleets.append(
            [(i["ImageId"], i["Name"], i["Updates"]) for i in simulator.images(region="us-east-1")]
        )
    assert fleets[0] == fleets[1]
    assert len(fleets[0]) == 8


def test_the_command_line_starts_seeds_and_prints_its_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stop = threading.Event()
    stop.set()  # return as soon as it is up instead of waiting for Ctrl-C
    assert main(["--port", "0", "--images", "2", "--regions", "us-east-1"], stop=stop) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://127.0.0.1:")
