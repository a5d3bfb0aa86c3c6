"""Only this installation is served: signed requests from another workspace, Enterprise Grid
org or app are refused before any listener runs (bot/slack/installation.py).

One signing secret covers every workspace of a distributed app and every workspace of an
org-wide install, so these requests are signed exactly as Slack signs them. The HTTP answer is
the marker that nothing ran: the check answers 403 itself, before authorization and before any
listener (ack or lazy) is started, so nothing can still be under way when it arrives.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlmodel import func, select

from bot.config import Settings
from bot.fakes.slack import APP_ID, SlackUser, SlackWebAPI
from bot.fakes.workspaces import WorkSpacesSimulator
from storage.db import session_scope
from storage.models import Event, Offer, UpdateRequest
from tests.conftest import APPROVER, BOT_TOKEN, SIGNING_SECRET, World
from tests.processes import WsimgProcess, free_port, process_env

CREATE = "CreateUpdatedWorkspaceImage"
OTHER_TEAM = "T0OTHER"
OTHER_ORG = "E0OTHER"
OTHER_APP = "A0OTHER"


@pytest.fixture
def team_ids() -> list[str]:
    """WSIMG_TEAM_IDS; empty: the bot token's own workspace (auth.test) is served."""
    return []


@pytest.fixture
def settings(settings: Settings, team_ids: list[str]) -> Settings:
    return settings.model_copy(update={"team_ids": team_ids})


@pytest.fixture
def refusals(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="bot.slack.installation")
    return caplog


def _refused(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "bot.slack.installation" and record.levelno == logging.WARNING
    ]


