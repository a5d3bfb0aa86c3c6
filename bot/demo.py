"""`wsimg demo`: the whole loop against the fake world, no AWS or Slack account needed.

It starts the WorkSpaces simulator and the Slack stand-in on 127.0.0.1, serves the real app
with the real scheduler, plays a scenario with signed requests (list → approve → follow-up →
rollout) and prints what a channel would have seen, then the steps to a real Slack app and AWS
account.

The rollout part runs without the scheduler: the demo itself finishes the rebuilds in the
simulator and runs the rollout job's poll passes, each after the clicks before it are done, so
the transcript reads the same on every run.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from typing import Any

from bot import redact
from bot.config import Settings
from bot.domain import rollout
from bot.domain.context import Services
from bot.fakes.slack import SlackUser, SlackWebAPI, find_buttons, render_transcript
from bot.fakes.slack.listeners import TrackingExecutor
from bot.fakes.workspaces import (
    CLEARED_ENV,
    RolloutSeed,
    WorkSpacesSimulator,
    seed_demo_data,
    seed_rollout,
)
from bot.jobs import followups, rollouts
from bot.jobs.scheduler import build_scheduler
from bot.runtime import build_app, build_services, http_server
from bot.slack.ids import Action
from storage.db import ensure_schema
from storage.models import RolloutState

REGIONS = ("us-east-1", "eu-west-1")
ALICE, CHANNEL = "U0ALICE", "C0ITOPS"
BOB, ELSEWHERE = "U0BOB", "C0RANDOM"  # not an approver, in another channel
TIMEOUT = 60.0
# The rollout: two WorkSpaces a wave, so the seed's four idle ones take two waves. The seed's
# users last connected hours to days ago; with no idle time asked for, the only one skipped is
# the WorkSpace whose user is connected, until that user disconnects.
REBUILD_BATCH = 2
REBUILD_IDLE_HOURS = 0
# The bulk approval: two builds at a time, so the others of the batch are seen waiting.
MAX_CONCURRENT = 2

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
        # Rebuilds end when the demo says so (complete_pending), never on their own.
        WorkSpacesSimulator(pending_seconds=3, rebuild_seconds=3600, seed=7) as simulator,
        SlackWebAPI(bot_token=bot_token) as slack,
    ):
        # Secrets and the stand-in's response URLs never reach a log line.
        redact.install([bot_token, signing_secret], api_url=slack.api_url)
        _point_boto3_at(simulator)
        seed_demo_data(simulator, regions=REGIONS, per_region=6, seed=3)
        fleet = seed_rollout(simulator, region=REGIONS[0])
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
            rebuild_batch=REBUILD_BATCH,
            rebuild_idle_hours=REBUILD_IDLE_HOURS,
            max_concurrent_updates=MAX_CONCURRENT,
        )
        services = build_services(settings)
        ensure_schema(services.engine)
        app = build_app(settings, services)
        listeners = TrackingExecutor.around(app)
        server = http_server(services, app=app, host="127.0.0.1", port=0).start()
        scheduler = build_scheduler(services)
        scheduler.start()
        try:
            user = SlackUser(f"http://127.0.0.1:{server.port}/slack/events", signing_secret, slack)
            play = _Play(user, slack, simulator, services, listeners, fleet)
            play.update()
            # The scheduler posted the follow-up and the plan; the demo runs the rest of the
            # poll passes itself, once the clicks before each are done.
            scheduler.shutdown(wait=True)
            play.roll_out()
            batch = play.approve_all()
            play.digest_and_home()
            play.trust_boundaries()
        finally:
            if scheduler.running:
                scheduler.shutdown(wait=True)
            server.stop()
            services.engine.dispose()
        connected = simulator.workspace(fleet.connected_workspace_id)["UserName"]
        print(
            f"wsimg demo — a fake WorkSpaces fleet ({len(simulator.images())} images in "
            f"{', '.join(REGIONS)}; {len(fleet.workspace_ids)} WorkSpaces on the bundles of "
            f"one of them) and a fake Slack workspace, both on 127.0.0.1.\n"
            "Below: what #it-ops saw while alice listed the updates, approved one and the new "
            "image was built, then rolled it out: the bundles pointed at it, the WorkSpaces "
            f"rebuilt {REBUILD_BATCH} at a time ({connected}'s waited while {connected} was "
            f"connected and went in a later wave once {connected} had disconnected), the image "
            "shared like the source, the source retired. Then alice approved every update "
            f"in {REGIONS[1]} with one click: {batch} images, built {MAX_CONCURRENT} at a time "
            "(WSIMG_MAX_CONCURRENT_UPDATES), the others queued until a build finished. She "
            "posted the channel's digest and opened wsimg's Home tab: both read the shared fleet "
            "scan and say how old it is. Then bob, who is no approver, asked from #random.\n"
        )
        print(render_transcript(slack))
        print(NEXT_STEPS, end="")
    return 0


def _point_boto3_at(simulator: WorkSpacesSimulator) -> None:
    for name in CLEARED_ENV:
        os.environ.pop(name, None)
    os.environ.update(simulator.environment(region=REGIONS[0]))


def _settled_within(listeners: TrackingExecutor, timeout: float) -> None:
    """Wait until what a click set going has finished, so a poll pass never runs beside it."""
    _, running = listeners.settle(timeout)
    if running:
        raise TimeoutError(f"{running} listener(s) still running after {timeout} s")


class _Play:
    """The scenario, as alice and bob play it in the Slack stand-in."""

    def __init__(
        self,
        user: SlackUser,
        slack: SlackWebAPI,
        simulator: WorkSpacesSimulator,
        services: Services,
        listeners: TrackingExecutor,
        fleet: RolloutSeed,
    ) -> None:
        self.user, self.slack, self.simulator = user, slack, simulator
        self.services, self.listeners, self.fleet = services, listeners, fleet
        self.thread_ts = self.rollout_id = ""

    def update(self) -> None:
        """alice lists the updates and approves the seeded image; the scheduler follows the
        build and posts the AVAILABLE follow-up and the rollout plan in its thread."""
        asked = self.user.command("updates", user_id=ALICE, channel_id=CHANNEL)
        listing: dict[str, Any] = self.slack.wait_for_response(
            asked.response_url, lambda payload: bool(payload.get("blocks")), timeout=TIMEOUT
        )
        approve = next(
            button
            for button in find_buttons(listing["blocks"])
            if button["action_id"].startswith(Action.APPROVE.value)
            and self.fleet.image_id in button["section"]
        )
        # The listing is the command's ephemeral answer: the click is on it, as in Slack.
        self.user.click_button(approve, user_id=ALICE, channel_id=CHANNEL, message=listing)
        plan = self.slack.wait_for(
            lambda call: (
                call.method == "chat.postMessage"
                and bool(call.args.get("thread_ts"))
                and str(call.args.get("text", "")).startswith("Rollout of")
            ),
            timeout=TIMEOUT,
        )
        self.thread_ts = str(plan.args["thread_ts"])
        self.rollout_id = str(find_buttons(plan.args["blocks"])[0]["value"])

    def roll_out(self) -> None:
        """alice points the bundles and starts the rebuild; two waves take the four idle
        WorkSpaces while bchen's waits (he is connected); she shares the new image and retires
        the source; bchen disconnects and a third wave takes his."""
        self._click("Rollout of", Action.ROLLOUT_BUNDLES)
        self._click("Rollout of", Action.ROLLOUT_REBUILD)  # wave 1 starts
        self._rebuilds_end()  # wave 1 is back, wave 2 starts
        self._rebuilds_end()  # wave 2 is back; bchen is still connected
        self._click("Rollout of", Action.ROLLOUT_SHARE)
        self._click("Rollout of", Action.ROLLOUT_RETIRE)
        self.simulator.set_connected(self.fleet.connected_workspace_id, False)
        rollouts.run(self.services)  # wave 3 takes bchen's WorkSpace
        self._rebuilds_end()  # and the rollout is done
        # Every WorkSpace rebuilt once, from the new image, and the rollout done.
        done, _ = rollout.load(self.services, self.rollout_id)
        fleet = [self.simulator.workspace(ws) for ws in self.fleet.workspace_ids]
        rebuilt = [(ws["UserName"], ws["rebuilds"], ws["built_from_image_id"]) for ws in fleet]
        if done.state != RolloutState.done or any(
            times != 1 or image != done.new_image_id for _, times, image in rebuilt
        ):
            raise RuntimeError(
                f"the demo's rollout is {done.state}, not done; (user, rebuilds, image): {rebuilt}"
            )

    def approve_all(self) -> int:
        """alice lists one region's updates and clicks "Approve all N": one batch, one message;
        two build at a time, the rest start as builds finish; each follow-up in its thread."""
        asked = self.user.command(f"updates {REGIONS[1]}", user_id=ALICE, channel_id=CHANNEL)
        listing: dict[str, Any] = self.slack.wait_for_response(
            asked.response_url, lambda payload: bool(payload.get("blocks")), timeout=TIMEOUT
        )
        [bulk] = [
            b for b in find_buttons(listing["blocks"]) if b["action_id"].startswith(Action.BULK)
        ]
        clicked = self.user.click_button(bulk, user_id=ALICE, channel_id=CHANNEL, message=listing)
        self.slack.wait_for_response(clicked.response_url, timeout=TIMEOUT)
        _settled_within(self.listeners, TIMEOUT)
        count = int(str(bulk["text"]).rsplit(" ", 1)[1])
        for _ in range(count):  # each pass ends the builds under way and starts the next ones
            self.simulator.complete_pending()
            followups.run(self.services)
        return count

    def digest_and_home(self) -> None:
        """alice posts #it-ops's digest now, then opens wsimg's Home tab."""
        asked = self.user.command("digest", user_id=ALICE, channel_id=CHANNEL)
        self.slack.wait_for_response(asked.response_url, timeout=TIMEOUT)
        _settled_within(self.listeners, TIMEOUT)
        opened = self.user.open_home(user_id=ALICE)
        if opened.status != 200:
            raise RuntimeError(f"opening the Home tab answered {opened.status}")
        _settled_within(self.listeners, TIMEOUT)

    def trust_boundaries(self) -> None:
        """What #it-ops did stays in #it-ops, and digests are not for anyone."""
        for text in ("history", "subscribe * * * * *"):
            asked = self.user.command(text, user_id=BOB, channel_id=ELSEWHERE)
            self.slack.wait_for_response(
                asked.response_url, lambda payload: bool(payload.get("blocks")), timeout=TIMEOUT
            )

    def _rebuilds_end(self) -> None:
        rollouts.run(self.services)  # a poll while they rebuild: wsimg sees them REBUILDING
        self.simulator.complete_pending()
        rollouts.run(self.services)  # a poll once they are back: the next wave, if any

    def _latest(self, starts: str) -> Any:
        found = [
            m
            for m in self.slack.thread(CHANNEL, self.thread_ts)
            if (m.text or "").startswith(starts)
        ]
        if not found:
            raise RuntimeError(f"no message starting {starts!r} in the update's thread")
        return found[-1]

    def _click(self, starts: str, action: Action) -> None:
        message = self._latest(starts)
        button = next(
            b for b in find_buttons(message.blocks) if b["action_id"].startswith(action.value)
        )
        clicked = self.user.click_button(button, user_id=ALICE, channel_id=CHANNEL, message=message)
        self.slack.wait_for_response(clicked.response_url, timeout=TIMEOUT)
        _settled_within(self.listeners, TIMEOUT)
