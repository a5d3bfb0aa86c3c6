"""`wsimg rollout [ID] [--json]`: the plan of an AVAILABLE update in a terminal."""

from __future__ import annotations

import json

from tests.conftest import World
from tests.handlers.test_rollout import REGION, SHARED_WITH, _available, _fleet
from tests.test_commands import _clean_env, _wsimg


def test_rollout_prints_the_plan_and_its_json(world: World) -> None:
    fleet = _fleet(world)
    request = _available(world, fleet.source)
    env = _clean_env(
        **world.simulator.environment(),
        WSIMG_REGIONS=REGION,
        DATABASE_URL=world.services.settings.database_url,
        SLACK_API_URL="http://127.0.0.1:9/api/",  # nothing listens: no Slack call is made
    )

    text = _wsimg("rollout", request.short_id, env=env)
    exported = _wsimg("rollout", "--json", env=env)  # the newest AVAILABLE update
    unknown = _wsimg("rollout", "wsi-nothing", env=env)

    assert text.returncode == 0, text.stderr
    assert "Rollout of" in text.stdout and "Finance-1" in text.stdout
    assert "[ Point 2 bundles at the new image ]" in text.stdout
    assert exported.returncode == 0, exported.stderr
    plan = json.loads(exported.stdout)
    assert plan["new_image_id"] == request.new_image_id
    assert sorted(b["bundle_id"] for b in plan["bundles"]) == sorted(fleet.bundles)
    assert all(b["workspaces"] == 2 for b in plan["bundles"])
    assert plan["source_shared_with"] == [SHARED_WITH]
    assert plan["image_quota"] == 40 and plan["image_count"] == 3  # source, other, new
    assert unknown.returncode == 2 and "No AVAILABLE update" in unknown.stderr
