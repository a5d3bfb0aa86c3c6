"""Bulk approval across real processes: "Approve all 12" on a `wsimg serve` that is killed with
SIGKILL inside its third CreateUpdatedWorkspaceImage (carried out by AWS, its reply held).
A `wsimg worker` takes the batch over: the create the dead process made is found by its Name,
the requests it had not reached are submitted, and every image is created exactly once, with
never more than WSIMG_MAX_CONCURRENT_UPDATES building at once; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlmodel import Session, select

from bot.fakes.slack import SlackUser, SlackWebAPI, find_buttons
from bot.fakes.workspaces import WorkSpacesSimulator
from storage.db import make_engine
from storage.models import State, UpdateRequest
from tests.conftest import APPROVER, BOT_TOKEN, PROCESSES, SIGNING_SECRET, wait_until
from tests.processes import WsimgProcess, process_env

pytestmark = PROCESSES

REGION = "us-east-1"
IMAGES = 12
CAP = 4
WITHIN = 40.0
KILLED_IN = 3  # the create the serving process dies in


def test_a_batch_survives_its_process_killed_mid_create_and_creates_each_image_once(
    database_url: str, tmp_path: Path
) -> None:
    with (
        WorkSpacesSimulator(pending_seconds=3600) as sim,
        SlackWebAPI(bot_token=BOT_TOKEN) as slack,
    ):
        images = [sim.add_image(region=REGION, name=f"Win-Bulk-{n}") for n in range(IMAGES)]

        def env(**extra: str) -> dict[str, str]:
            return process_env(
                sim, slack, database_url, WSIMG_MAX_CONCURRENT_UPDATES=str(CAP), **extra
            )

        front = WsimgProcess("serve", env(WSIMG_SCHEDULER="off"), tmp_path / "serve.log")
        worker = WsimgProcess("worker", env(), tmp_path / "worker.log")
        engine = make_engine(database_url)
        processes = [front]
        try:
            front.start().wait_ready()
            user = SlackUser(front.events_url, SIGNING_SECRET, slack)
            asked = user.command("updates", user_id=APPROVER)
            listing = slack.wait_for_response(
                asked.response_url, lambda p: bool(p.get("blocks")), 30
            )
            [button] = [
                b
                for b in find_buttons(listing["blocks"])
                if b["action_id"].startswith("wsimg.bulk")
            ]
            assert button["text"] == f"Approve all {IMAGES}"

            # Each create is carried out, then its reply held; the test lets the first ones
            # answer (re-holding gates the next) and kills the process inside the third.
            hold = sim.hold("CreateUpdatedWorkspaceImage", after=True)
            user.click_button(button, user_id=APPROVER)
            for _ in range(KILLED_IN - 1):
                assert hold.wait_until_blocked(1, timeout=WITHIN), "no create came"
                hold = sim.hold("CreateUpdatedWorkspaceImage", after=True)
            assert hold.wait_until_blocked(1, timeout=WITHIN), "no third create came"
            front.kill()
            hold.release()
            assert sim.count("CreateUpdatedWorkspaceImage") == KILLED_IN
            with Session(engine) as session:
                requests = session.exec(select(UpdateRequest)).all()
            assert len(requests) == IMAGES  # the batch committed whole before any create
            states = Counter(r.state for r in requests)
            assert states[State.submitting] == 1 and states[State.approved] == IMAGES - KILLED_IN

            # A worker takes over: at most CAP build at once, each image created once.
            worker.start().wait_ready()
            processes.append(worker)
            most = 0

            def done() -> bool:
                nonlocal most
                building = _building(sim)
                most = max(most, building)
                if building:
                    sim.complete_pending()
                with Session(engine) as session:
                    rows = session.exec(select(UpdateRequest)).all()
                return all(r.state == State.available for r in rows)

            wait_until(done, "every image of the batch AVAILABLE", timeout=WITHIN * 3, every=0.2)
            assert most <= CAP
            sources = Counter(
                c.params["SourceImageId"]
                for c in sim.calls
                if c.operation == "CreateUpdatedWorkspaceImage"
            )
            assert sources == Counter(images), sources  # every image once, none twice
        finally:
            for process in processes:
                if process.proc is not None and process.proc.poll() is None:
                    process.stop()
            engine.dispose()


def _building(sim: WorkSpacesSimulator) -> int:
    made = {c.params["Name"] for c in sim.calls if c.operation == "CreateUpdatedWorkspaceImage"}
    return sum(1 for i in sim.images() if i["Name"] in made and i["State"] == "PENDING")
