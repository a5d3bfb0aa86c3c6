"""Demo data and standalone use: a plausible fleet (:func:`seed_demo_data`) and
``python -m bot.fakes.workspaces``, which serves one until interrupted (:func:`main`)."""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import threading
from collections.abc import Iterable

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
