"""`wsimg serve` and `wsimg worker` as real processes: a follow-up survives a kill, and
several processes on one database post each digest slot once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from bot.fakes.slack import SlackUser, SlackWebAPI
from bot.fakes.workspaces import WorkSpacesSimulator
from storage.db import make_engine
from storage.models import DigestSlot, State, Subscription, UpdateRequest
from tests.conftest import APPROVER, BOT_TOKEN, SIGNING_SECRET
from tests.postgres import PostgresServer
from tests.processes import WsimgProcess, process_env


@pytest.fixture
def fake_world(tmp_path: Path) -> Iterator[tuple[WorkSpacesSimulator, SlackWebAPI, dict[str, str]]]:
    with (
        WorkSpacesSimulator(pending_seconds=3600) as simulator,
        SlackWebAPI(bot_token=BOT_TOKEN) as slack,
    ):
        yield simulator, slack, process_env(simulator, slack, f"sqlite:///{tmp_path}/wsimg.db")


def _approve_through(process: WsimgProcess, slack: SlackWebAPI) -> None:
    user = SlackUser(process.events_url, SIGNING_SECRET, slack)
    asked = user.command("updates", user_id=APPROVER)
    listing = slack.wait_for_response(asked.response_url, lambda p: bool(p.get("blocks")), 30)
    [button] = [
        b
        for b in user.find_buttons(listing["blocks"])
        if b["action_id"].startswith("wsimg.approve")
    ]
    user.click_button(button, user_id=APPROVER)


def test_follow_up_arrives_after_a_kill_while_pending_without_a_second_create(
    fake_world: tuple[WorkSpacesSimulator, SlackWebAPI, dict[str, str]], tmp_path: Path
) -> None:
    simulator, slack, env = fake_world
    image = simulator.add_image(region="us-east-1", name="Win-Survivor")
    first = WsimgProcess("serve", env, tmp_path / "serve.log").start().wait_ready()
    _approve_through(first, slack)
    announced = slack.wait_for(
        lambda c: c.method == "chat.update" and "building" in json.dumps(c.args), timeout=30
    )
    first.kill()
    assert simulator.count("CreateUpdatedWorkspaceImage") == 1

    simulator.complete_pending()
    second = WsimgProcess("serve", env, tmp_path / "serve.log").start().wait_ready()
    try:
        reply = slack.wait_for(
            lambda c: c.method == "chat.postMessage" and bool(c.args.get("thread_ts")), timeout=30
        )
    finally:
        assert second.stop() == 0
    assert reply.args["thread_ts"] == announced.args["ts"]
    assert "AVAILABLE" in json.dumps(reply.args)
    assert simulator.count("CreateUpdatedWorkspaceImage") == 1
    assert image in json.dumps(reply.args)


def _the_request(database_url: str) -> UpdateRequest:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return session.exec(select(UpdateRequest)).one()
    finally:
        engine.dispose()


def _wait_for_request(
    database_url: str, done: Callable[[UpdateRequest], bool], what: str
) -> UpdateRequest:
    """The request once ``done`` holds for it (within 30 s, else the test fails saying what)."""
    deadline = time.monotonic() + 30
    while not done(request := _the_request(database_url)):
        assert time.monotonic() < deadline, f"the request was not {what}"
        time.sleep(0.2)
    return request


def test_a_process_killed_after_the_create_but_before_its_record_is_reconciled_on_start(
    fake_world: tuple[WorkSpacesSimulator, SlackWebAPI, dict[str, str]], tmp_path: Path
) -> None:
    simulator, slack, env = fake_world
    simulator.add_image(region="us-east-1", name="Win-Killed-Mid-Call")
    first = WsimgProcess("serve", env, tmp_path / "serve.log").start().wait_ready()
    with simulator.hold("CreateUpdatedWorkspaceImage", after=True) as hold:
        _approve_through(first, slack)
        # The image is made; the reply is held, and the process dies before it arrives.
        assert hold.wait_until_blocked(1, timeout=30)
        first.kill()
    orphan = _the_request(env["DATABASE_URL"])
    assert orphan.state == State.submitting and orphan.new_image_id is None
    [made] = [i for i in simulator.images() if i["Name"] == orphan.new_image_name]

    second = WsimgProcess("serve", env, tmp_path / "serve.log").start().wait_ready()
    try:
        request = _wait_for_request(
            env["DATABASE_URL"], lambda r: r.state != State.submitting, "reconciled on start"
        )
    finally:
        assert second.stop() == 0
    assert request.state == State.pending
    assert request.new_image_id == made["ImageId"]
    assert simulator.count("CreateUpdatedWorkspaceImage") == 1


def test_a_process_killed_after_posting_a_follow_up_but_before_recording_it_posts_it_once(
    fake_world: tuple[WorkSpacesSimulator, SlackWebAPI, dict[str, str]], tmp_path: Path
) -> None:
    simulator, slack, env = fake_world
    simulator.add_image(region="us-east-1", name="Win-Followed-Once")
    first = WsimgProcess("serve", env, tmp_path / "serve.log").start().wait_ready()
    _approve_through(first, slack)
    slack.wait_for(
        lambda c: c.method == "chat.update" and "building" in json.dumps(c.args), timeout=30
    )
    with slack.hold("chat.postMessage", when=lambda args: bool(args.get("thread_ts"))) as hold:
        simulator.complete_pending()
        # The follow-up is in the thread; its reply is held, and the process dies before it
        # can record that it posted.
        assert hold.wait_until_blocked(1, timeout=30)
        first.kill()
    request = _the_request(env["DATABASE_URL"])
    assert request.followup_posted_at is None and request.followup_claimed_by
    assert request.channel_id and request.message_ts
    assert len(slack.thread(request.channel_id, request.message_ts)) == 1

    second = WsimgProcess("serve", env, tmp_path / "serve.log").start().wait_ready()
    try:
        request = _wait_for_request(
            env["DATABASE_URL"], lambda r: r.followup_posted_at is not None, "followed up"
        )
    finally:
        assert second.stop() == 0
    assert len(slack.thread(request.channel_id, request.message_ts)) == 1
    assert slack.calls_to("conversations.replies")  # it read the thread instead of posting


DIGEST_MINUTES = 3
# A due slot is posted by the next 15-second tick of any process; this bounds how late.
POST_WITHIN = timedelta(seconds=25)


def test_three_processes_post_each_digest_slot_exactly_once_on_sqlite_and_postgresql(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """Two `wsimg serve` and one `wsimg worker` per database, a digest every minute, three
    minutes: every slot is posted, and only once. Both databases run at the same time.

    Meanwhile, on a third database, a channel subscribes through a `wsimg serve` that runs
    no scheduler, a `wsimg worker` posts its digest, and an unsubscribe through the same
    `serve` stops it: no process restarts."""
    databases = {
        "C0SQLITE": f"sqlite:///{tmp_path}/digest.db",
        "C0POSTGRES": postgres_server.create_database(),
    }
    with (
        WorkSpacesSimulator(pending_seconds=3600) as simulator,
        SlackWebAPI(bot_token=BOT_TOKEN) as slack,
    ):
        image = simulator.add_image(region="us-east-1", name="Win-Every-Minute")
        processes = [
            WsimgProcess(
                command,
                process_env(
                    simulator,
                    slack,
                    url,
                    WSIMG_DIGEST_CHANNEL=channel,
                    WSIMG_DIGEST_CRON="* * * * *",
                    WSIMG_TIMEZONE="UTC",
                ),
                tmp_path / f"{channel}-{n}-{command}.log",
            ).start()
            for channel, url in databases.items()
            for n, command in enumerate(("serve", "serve", "worker"))
        ]
        live_url = f"sqlite:///{tmp_path}/live.db"
        front = WsimgProcess(
            "serve",
            process_env(
                simulator, slack, live_url, WSIMG_SCHEDULER="off", WSIMG_MIN_DIGEST_MINUTES="1"
            ),
            tmp_path / "live-serve.log",
        ).start()
        back = WsimgProcess(
            "worker", process_env(simulator, slack, live_url), tmp_path / "live-worker.log"
        ).start()
        processes += [front, back]
        try:
            for process in processes:
                process.wait_ready()
            deadline = time.monotonic() + DIGEST_MINUTES * 60 + POST_WITHIN.total_seconds()
            unsubscribed = _subscribe_then_unsubscribe(front, slack)
            time.sleep(max(0.0, deadline - time.monotonic()))
        finally:
            codes = [process.stop() for process in processes]
        stopped = datetime.now(UTC)
        posts = slack.calls_to("chat.postMessage")

    assert codes == [0] * len(processes)
    for channel, url in databases.items():
        engine = make_engine(url)
        with Session(engine) as session:
            [subscription] = session.exec(select(Subscription)).all()
            slots = session.exec(select(DigestSlot).order_by(col(DigestSlot.slot_at))).all()
        engine.dispose()
        due = _minutes_between(subscription.updated_at, stopped - POST_WITHIN)
        assert len(due) >= DIGEST_MINUTES, channel
        assert [slot.slot_at for slot in slots][: len(due)] == due, channel
        assert all(slot.state == "posted" and slot.messages == 1 for slot in slots), slots
        in_channel = [post for post in posts if post.args.get("channel") == channel]
        assert len(in_channel) == len(slots), channel
        assert all(image in json.dumps(post.args) for post in in_channel)

    # After the unsubscribe, at least one more minute came and went without a digest.
    assert stopped.timestamp() - unsubscribed > 60 + POST_WITHIN.total_seconds()
    live = [post for post in posts if post.args.get("channel") == LIVE_CHANNEL]
    assert live and all(post.time < unsubscribed + POST_WITHIN.total_seconds() for post in live)


LIVE_CHANNEL = "C0LIVE"


def _subscribe_then_unsubscribe(front: WsimgProcess, slack: SlackWebAPI) -> float:
    """Subscribe through `front`, wait for the worker's digest, unsubscribe; when it ended."""
    user = SlackUser(front.events_url, SIGNING_SECRET, slack)
    asked = user.command("subscribe * * * * * UTC", user_id=APPROVER, channel_id=LIVE_CHANNEL)
    answer = slack.wait_for_response(asked.response_url, timeout=30)
    assert "subscribed this channel" in json.dumps(answer)
    slack.wait_for(
        lambda c: c.method == "chat.postMessage" and c.args.get("channel") == LIVE_CHANNEL,
        timeout=60 + POST_WITHIN.total_seconds(),
    )
    asked = user.command("unsubscribe", user_id=APPROVER, channel_id=LIVE_CHANNEL)
    slack.wait_for_response(asked.response_url, timeout=30)
    return time.time()


def _minutes_between(after: datetime, until: datetime) -> list[datetime]:
    """Every whole minute m with after < m <= until."""
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    found = []
    while minute <= until:
        found.append(minute)
        minute += timedelta(minutes=1)
    return found
