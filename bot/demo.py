"""`wsimg demo`: the whole loop against the fake world, no AWS or Slack account needed.

It starts the WorkSpaces simulator and the Slack stand-in on 127.0.0.1, serves the real app
with the real scheduler, plays a scenario with signed requests (list → approve → follow-up)
and prints what a channel would have seen, then the steps to a real Slack app and AWS account.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from typing import Any

from bot import redact
from bot.config import Settings
from bot.fakes.slack import SlackUser, SlackWebAPI, find_buttons, render_transcript
from bot.fakes.workspaces import CLEARED_ENV, WorkSpacesSimulator, seed_demo_data
from bot.jobs.scheduler import build_scheduler
from bot.runtime import build_services, http_server
from bot.slack.ids import Action
from storage.db import ensure_schema

REGIONS = ("us-east-1", "eu-west-1")
ALICE, CHANNEL = "U0ALICE", "C0ITOPS"
BOB, ELSEWHERE = "U0BOB", "C0RANDOM"  # not an approver, in another channel
TIMEOUT = 60.0

NEXT_STEPS = """\
Next: connect a real Slack app and AWS account (README.md, in the sections named here):
  1. Slack app: create it from manifest.yml (manifest.socket-mode.yml for Socket Mode), install
     it, and set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (Socket Mode: SLACK_APP_TOKEN too).
  2. AWS permissions: give the bot AWS credentials with that policy and set WSIMG_REGIONS;
     Configuration: set WSIMG_APPROVERS to the Slack users who may approve (none by default).
  3. wsimg db upgrade    creates the database (DATABASE_URL, default sqlite:///wsimg.db).
  4. wsimg serve         answers Slack at /slack/events on $PORT (Deployment: keep it running).
"""


def run_demo() -> int:
    signing_secret = secrets.token_hex(16)
    bot_token = "xoxb-demo-" + secrets.token_hex(8)
    with (
        tempfile.TemporaryDirectory(prefix="wsimg-demo-") as tmp,
        WorkSpacesSimulator(pending_seconds=3, seed=7) as simulator,
        SlackWebAPI(bot_token=bot_token) as slack,
    ):
        # Secrets and the stand-in's response URLs never reach a log line.
        redact.install([bot_token, signing_secret], api_url=slack.api_url)
        _point_boto3_at(simulator)
        seed_demo_data(simulator, regions=REGIONS, per_region=6, seed=3)
        slack.set_user(ALICE, "alice")
        slack.set_user(BOB, "bob")
        slack.set_channel(CHANNEL, "it-ops")
        slack.set_channel(ELSEWHERE, "random")
        settings = Settings(
            slack_bot_token=bot_token,
            slack_signing_secret=signing_secret,
            slack_api_url=slack.api_url,
            database_url=f"sqlite:///{tmp}/wsimg.db",
            regions=list(REGIONS),
            approvers=[ALICE],
            poll_seconds=1,
        )
        services = build_services(settings)
        ensure_schema(services.engine)
        server = http_server(services, host="127.0.0.1", port=0).start()
        scheduler = build_scheduler(services)
        scheduler.start()
        try:
            _play(
                SlackUser(f"http://127.0.0.1:{server.port}/slack/events", signing_secret, slack),
                slack,
            )
        finally:
            scheduler.shutdown(wait=False)
            server.stop()
            services.engine.dispose()
        print(
            f"wsimg demo — a fake WorkSpaces fleet ({len(simulator.images())} images in "
            f"{', '.join(REGIONS)}) and a fake Slack workspace, both on 127.0.0.1.\n"
            "Below: what #it-ops saw while alice listed the updates, approved one, and the "
            "new image was built; then bob, who is no approver, asked from #random.\n"
        )
        print(render_transcript(slack))
        print(NEXT_STEPS, end="")
    return 0


def _point_boto3_at(simulator: WorkSpacesSimulator) -> None:
    for name in CLEARED_ENV:
        os.environ.pop(name, None)
    os.environ.update(simulator.environment(region=REGIONS[0]))


def _play(user: SlackUser, slack: SlackWebAPI) -> None:
    asked = user.command("updates", user_id=ALICE, channel_id=CHANNEL)
    listing: dict[str, Any] = slack.wait_for_response(
        asked.response_url, lambda payload: bool(payload.get("blocks")), timeout=TIMEOUT
    )
    approve = next(
        button
        for button in find_buttons(listing["blocks"])
        if button["action_id"].startswith(Action.APPROVE.value)
    )
    # The listing is the command's ephemeral answer: the click is on it, as in Slack.
    user.click_button(approve, user_id=ALICE, channel_id=CHANNEL, message=listing)
    reply = slack.wait_for(
        lambda call: call.method == "chat.postMessage" and bool(call.args.get("thread_ts")),
        timeout=TIMEOUT,
    )
    # The announcement is brought up to date after its follow-up: wait a little for that edit,
    # so #it-ops' story reads in one piece before bob's part.
    with contextlib.suppress(TimeoutError):
        slack.wait_for(
            lambda call: (
                call.method == "chat.update" and call.args.get("ts") == reply.args.get("thread_ts")
            ),
            timeout=10.0,
            since=slack.calls.index(reply) + 1,
        )
    # Trust boundaries: what #it-ops did stays in #it-ops, and digests are not for anyone.
    for text in ("history", "subscribe * * * * *"):
        asked = user.command(text, user_id=BOB, channel_id=ELSEWHERE)
        slack.wait_for_response(
            asked.response_url, lambda payload: bool(payload.get("blocks")), timeout=TIMEOUT
        )
