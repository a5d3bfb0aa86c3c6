"""``settle_heap`` (bot/runtime.py), which `wsimg serve` and `wsimg worker` call once built:
botocore's WorkSpaces model is loaded without a call to AWS or a look for credentials, and
what is alive then is kept out of later garbage collections."""

from __future__ import annotations

import gc

import pytest

from bot.aws.gateway import WorkSpacesGateway
from bot.fakes.workspaces import WorkSpacesSimulator
from bot.runtime import settle_heap
from tests.conftest import World


def test_prepare_calls_no_aws_and_needs_no_credentials(
    simulator: WorkSpacesSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulator.add_image(region="us-east-1", name="Win-Prepared")
    gateway = WorkSpacesGateway(regions=["us-east-1"])
    with monkeypatch.context() as without:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            without.delenv(name)
        gateway.prepare()
    assert simulator.calls == []
    # The credentials back: the scan works as before.
    assert [i.name for i in gateway.list_images().images] == ["Win-Prepared"]


def test_settle_heap_freezes_what_is_alive(world: World) -> None:
    world.simulator.clear_calls()
    try:
        settle_heap(world.services)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert world.simulator.calls == []
