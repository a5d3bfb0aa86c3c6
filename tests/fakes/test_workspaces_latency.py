"""The simulator's ``latency``: every call is answered that long after it came, the
simulator's own time included, and calls made at the same time wait side by side (as a
far-away AWS would), not one after another."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from bot.fakes.workspaces import WorkSpacesSimulator

LATENCY = 0.3


def test_no_latency_by_default(sim: WorkSpacesSimulator) -> None:
    assert sim.latency == 0.0


def test_each_call_waits_the_latency_before_its_answer(sim: WorkSpacesSimulator, ws: Any) -> None:
    sim.add_image(region="us-east-1", name="Win11-Base")
    sim.latency = LATENCY
    started = time.monotonic()
    images = ws.describe_workspace_images(ImageType="OWNED")["Images"]
    assert time.monotonic() - started >= LATENCY
    assert [image["Name"] for image in images] == ["Win11-Base"]
    started = time.monotonic()
    boto3.client("sts", region_name="us-east-1").get_caller_identity()
    assert time.monotonic() - started >= LATENCY


def test_concurrent_calls_wait_side_by_side(sim: WorkSpacesSimulator) -> None:
    sim.latency = LATENCY
    clients = [boto3.client("workspaces", region_name="us-east-1") for _ in range(4)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda c: c.describe_workspace_images(ImageType="OWNED"), clients))
    took = time.monotonic() - started
    assert LATENCY <= took < 4 * LATENCY  # one after another would take 4 x the latency
    assert sim.count("DescribeWorkspaceImages") == 4


def test_the_simulators_own_time_is_part_of_the_latency(sim: WorkSpacesSimulator, ws: Any) -> None:
    # A call the simulator takes 0.2 s over (held, then let go) is answered at the latency,
    # not 0.2 s after it: the benchmark's critical path is a number of calls times the latency.
    sim.latency = LATENCY
    hold = sim.hold("DescribeWorkspaceImages")
    with ThreadPoolExecutor(max_workers=1) as pool:
        started = time.monotonic()
        answer = pool.submit(ws.describe_workspace_images, ImageType="OWNED")
        assert hold.wait_until_blocked(1)
        time.sleep(0.2)
        hold.release()
        answer.result(timeout=10)
    took = time.monotonic() - started
    assert LATENCY <= took < LATENCY + 0.15


def test_a_negative_latency_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        WorkSpacesSimulator(latency=-0.1)
