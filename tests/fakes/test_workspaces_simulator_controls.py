"""The controls tests steer the WorkSpaces simulator with, its demo fleet and its command line."""

from __future__ import annotations

import threading
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest

from bot.fakes.workspaces import (
    CLEARED_ENV,
    DEFAULT_ACCOUNT,
    DEFAULT_UPDATE_DESCRIPTION,
    LINUX_UPDATE_DESCRIPTION,
    WorkSpacesSimulator,
    main,
    seed_demo_data,
)
from tests.fakes.workspaces_kit import error_code

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


def test_demo_linux_images_are_not_offered_windows_updates() -> None:
    simulator = WorkSpacesSimulator(seed=3)
    seed_demo_data(simulator, regions=["us-east-1"], per_region=8, seed=1)
    offered = {
        (i["OperatingSystem"]["Type"], i["Updates"]["Description"])
        for i in simulator.images()
        if i["Updates"]["UpdateAvailable"]
    }

    assert ("LINUX", LINUX_UPDATE_DESCRIPTION) in offered
    assert ("WINDOWS", DEFAULT_UPDATE_DESCRIPTION) in offered
    assert not any(os == "LINUX" and "Windows" in text for os, text in offered)


def test_the_command_line_starts_seeds_and_prints_its_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stop = threading.Event()
    stop.set()  # return as soon as it is up instead of waiting for Ctrl-C
    assert main(["--port", "0", "--images", "2", "--regions", "us-east-1"], stop=stop) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://127.0.0.1:")
