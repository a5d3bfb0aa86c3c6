"""An image whose build failed: ErrorCode, ErrorMessage and the ErrorDetails pairs that
``fail_build`` configures, as DescribeWorkspaceImages returns them to boto3."""

from __future__ import annotations

from typing import Any

import pytest

from bot.fakes.workspaces import WorkSpacesSimulator


def _failed_image(sim: WorkSpacesSimulator, ws: Any) -> dict[str, Any]:
    source = sim.images(region="us-east-1")[0]["ImageId"]
    new_id = ws.create_updated_workspace_image(
        Name="golden-upd", Description="updated", SourceImageId=source
    )["ImageId"]
    sim.complete_pending()
    [image] = ws.describe_workspace_images(ImageIds=[new_id])["Images"]
    return image


def test_error_details_list_every_pair_given_to_fail_build(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    sim.fail_build(
        source,
        "UpdateFailed",
        "The image could not be updated.",
        details=[
            ("WindowsUpdatesRequired", "Windows updates must be installed first."),
            ("InsufficientDiskSpace", "The C: drive has less than 20 GB free."),
        ],
    )
    image = _failed_image(sim, ws)
    assert image["State"] == "ERROR"
    assert image["ErrorCode"] == "UpdateFailed"
    assert image["ErrorMessage"] == "The image could not be updated."
    assert image["ErrorDetails"] == [
        {
            "ErrorCode": "WindowsUpdatesRequired",
            "ErrorMessage": "Windows updates must be installed first.",
        },
        {
            "ErrorCode": "InsufficientDiskSpace",
            "ErrorMessage": "The C: drive has less than 20 GB free.",
        },
    ]


def test_without_details_a_detail_code_gives_one_detail(sim: WorkSpacesSimulator, ws: Any) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    sim.fail_build(source, "PendingReboot", "A reboot is pending.")
    image = _failed_image(sim, ws)
    assert image["ErrorDetails"] == [
        {"ErrorCode": "PendingReboot", "ErrorMessage": "A reboot is pending."}
    ]


def test_without_details_another_code_gives_none(sim: WorkSpacesSimulator, ws: Any) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    sim.fail_build(source, "UpdateFailed", "Windows Update failed with 0x80070643")
    image = _failed_image(sim, ws)
    assert image["ErrorCode"] == "UpdateFailed"
    assert "ErrorDetails" not in image


def test_an_empty_details_list_gives_none(sim: WorkSpacesSimulator, ws: Any) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    sim.fail_build(source, "PendingReboot", "A reboot is pending.", details=[])
    assert "ErrorDetails" not in _failed_image(sim, ws)


def test_a_detail_code_outside_the_model_enum_is_refused(sim: WorkSpacesSimulator) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    with pytest.raises(ValueError, match="NotAThing"):
        sim.fail_build(source, "UpdateFailed", "m", details=[("NotAThing", "nope")])


def test_available_and_pending_images_have_no_error_fields(
    sim: WorkSpacesSimulator, ws: Any
) -> None:
    source = sim.add_image(region="us-east-1", name="golden")
    sim.fail_build(source, "PendingReboot", "A reboot is pending.")
    new_id = ws.create_updated_workspace_image(
        Name="golden-upd", Description="updated", SourceImageId=source
    )["ImageId"]
    images = ws.describe_workspace_images()["Images"]
    assert {image["ImageId"]: image["State"] for image in images} == {
        source: "AVAILABLE",
        new_id: "PENDING",
    }
    for image in images:
        assert not {"ErrorCode", "ErrorMessage", "ErrorDetails"} & image.keys()
