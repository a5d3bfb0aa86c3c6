"""Demo data and standalone use: a plausible fleet of images (:func:`seed_demo_data`), bundles
and WorkSpaces to roll an updated image out to (:func:`seed_rollout`), and
``python -m bot.fakes.workspaces``, which serves a fleet until interrupted (:func:`main`)."""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from bot.fakes.workspaces.simulator import WorkSpacesSimulator
from bot.fakes.workspaces.store import (
    DEFAULT_ACCOUNT,
    DEFAULT_UPDATE_DESCRIPTION,
    LINUX_UPDATE_DESCRIPTION,
)

_DEMO_NAMES = (
    ("Win11-Office-Standard", "WINDOWS", True),
    ("Win10-Engineering", "WINDOWS", True),
    ("Win2022-Finance", "WINDOWS", True),
    ("Win11-Contact-Center", "WINDOWS", False),
    ("AmazonLinux2-Developers", "LINUX", True),
    ("Win2019-Legacy-ERP", "WINDOWS", True),
    ("Ubuntu22-Data-Science", "LINUX", False),
    ("Win11-Design-GPU", "WINDOWS", True),
)


def seed_demo_data(
    simulator: WorkSpacesSimulator,
    *,
    regions: Iterable[str] = ("us-east-1", "eu-west-1"),
    per_region: int = 6,
    seed: int = 0,
    account_id: str = DEFAULT_ACCOUNT,
) -> list[str]:
    """Fill the simulator with a plausible fleet; the same seed gives the same fleet."""
    rng = random.Random(seed)
    created: list[str] = []
    for region in regions:
        for index in range(per_region):
            base, platform, update = _DEMO_NAMES[index % len(_DEMO_NAMES)]
            name = base if index < len(_DEMO_NAMES) else f"{base}-{index}"
            created.append(
                simulator.add_image(
                    region=region,
                    account_id=account_id,
                    name=name,
                    platform=platform,
                    update_available=update and rng.random() < 0.8,
                    update_description=(
                        LINUX_UPDATE_DESCRIPTION
                        if platform == "LINUX"
                        else DEFAULT_UPDATE_DESCRIPTION
                    ),
                    description=f"{base.replace('-', ' ')} golden image",
                )
            )
    return created


@dataclass(frozen=True)
class RolloutSeed:
    """What :func:`seed_rollout` made."""

    account_id: str
    region: str
    image_id: str  # the updatable Windows image both rollout bundles use
    bundle_ids: tuple[str, str]  # the two bundles on ``image_id``
    other_image_id: str
    other_bundle_id: str  # the bundle on ``other_image_id``
    workspace_ids: tuple[str, ...]  # the five WorkSpaces on ``bundle_ids``
    connected_workspace_id: str  # the one whose user is connected now
    shared_account_id: str  # the account ``image_id`` is shared with


# (user, bundle index, hours since the user's last connection; 0: connected now)
_ROLLOUT_USERS = (
    ("amartin", 0, 30.0),
    ("bchen", 0, 0.0),
    ("cdiaz", 0, 72.0),
    ("dokafor", 1, 5.0),
    ("erossi", 1, 200.0),
)


def seed_rollout(
    simulator: WorkSpacesSimulator,
    *,
    region: str = "us-east-1",
    account_id: str = DEFAULT_ACCOUNT,
    shared_account_id: str = "210987654321",
) -> RolloutSeed:
    """Give the simulator something to roll an updated image out to: an updatable Windows
    image used by two bundles, a third bundle on another image, five WorkSpaces on the two
    bundles (one user connected now, the others at various times before), and the image
    shared with ``shared_account_id``."""
    now = simulator.now()
    image_id = simulator.add_image(
        region=region,
        account_id=account_id,
        name="Win11-Sales-Golden",
        description="Win11 Sales golden image",
    )
    other_image_id = simulator.add_image(
        region=region,
        account_id=account_id,
        name="Win11-Support-Golden",
        update_available=False,
        description="Win11 Support golden image",
    )
    bundle_ids = (
        simulator.add_bundle(
            region=region,
            account_id=account_id,
            name="Sales-Standard",
            image_id=image_id,
            description="Sales desks",
        ),
        simulator.add_bundle(
            region=region,
            account_id=account_id,
            name="Sales-Managers",
            image_id=image_id,
            description="Sales managers",
        ),
    )
    other_bundle_id = simulator.add_bundle(
        region=region,
        account_id=account_id,
        name="Support-Standard",
        image_id=other_image_id,
        description="Support desks",
    )
    workspace_ids: list[str] = []
    connected_id = ""
    for user, bundle_index, hours in _ROLLOUT_USERS:
        workspace_id = simulator.add_workspace(
            region=region,
            account_id=account_id,
            bundle_id=bundle_ids[bundle_index],
            user_name=user,
            connected=hours == 0,
            last_connected=now - hours * 3600,
            snapshot_at=now - (hours % 12 + 1) * 3600,
        )
        workspace_ids.append(workspace_id)
        if hours == 0:
            connected_id = workspace_id
    simulator.share_image(image_id, shared_account_id)
    return RolloutSeed(
        account_id=account_id,
        region=region,
        image_id=image_id,
        bundle_ids=bundle_ids,
        other_image_id=other_image_id,
        other_bundle_id=other_bundle_id,
        workspace_ids=tuple(workspace_ids),
        connected_workspace_id=connected_id,
        shared_account_id=shared_account_id,
    )


def main(argv: list[str] | None = None, *, stop: threading.Event | None = None) -> int:
    """Serve until Ctrl-C (or until ``stop`` is set)."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.fakes.workspaces",
        description="Run the WorkSpaces simulator on 127.0.0.1 until interrupted.",
    )
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--seed", type=int, default=0, help="random seed for the demo fleet")
    parser.add_argument("--images", type=int, default=6, help="demo images per region")
    parser.add_argument("--regions", default="us-east-1,eu-west-1", help="comma list")
    parser.add_argument("--pending-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    simulator = WorkSpacesSimulator(
        port=args.port, pending_seconds=args.pending_seconds, seed=args.seed
    )
    simulator.start()
    seed_demo_data(simulator, regions=regions, per_region=args.images, seed=args.seed)
    print(simulator.url, flush=True)
    print(
        f"export AWS_ENDPOINT_URL={simulator.url} AWS_ACCESS_KEY_ID=fake "
        f"AWS_SECRET_ACCESS_KEY=fake WSIMG_REGIONS={','.join(regions)}",
        file=sys.stderr,
        flush=True,
    )
    try:
        with contextlib.suppress(KeyboardInterrupt):
            (stop or threading.Event()).wait()
    finally:
        simulator.stop()
    return 0