def _count(world: World, table: type) -> int:
    with session_scope(world.services.engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def _from(
    world: World,
    *,
    team_id: str = "T0WSIMG",
    enterprise_id: str | None = None,
    app_id: str = APP_ID,
) -> SlackUser:
    """A Slack user somewhere else, signed with the same secret (one app, many workspaces)."""
    return SlackUser(
        world.events_url,
        SIGNING_SECRET,
        world.slack,
        team_id=team_id,
        enterprise_id=enterprise_id,
        app_id=app_id,
    )


ELSEWHERE = {
    "another-team": ({"team_id": OTHER_TEAM}, f"team.id is {OTHER_TEAM}"),
    "another-enterprise": ({"enterprise_id": OTHER_ORG}, f"enterprise.id is {OTHER_ORG}"),
    "another-app": ({"app_id": OTHER_APP}, f"api_app_id is {OTHER_APP}"),
}


@pytest.mark.parametrize(("where", "logged"), ELSEWHERE.values(), ids=ELSEWHERE.keys())
def test_a_click_on_a_real_approve_button_from_another_installation_creates_nothing(
    world: World, refusals: pytest.LogCaptureFixture, where: dict[str, str], logged: str
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Elsewhere")
    button = world.approve_button(world.listing(), image)
    world.simulator.clear_calls()
    events = _count(world, Event)

    result = _from(world, **where).click(button["action_id"], button["value"], user_id=APPROVER)

    assert (result.status, result.body) == (403, "")
    assert world.simulator.calls == []  # no AWS call at all, the create least of all
    assert _count(world, UpdateRequest) == 0 and _count(world, Event) == events
    assert world.slack.responses_for(str(result.response_url)) == []
    assert [logged in message for message in _refused(refusals)] == [True]
    assert "Approve" not in " ".join(_refused(refusals))  # the field, not the payload

    # The very same button, clicked in this workspace, is served: it was a real one.
    world.answer(world.click(button))
    assert world.simulator.count(CREATE) == 1 and _count(world, UpdateRequest) == 1


def test_a_slash_command_from_another_workspace_is_refused_and_answers_nothing(
    world: World, refusals: pytest.LogCaptureFixture
) -> None:
    world.simulator.add_image(region="us-east-1", name="Win-Not-Listed-There")

    result = _from(world, team_id=OTHER_TEAM).command("updates", user_id=APPROVER)

    assert (result.status, result.body) == (403, "")
    assert world.simulator.calls == []
    assert world.slack.responses_for(str(result.response_url)) == []
    assert _count(world, Offer) == 0 and _count(world, UpdateRequest) == 0
    assert _refused(refusals) == [
        f"refused a slash command not from this installation: team_id is {OTHER_TEAM}"
    ]


def test_a_command_that_names_no_workspace_is_refused(
    world: World, refusals: pytest.LogCaptureFixture
) -> None:
    """Slack names the workspace of every command and interaction: one without is not Slack's
    idea of a request to this installation."""
    fields = {
        "command": "/wsimg",
        "text": "updates",
        "user_id": APPROVER,
        "channel_id": "C0OPS",
        "api_app_id": APP_ID,
        "response_url": world.slack.new_response_url(channel="C0OPS", user_id=APPROVER),
    }
    result = world.user.post(urlencode(fields).encode())
    assert result.status == 403
    assert world.simulator.calls == [] and world.slack.responses_for(fields["response_url"]) == []
    assert _refused(refusals) == [
        "refused a slash command not from this installation: no team is named"
    ]


def test_slacks_url_check_names_no_workspace_and_is_answered(world: World) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"})
    result = world.user.post(body.encode(), content_type="application/json")
    assert result.status == 200 and "c-123" in result.body


TWO_WORKSPACES = {
    "second-listed-workspace": (["T0WSIMG", "T0SECOND"], {"team_id": "T0SECOND"}),
    "workspace-of-a-listed-org": (["E0ORG"], {"team_id": "T0ANYWHERE", "enterprise_id": "E0ORG"}),
}


@pytest.mark.parametrize(("team_ids", "where"), TWO_WORKSPACES.values(), ids=TWO_WORKSPACES.keys())
def test_wsimg_team_ids_serves_every_workspace_it_lists(
    world: World, refusals: pytest.LogCaptureFixture, where: dict[str, str]
) -> None:
    image = world.simulator.add_image(region="us-east-1", name="Win-Second-Workspace")
    colleague = _from(world, **where)

    listing = world.answer(colleague.command("updates", user_id=APPROVER))
    button = world.approve_button(listing, image)
    world.answer(colleague.click(button["action_id"], button["value"], user_id=APPROVER))

    assert world.simulator.count(CREATE) == 1
    [request] = world.requests()
    assert request.approved_by == APPROVER
    assert _refused(refusals) == []
    # A workspace it does not list is still refused.
    assert _from(world, team_id=OTHER_TEAM).command("updates", user_id=APPROVER).status == 403


REFUSED_STARTS = {
    "token-refused": ("auth.test refuses", "Slack refused SLACK_BOT_TOKEN (invalid_auth)"),
    "slack-unreachable": ("nothing listens", "Slack did not answer"),
}


@pytest.mark.parametrize(("how", "said"), REFUSED_STARTS.values(), ids=REFUSED_STARTS.keys())
def test_serve_stops_with_one_line_when_slack_will_not_say_who_the_bot_is(
    simulator: WorkSpacesSimulator,
    slack: SlackWebAPI,
    database_url: str,
    tmp_path: Path,
    how: str,
    said: str,
) -> None:
    env = process_env(simulator, slack, database_url)
    if how == "auth.test refuses":
        slack.fail("auth.test", "invalid_auth")
    else:
        env["SLACK_API_URL"] = f"http://127.0.0.1:{free_port()}/api/"
    log = tmp_path / "serve.log"
    serve = WsimgProcess("serve", env, log).start()
    assert serve.proc is not None
    assert serve.proc.wait(timeout=60) == 2

    text = log.read_text()
    said_lines = [line for line in text.splitlines() if line.startswith("wsimg: ")]
    assert len(said_lines) == 1, text
    [line] = said_lines
    assert said in line and ("SLACK_BOT_TOKEN" in line or "SLACK_API_URL" in line)
    assert "Traceback" not in text and BOT_TOKEN not in text
    if how == "auth.test refuses":
        assert [c.error for c in slack.calls if c.method == "auth.test"] == ["invalid_auth"]
