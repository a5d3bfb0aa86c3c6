"""The gateway's lean parsing of DescribeWorkspaceImages (bot/aws/gateway.py
``_LeanJSONParser``): the same answer botocore's own parser gives, every member the model
knows, in an image with all of them, timestamps the same instants in UTC. Real boto3 against
the WorkSpaces simulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from bot.aws.gateway import WorkSpacesGateway
from bot.fakes.workspaces import DEFAULT_ACCOUNT, WorkSpacesSimulator

REGION = "us-east-1"


def _both(gateway: WorkSpacesGateway, **params: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    lean = gateway.client(DEFAULT_ACCOUNT, REGION).describe_workspace_images(**params)
    full = boto3.client("workspaces", region_name=REGION).describe_workspace_images(**params)
    for answer in (lean, full):
        answer.pop("ResponseMetadata")
    return lean, full


def test_the_lean_parse_is_botocores_own(simulator: WorkSpacesSimulator) -> None:
    source = simulator.add_image(region=REGION, name="Win-Source", description="Golden")
    simulator.add_image(region=REGION, name="Linux-Plain", platform="LINUX", update_available=False)
    simulator.fail_build(
        source, "UpdateFailed", "It broke", details=[("OutdatedPowershellVersion", "Too old")]
    )
    gateway = WorkSpacesGateway(regions=[REGION])
    gateway.create_updated_image(
        account_id=DEFAULT_ACCOUNT,
        region=REGION,
        source_image_id=source,
        name="Win-Source-updated",
        description="wsimg",
        tags={},
    )
    simulator.complete_pending()

    lean, full = _both(gateway, ImageType="OWNED")

    assert lean == full
    images = {image["Name"]: image for image in lean["Images"]}
    assert set(images) >= {"Win-Source", "Linux-Plain"}
    assert any(image.get("ErrorDetails") for image in lean["Images"])
    assert all(image["Created"].utcoffset() == timedelta(0) for image in lean["Images"])
    assert images["Win-Source"]["Updates"]["UpdateAvailable"] is True


def test_pages_and_errors_are_parsed_as_botocore_does(simulator: WorkSpacesSimulator) -> None:
    for n in range(30):
        simulator.add_image(region=REGION, name=f"Win-Page-{n:02}")
    gateway = WorkSpacesGateway(regions=[REGION])

    lean, full = _both(gateway, ImageType="OWNED", MaxResults=25)
    assert lean == full
    assert len(lean["Images"]) == 25 and lean["NextToken"]

    simulator.deny("DescribeWorkspaceImages")
    with pytest.raises(ClientError) as refused:
        gateway.client(DEFAULT_ACCOUNT, REGION).describe_workspace_images(ImageType="OWNED")
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
