"""The gateway's fleet scan (issue 10, part 4): every target listed at once, its progress told
as it goes, and the timestamps it parses. Real boto3 against the WorkSpaces simulator."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from botocore.utils import parse_timestamp

from bot.aws.gateway import ScanProgress, WorkSpacesGateway, _utc_timestamp
from bot.fakes.workspaces import DEFAULT_ACCOUNT, WorkSpacesSimulator

DESCRIBE = "DescribeWorkspaceImages"
TEN_REGIONS = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ca-central-1",
]
OTHER_ACCOUNT = "210987654321"
ROLE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/wsimg-reader"


def test_ten_regions_are_listed_at_once_not_in_two_rounds(simulator: WorkSpacesSimulator) -> None:
    for region in TEN_REGIONS:
        simulator.add_image(region=region, name=f"Win-{region}")
    gateway = WorkSpacesGateway(regions=TEN_REGIONS)
    gateway.targets()  # GetCallerIdentity first, so that only the scan's calls reach the hold
    found: list[int] = []
    with simulator.hold(DESCRIBE) as hold:
        scan = threading.Thread(target=lambda: found.append(len(gateway.list_images().images)))
        scan.start()
        # Every region's first call waits at AWS at the same time: one thread per target.
        assert hold.wait_until_blocked(len(TEN_REGIONS))
    scan.join(30)
    assert found == [len(TEN_REGIONS)]


def test_progress_counts_targets_and_images_in_order_from_the_scan_threads(
    simulator: WorkSpacesSimulator,
) -> None:
    regions = TEN_REGIONS[:3]
    for n, region in enumerate(regions):
        for i in range(30 * n + 1):  # 1, 31 and 61 images: one, two and three pages
            simulator.add_image(region=region, name=f"Win-{region}-{i:02}")
    gateway = WorkSpacesGateway(regions=regions, role_arns=[ROLE])
    heard: list[tuple[ScanProgress, str]] = []

    listing = gateway.list_images(
        progress=lambda p: heard.append((p, threading.current_thread().name))
    )

    told = [p for p, _ in heard]
    assert told[0] == ScanProgress(done=0, total=6, accounts=2, images=0)
    assert told[-1] == ScanProgress(done=6, total=6, accounts=2, images=len(listing.images))
    assert [p.done for p in told] == sorted(p.done for p in told)
    assert [p.images for p in told] == sorted(p.images for p in told)
    assert len({p.done for p in told}) == 7  # 0 to 6, each target once
    assert len(listing.images) == 93  # the role's account has none of these images
    assert all(name.startswith("wsimg-aws") for _, name in heard[1:])


def test_a_target_that_fails_still_counts_as_done(simulator: WorkSpacesSimulator) -> None:
    simulator.add_image(region="us-east-1", name="Win-East")
    simulator.fail_next(DESCRIBE, "AccessDeniedException", "not allowed")
    gateway = WorkSpacesGateway(regions=["us-east-1"])
    heard: list[ScanProgress] = []

    listing = gateway.list_images(progress=heard.append)

    assert len(listing.failures) == 1
    assert heard[-1] == ScanProgress(done=1, total=1, accounts=1, images=0)


def test_image_timestamps_are_the_same_instants_in_utc(simulator: WorkSpacesSimulator) -> None:
    simulator.add_image(region="us-east-1", name="Win-Dated")
    [image] = WorkSpacesGateway(regions=["us-east-1"]).list_images().images
    assert image.created is not None
    assert image.created.tzinfo is not None
    assert image.account_id == DEFAULT_ACCOUNT
    assert image.created.utcoffset() == timedelta(0)
    assert _utc_timestamp(1_700_000_000.5) == datetime(2023, 11, 14, 22, 13, 20, 500000, UTC)
    # Whatever it is given, the instant botocore's own parser makes of it.
    for value in (1_700_000_000, -86_400.25, "2023-11-14T22:13:20Z", "1700000000"):
        assert _utc_timestamp(value) == parse_timestamp(value)
