"""The WorkSpaces gateway, driven through the real boto3 against the WorkSpaces simulator."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.retries.standard import ExponentialBackoff

from bot.aws.errors import aws_error_from_botocore_error, aws_error_from_client_error
from bot.aws.gateway import Image, Listing, Target, WorkSpacesGateway
from bot.domain.naming import updated_image_description, updated_image_name
from bot.errors import AwsError, ConfigError, WsimgError
from bot.fakes.workspaces import CLEARED_ENV, DEFAULT_ACCOUNT, WorkSpacesSimulator

OTHER_ACCOUNT = "210987654321"
ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/wsimg-reader"
EAST, WEST = "us-east-1", "eu-west-1"
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKESECRET"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def point_boto3_at(monkeypatch: pytest.MonkeyPatch, sim: WorkSpacesSimulator) -> None:
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in sim.environment(region=EAST).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[WorkSpacesSimulator]:
    with WorkSpacesSimulator(pending_seconds=60, clock=clock, seed=11) as simulator:
        point_boto3_at(monkeypatch, simulator)
        yield simulator


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's retry decisions but skip its jittered sleeps (up to seconds each)."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def make_gateway(sim: WorkSpacesSimulator) -> Callable[..., WorkSpacesGateway]:
    def make(**kwargs: Any) -> WorkSpacesGateway:
        kwargs.setdefault("regions", [EAST, WEST])
        return WorkSpacesGateway(**kwargs)

    return make


@pytest.fixture
def gateway(make_gateway: Callable[..., WorkSpacesGateway]) -> WorkSpacesGateway:
    return make_gateway()


def describe_calls(sim: WorkSpacesSimulator) -> list[dict[str, Any]]:
    return [c.params for c in sim.calls if c.operation == "DescribeWorkspaceImages"]


# -- targets ---------------------------------------------------------------------------------


def test_targets_are_the_base_account_then_each_role_account_in_every_region(
    sim: WorkSpacesSimulator, make_gateway: Callable[..., WorkSpacesGateway]
) -> None:
    gateway = make_gateway(role_arns=[ROLE])
    expected = [
        Target(DEFAULT_ACCOUNT, EAST),
        Target(DEFAULT_ACCOUNT, WEST),
        Target(OTHER_ACCOUNT, EAST, ROLE),
        Target(OTHER_ACCOUNT, WEST, ROLE),
    ]
    assert gateway.targets() == expected
    assert gateway.targets() == expected
    assert sim.count("GetCallerIdentity") == 1
    assert sim.count("AssumeRole") == 0


def test_a_role_arn_that_is_not_one_is_a_config_error(sim: WorkSpacesSimulator) -> None:
    with pytest.raises(ConfigError, match="WSIMG_ROLE_ARNS"):
        WorkSpacesGateway(regions=[EAST], role_arns=["arn:aws:iam::123:user/bob"])


def test_no_region_is_a_config_error(sim: WorkSpacesSimulator) -> None:
    with pytest.raises(ConfigError, match="WSIMG_REGIONS"):
        WorkSpacesGateway(regions=[])


# -- listing ---------------------------------------------------------------------------------


def test_listing_follows_next_token_past_25_images_in_two_regions(
    sim: WorkSpacesSimulator, gateway: WorkSpacesGateway
) -> None:
    for i in range(30):
        sim.add_image(region=EAST, name=f"east-{i:02d}")
    for i in range(27):
        sim.add_image(region=WEST, name=f"west-{i:02d}")
    listing = gateway.list_images()
    assert isinstance(listing, Listing)
    assert listing.failures == []
    assert [i.name for i in listing.images if i.region == EAST] == [
        f"east-{i:02d}" for i in range(30)
    ]
    assert [i.name for i in listing.images if i.region == WEST] == [
        f"west-{i:02d}" for i in range(27)
    ]
    calls = describe_calls(sim)
    assert len(calls) == 4
    assert all(c["ImageType"] == "OWNED" and c["MaxResults"] == 25 for c in calls)
    assert sum("NextToken" in c for c in calls) == 2


def test_listing_is_sorted_by_account_region_and_name(
    sim: WorkSpacesSimulator, make_gateway: Callable[..., WorkSpacesGateway]
) -> None:
    sim.add_image(region=WEST, name="b")
    sim.add_image(region=EAST, name="z")
    sim.add_image(region=EAST, name="a")
    sim.add_image(region=EAST, account_id=OTHER_ACCOUNT, name="c")
    images = make_gateway(role_arns=[ROLE]).list_images().images
    assert [(i.account_id, i.region, i.name) for i in images] == [
        (DEFAULT_ACCOUNT, WEST, "b"),
        (DEFAULT_ACCOUNT, EAST, "a"),
        (DEFAULT_ACCOUNT, EAST, "z"),
        (OTHER_ACCOUNT, EAST, "c"),
    ]


def test_all_targets_are_listed_at_the_same_time(
    sim: WorkSpacesSimulator, gateway: WorkSpacesGateway
) -> None:
    sim.add_image(region=EAST, name="east")
    sim.add_image(region=WEST, name="west")
    gateway.targets()  # identity first, so only the listing calls meet the gate
    hold = sim.hold("DescribeWorkspaceImages")
    result: list[Listing] = []
    worker = threading.Thread(target=lambda: result.append(gateway.list_images()))
    worker.start()
    try:
        # Both regions' requests wait at the gate together: they were sent in parallel.
        assert hold.wait_until_blocked(2)
    finally:
        hold.release()
        worker.join()
    assert sorted(i.name for i in result[0].images) == ["east", "west"]


def test_listing_one_region_asks_only_that_region(
    sim: WorkSpacesSimulator, gateway: WorkSpacesGateway
) -> None:
    sim.add_image(region=EAST, name="east")
    sim.add_image(region=WEST, name="west")
    listing = gateway.list_images(region=WEST)
    assert [i.name for i in listing.images] == ["west"]
    assert {c.region for c in sim.calls if c.operation == "DescribeWorkspaceImages"} == {WEST}


def test_listing_a_region_wsimg_does_not_watch_is_a_config_error(
    gateway: WorkSpacesGateway,
) -> None:
    with pytest.raises(ConfigError, match="ap-south-1"):
        gateway.list_images(region="ap-south-1")


def test_a_failing_region_is_reported_and_the_others_are_still_listed(
    sim: WorkSpacesSimulator, make_gateway: Callable[..., WorkSpacesGateway]
) -> None:
    sim.add_image(region=EAST, name="east")
    sim.add_image(region=WEST, name="west")
    sim.throttle("DescribeWorkspaceImages", times=3, region=WEST)
    listing = make_gateway(max_attempts=3).list_images()
    assert [i.name for i in listing.images] == ["east"]
    [failure] = listing.failures
    assert failure.target == Target(DEFAULT_ACCOUNT, WEST)
    assert failure.error.code == "Throttling"
    assert "AWS is throttling" in failure.error.user_message


def test_assumed_role_targets_list_the_second_accounts_images(
    sim: WorkSpacesSimulator, make_gateway: Callable[..., WorkSpacesGateway]
) -> None:
    sim.add_image(region=EAST, name="ours")
    sim.add_image(region=WEST, account_id=OTHER_ACCOUNT, name="theirs")
    listing = make_gateway(role_arns=[ROLE]).list_images()
    assert listing.failures == []
    assert [(i.account_id, i.region, i.name) for i in listing.images] == [
        (DEFAULT_ACCOUNT, EAST, "ours"),
        (OTHER_ACCOUNT, WEST, "theirs"),
    ]
    role_calls = [c for c in sim.calls if c.account == OTHER_ACCOUNT]
    assert {c.region for c in role_calls} == {EAST, WEST}
    assert sim.count("AssumeRole") >= 1


def test_a_role_that_cannot_be_assumed_fails_only_its_targets(
    sim: WorkSpacesSimulator, make_gateway: Callable[..., WorkSpacesGateway]
) -> None:
    sim.add_image(region=EAST, name="ours")
    sim.deny("AssumeRole")
    listing = make_gateway(role_arns=[ROLE]).list_images()
    assert [i.name for i in listing.images] == ["ours"]
    assert sorted(f.target.region for f in listing.failures) == sorted([EAST, WEST])
    for failure in listing.failures:
        assert failure.target.role_arn == ROLE
        assert failure.error.code == "AccessDenied"
        assert "sts:AssumeRole" in failure.error.user_message


def test_assumed_role_credentials_are_renewed_before_they_expire(
    monkeypatch: pytest.MonkeyPatch, sim: WorkSpacesSimulator
) -> None:
    # Credentials that live 5 minutes are inside botocore's 10-minute "must refresh" window,
    # so every use renews them: proof that renewal happens without waiting for an hour.
    monkeypatch.setattr(sim, "credential_seconds", 300)
    sim.add_image(region=EAST, account_id=OTHER_ACCOUNT, name="theirs")
    gateway = WorkSpacesGateway(regions=[EAST], role_arns=[ROLE])
    assert [i.name for i in gateway.list_images().images] == ["theirs"]
    first = sim.count("AssumeRole")
    assert [i.name for i in gateway.list_images().images] == ["theirs"]
    assert sim.count("AssumeRole") > first


def test_endpoint_variables_per_service_are_honoured(
    monkeypatch: pytest.MonkeyPatch, sim: WorkSpacesSimulator
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_ENDPOINT_URL_WORKSPACES", sim.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sim.url)
    sim.add_image(region=EAST, name="found")
    listing = WorkSpacesGateway(regions=[EAST]).list_images()
    assert [i.name for i in listing.images] == ["found"]


# -- describe / find -------------------------------------------------------------------------


def test_describe_images_asks_for_at_most_25_ids_per_call(
    sim: WorkSpacesSimulator, gateway: WorkSpacesGateway
) -> None:
    ids = [sim.add_image(region=EAST, name=f"img-{i:02d}") for i in range(60)]
    wanted = [*ids, "wsi-000000000", ids[0]]
    images = gateway.describe_images(account_id=DEFAULT_ACCOUNT, region=EAST, image_ids=wanted)
    assert [i.image_id for i in images] == ids
    assert [len(c["ImageIds"]) for c in describe_calls(sim)] == [25, 25, 11]


def test_describe_no_ids_makes_no_call(
    sim: WorkSpacesSimulator, gateway: WorkSpacesGateway
) -> None:
    assert gateway.describe_images(account_id=DEFAULT_ACCOUNT, region=EAST, image_ids=[]) == []
    assert describe_calls(sim) == []


def test_describe_an_account_wsimg_cannot_reach_is_a_config_error(
    gateway: WorkSpacesGateway,
) -> None:
    with pytest.raises(ConfigError, match="999999999999"):
        gateway.describe_images(account_id="999999999999", region=EAST, image_ids=["wsi-0"])


def test_find_owned_image_by_name_looks_past_the_first_page(
    sim: WorkSpacesSimulator, gateway: WorkSpacesGateway
) -> None:
    for i in range(30):
        sim.add_image(region=EAST, name=f"img-{i:02d}")
    found = gateway.find_owned_image_by_name(account_id=DEFAULT_ACCOUNT, region=EAST, name="img-28")
    assert found is not None
    assert found.name == "img-28"
    missing = gateway.find_owned_image_by_name(
        account_id=DEFAULT_ACCOUNT, region=EAST, name="img-99"
    )
    assert missing is None


# -- create ----------------------------------------------------------------------------------


def create(gateway: WorkSpacesGateway, source: str, name: str = "golden-upd-1") -> str:
    return gateway.create_updated_image(
        account_id=DEFAULT_ACCOUNT,
        region=EAST,
        source_image_id=source,
        name=name,
        description="Updated by wsimg",
        tags={"wsimg:request-id": "abc"},
    )


def test_an_update_is_created_with_name_description_and_tags(
    sim: WorkSpacesSimulator, gateway: WorkSpacesGateway
) -> None:
    source_name = "Windows-11-Enterprise-Finance-Department-Golden-Image-2024-Q4"
    source = sim.add_image(region=EAST, name=source_name)
    name = updated_image_name(source_name, "3f2a9c1d-77aa", date(2025, 3, 4))
    description = updated_image_description(source_name, source, "3f2a9c1d-77aa")
    new_id = gateway.create_updated_image(
        account_id=DEFAULT_ACCOUNT,
        region=EAST,
        source_image_id=source,
        name=name,
        description=description,
        tags={"wsimg:request-id": "3f2a9c1d-77aa"},
    )
    stored = sim.get_image(new_id)
    assert stored is not None
    assert stored["Name"] == "Windows-11-Enterprise-Finance-Department-upd-20250304-3f2a9c1d"
    assert stored["Description"] == description
    assert stored["Tags"] == {"wsimg:request-id": "3f2a9c1d-77aa"}


def test_an_update_goes_from_pending_to_available(
    sim: WorkSpacesSimulator, gateway: WorkSpacesGateway, clock: FakeClock
) -> None:
    new_id = create(gateway, sim.add_image(region=EAST, name="golden"))
    [pending] = gateway.describe_images(account_id=DEFAULT_ACCOUNT, region=EAST, image_ids=[new_id])
    assert (pending.state, pending.update_available) == ("PENDING", False)
    clock.now += 61
    [done] = gateway.describe_images(account_id=DEFAULT_ACCOUNT, region=EAST, image_ids=[new_id])
    assert done.state == "AVAILABLE"
    assert done.created is not None
    assert done.created.utcoffset() is not None


def test_an_update_can_end_in_error_with_its_code_and_message(
    sim: WorkSpacesSimulator, gateway: WorkSpacesGateway
) -> None:
    source = sim.add_image(region=EAST, name="golden")
    sim.fail_build(source, "UpdateFailed", "Windows Update failed with 0x80070643")
    new_id = create(gateway, source)
    sim.complete_pending()
    [image] = gateway.describe_images(account_id=DEFAULT_ACCOUNT, region=EAST, image_ids=[new_id])
    assert image.state == "ERROR"
    assert image.error_code == "UpdateFailed"
    assert image.error_message == "Windows Update failed with 0x80070643"


def _limit(sim: WorkSpacesSimulator, source: str) -> None:
    sim.image_limit = 1


def _exists(sim: WorkSpacesSimulator, source: str) -> None:
    sim.add_image(region=EAST, name="golden-upd-1")


def _deleted(sim: WorkSpacesSimulator, source: str) -> None:
    sim.remove_image(source)


def _deny(sim: WorkSpacesSimulator, source: str) -> None:
    sim.deny("CreateUpdatedWorkspaceImage")


def _bad_parameter(sim: WorkSpacesSimulator, source: str) -> None:
    sim.fail_next(
        "CreateUpdatedWorkspaceImage", "InvalidParameterValuesException", "The tag key is reserved"
    )


def case(
    arrange: Callable[[WorkSpacesSimulator, str], None] | None,
    code: str,
    phrases: list[str],
    *,
    platform: str = "WINDOWS",
    state: str = "AVAILABLE",
) -> Any:
    return pytest.param(arrange, platform, state, code, phrases, id=code)


@pytest.mark.parametrize(
    ("arrange", "platform", "state", "code", "phrases"),
    [
        case(_limit, "ResourceLimitExceeded", ["40 images per region", "quota increase"]),
        case(_exists, "ResourceAlreadyExists", ["already exists"]),
        case(_deleted, "ResourceNotFound", ["no longer exists", "/wsimg updates"]),
        case(None, "OperationNotSupported", ["Linux images", "by hand"], platform="LINUX"),
        case(None, "InvalidResourceState", ["AVAILABLE", "later"], state="PENDING"),
        case(
            _deny,
            "AccessDenied",
            ["workspaces:CreateUpdatedWorkspaceImage", "workspaces:CreateTags"],
        ),
        case(_bad_parameter, "InvalidParameterValues", ["The tag key is reserved"]),
    ],
)
def test_every_documented_create_error_reaches_the_user_as_a_sentence(
    sim: WorkSpacesSimulator,
    gateway: WorkSpacesGateway,
    arrange: Callable[[WorkSpacesSimulator, str], None] | None,
    platform: str,
    state: str,
    code: str,
    phrases: list[str],
) -> None:
    source = sim.add_image(region=EAST, name="golden", platform=platform, state=state)
    if arrange is not None:
        arrange(sim, source)
    with pytest.raises(AwsError) as caught:
        create(gateway, source)
    error = caught.value
    assert (error.code, error.action, error.region) == (code, "CreateUpdatedWorkspaceImage", EAST)
    assert isinstance(error, WsimgError)
    assert str(error) == error.user_message
    for phrase in phrases:
        assert phrase in error.user_message
    assert error.aws_message in error.user_message


# -- throttling and retries ------------------------------------------------------------------


def test_two_throttles_then_success_is_a_success_after_three_calls(
    sim: WorkSpacesSimulator, gateway: WorkSpacesGateway
) -> None:
    image_id = sim.add_image(region=EAST, name="golden")
    sim.throttle("DescribeWorkspaceImages", times=2)
    images = gateway.describe_images(account_id=DEFAULT_ACCOUNT, region=EAST, image_ids=[image_id])
    assert [i.image_id for i in images] == [image_id]
    assert sim.count("DescribeWorkspaceImages") == 3


def test_throttling_past_the_last_attempt_becomes_a_throttling_sentence(
    sim: WorkSpacesSimulator, make_gateway: Callable[..., WorkSpacesGateway]
) -> None:
    image_id = sim.add_image(region=EAST, name="golden")
    sim.throttle("DescribeWorkspaceImages", times=10)
    gateway = make_gateway(max_attempts=4)
    with pytest.raises(AwsError) as caught:
        gateway.describe_images(account_id=DEFAULT_ACCOUNT, region=EAST, image_ids=[image_id])
    assert caught.value.code == "Throttling"
    assert caught.value.throttled
    assert "AWS is throttling" in caught.value.user_message
    assert "try again in a few minutes" in caught.value.user_message.lower()
    assert sim.count("DescribeWorkspaceImages") == 4


@pytest.mark.parametrize(
    "code",
    ["Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"],
)
def test_every_throttling_code_maps_to_the_throttling_sentence(code: str) -> None:
    exc = ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, "DescribeTags")
    error = aws_error_from_client_error(exc, action="DescribeWorkspaceImages", region=WEST)
    assert error.throttled
    assert error.user_message.startswith(f"AWS is throttling WorkSpaces requests in {WEST}")
    assert "retried" in error.user_message


def test_an_unknown_code_keeps_its_code_and_message(
    sim: WorkSpacesSimulator, gateway: WorkSpacesGateway
) -> None:
    source = sim.add_image(region=EAST, name="golden")
    sim.fail_next("CreateUpdatedWorkspaceImage", "BrandNewException", "Something new happened")
    with pytest.raises(AwsError) as caught:
        create(gateway, source)
    assert caught.value.code == "BrandNew"
    assert "BrandNew" in caught.value.user_message
    assert "Something new happened" in caught.value.user_message


# -- failures before AWS answers -------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_endpoint_says_aws_could_not_be_reached(
    monkeypatch: pytest.MonkeyPatch, sim: WorkSpacesSimulator
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    gateway = WorkSpacesGateway(regions=[WEST], max_attempts=2)
    with pytest.raises(AwsError) as caught:
        gateway.list_images()
    assert caught.value.code == "EndpointConnectionError"
    assert caught.value.user_message.startswith(f"wsimg could not reach AWS in {WEST}")


def test_missing_credentials_say_so(
    monkeypatch: pytest.MonkeyPatch, sim: WorkSpacesSimulator
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(AwsError) as caught:
        WorkSpacesGateway(regions=[EAST]).targets()
    assert caught.value.code == "NoCredentialsError"
    assert "No AWS credentials are configured" in caught.value.user_message


def test_error_sentences_never_carry_secrets() -> None:
    leaky = [
        EndpointConnectionError(endpoint_url=f"https://AKIAX:{FAKE_SECRET}@proxy.example/"),
        PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY"),
        NoCredentialsError(),
    ]
    for exc in leaky:
        error = aws_error_from_botocore_error(exc, action="DescribeWorkspaceImages", region=EAST)
        assert FAKE_SECRET not in error.user_message
        assert FAKE_SECRET not in error.aws_message
        assert FAKE_SECRET not in repr(error)
    client_error = ClientError(
        {"Error": {"Code": "InvalidParameterValues", "Message": f"bad key {FAKE_SECRET}"}}, "X"
    )
    error = aws_error_from_client_error(client_error, action="CreateTags", region=EAST)
    assert FAKE_SECRET not in error.user_message


# -- the Image value -------------------------------------------------------------------------


def image(platform: str | None, state: str = "AVAILABLE") -> Image:
    return Image(
        account_id=DEFAULT_ACCOUNT,
        region=EAST,
        image_id="wsi-abcdefghi",
        name="n",
        description=None,
        state=state,
        platform=platform,
        update_available=True,
        update_description="updates",
    )


def test_only_windows_images_are_updatable_and_others_say_why() -> None:
    assert image("WINDOWS").updatable
    assert image("WINDOWS").not_updatable_reason is None
    assert not image("LINUX").updatable
    assert image("LINUX").not_updatable_reason == (
        "Linux images cannot be updated by the API; update it by hand."
    )
    assert not image(None).updatable
    assert "by hand" in (image(None).not_updatable_reason or "")


@pytest.mark.parametrize("state", ["PENDING", "ERROR"])
def test_a_windows_image_that_is_not_available_is_not_offered_and_says_why(state: str) -> None:
    assert not image("WINDOWS", state).updatable
    assert image("WINDOWS", state).not_updatable_reason == (
        f"The image is {state}; it can be updated once it is AVAILABLE."
    )
