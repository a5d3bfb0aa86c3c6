"""`wsimg serve` and `wsimg worker` as real processes: a follow-up survives a kill, and
several processes on one database post each digest slot once.

The digest test does not wait for minutes to pass: it writes subscriptions into the database
as if they had been made minutes ago (what the processes see after being down that long), and
counts each process's runs of its digest job in its log (LOG_LEVEL=DEBUG) to know that every
process has had its turn."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlmodel import Session, col, select

from bot.fakes.hold import Hold
from bot.fakes.slack import SlackUser, SlackWebAPI
from bot.fakes.workspaces import WorkSpacesSimulator
from storage.db import make_engine
from storage.models import DigestSlot, State, Subscription, UpdateRequest, utcnow
from tests.conftest import APPROVER, BOT_TOKEN, PROCESSES, SIGNING_SECRET, wait_until
from tests.postgres import PostgresServer
from tests.processes import WsimgProcess, process_env

pytestmark = PROCESSES


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

    def settled() -> UpdateRequest | None:
        request = _the_request(database_url)
        return request if done(request) else None

    return wait_until(settled, f"the request to be {what}", timeout=30, every=0.2)


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
    replies = slack.thread(request.channel_id, request.message_ts)
    assert [m.text for m in replies if "is AVAILABLE" in m.text] == [
        f"{request.new_image_id} is AVAILABLE"
    ]  # posted once; the heir adds only the rollout plan
    assert slack.calls_to("conversations.replies")  # it read the thread instead of posting


# Every process ticks its digest job every DIGEST_TICK_SECONDS (bot/jobs/scheduler.py).
# Subscriptions are made "2.5 minutes ago" through the database: to the processes, as if they
# had all been down since; the slots of those minutes are due at their next tick.
MADE_AGO = timedelta(seconds=150)
# What APScheduler logs (shown at LOG_LEVEL=DEBUG) when a run of the digest job starts and
# when it has ended. A process runs one at a time (max_instances=1).
TICK_STARTED = re.compile(r'Running job "post due digests ')
TICK_DONE = re.compile(r'Job "post due digests .*" executed successfully')
WITHIN = 60.0  # seconds to wait for what a tick or two must do


def test_three_processes_post_each_digest_slot_exactly_once_on_sqlite_and_postgresql(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """Two `wsimg serve` and one `wsimg worker` per database, digests every minute. Twice, a
    subscription made 2.5 minutes ago shows up in the database while all three run: each
    minute it missed is claimed once and the latest posted once, by whichever process ticks
    first. Each round ends only when every process has finished a run of its digest job that
    began after the subscription appeared. Both databases run at the same time.

    Meanwhile, on a third database, a channel subscribes through a `wsimg serve` that runs
    no scheduler, a `wsimg worker` posts its digest, and an unsubscribe through the same
    `serve` stops it: the subscription is then made due again through the database, and
    once the worker has finished a run begun after that (and posted another channel's
    digest), nothing more came to the channel. No process restarts."""
    databases = {
        "C0SQLITE": f"sqlite:///{tmp_path}/digest.db",
        "C0POSTGRES": postgres_server.create_database(),
    }
    live_url = f"sqlite:///{tmp_path}/live.db"
    with (
        WorkSpacesSimulator(pending_seconds=3600) as simulator,
        SlackWebAPI(bot_token=BOT_TOKEN) as slack,
    ):
        image = simulator.add_image(region="us-east-1", name="Win-Every-Minute")
        # Every process logs at DEBUG, so that its digest runs can be counted (TICK_DONE).
        every_minute = {
            "WSIMG_DIGEST_CRON": "* * * * *",
            "WSIMG_TIMEZONE": "UTC",
            "LOG_LEVEL": "DEBUG",
        }
        racers = {
            channel: [
                WsimgProcess(
                    command,
                    process_env(
                        simulator, slack, url, WSIMG_DIGEST_CHANNEL=channel, **every_minute
                    ),
                    tmp_path / f"{channel}-{n}-{command}.log",
                )
                for n, command in enumerate(("serve", "serve", "worker"))
            ]
            for channel, url in databases.items()
        }
        front = WsimgProcess(
            "serve",
            process_env(
                simulator, slack, live_url, WSIMG_SCHEDULER="off", WSIMG_MIN_DIGEST_MINUTES="1"
            ),
            tmp_path / "live-serve.log",
        )
        back = WsimgProcess(
            "worker",
            process_env(simulator, slack, live_url, LOG_LEVEL="DEBUG"),
            tmp_path / "live-worker.log",
        )
        processes = [*(p for group in racers.values() for p in group), front, back]
        for process in processes:
            process.start()
        try:
            for process in processes:
                process.wait_ready()
            user = SlackUser(front.events_url, SIGNING_SECRET, slack)
            # Round 1; the live channel subscribes, and the worker posts its digest.
            for channel, url in databases.items():
                _subscription_made_ago(url, f"{channel}-1")
            ticks = _digest_ticks_of(racers)
            _command(user, slack, "subscribe * * * * * UTC", "subscribed this channel")
            _subscription_made_ago(live_url, LIVE_CHANNEL)
            _wait_for_post(slack, LIVE_CHANNEL)
            _wait_for_whole_ticks(ticks)
            # Round 2; the live channel unsubscribes. Had the worker not seen that, the live
            # channel would be due again at its next tick, as would another channel's digest.
            for channel, url in databases.items():
                _subscription_made_ago(url, f"{channel}-2")
            _command(user, slack, "unsubscribe", "stopped this channel")
            unsubscribed = time.time()
            _subscription_made_ago(live_url, LIVE_CHANNEL, forget_slots=True)
            _subscription_made_ago(live_url, LIVE_MARKER)
            ticks = _digest_ticks_of({**racers, "live": [back]})
            _wait_for_post(slack, LIVE_MARKER)
            _wait_for_whole_ticks(ticks)
        finally:
            codes = [process.stop() for process in processes]
        posts = slack.calls_to("chat.postMessage")

    assert codes == [0] * len(processes)
    for channel, url in databases.items():
        rounds = {f"{channel}-1", f"{channel}-2"}
        for subscription, slots in _slots(url):
            in_channel = [p for p in posts if p.args.get("channel") == subscription.channel_id]
            posted = [slot for slot in slots if slot.state == "posted"]
            # One post per posted slot, carrying the image; each slot one message.
            assert len(in_channel) == len(posted), (subscription.channel_id, slots)
            assert all(slot.messages == 1 for slot in posted), slots
            assert all(image in json.dumps(post.args) for post in in_channel)
            if subscription.channel_id in rounds:
                rounds.remove(subscription.channel_id)
                # Every minute since it was made claimed once: the missed ones skipped, the
                # latest (and any that came while the test ran) posted.
                minutes = _minutes_between(subscription.updated_at, slots[-1].slot_at)
                assert [slot.slot_at for slot in slots] == minutes, slots
                assert {slot.state for slot in slots} <= {"skipped", "posted"}, slots
                assert slots[-1].state == "posted", slots
        assert rounds == set(), f"no digest slot for {rounds}"

    live = [post for post in posts if post.args.get("channel") == LIVE_CHANNEL]
    assert live and all(post.time < unsubscribed for post in live)
    assert any(post.args.get("channel") == LIVE_MARKER for post in posts)


LIVE_CHANNEL, LIVE_MARKER = "C0LIVE", "C0LIVEMARK"


def _command(user: SlackUser, slack: SlackWebAPI, text: str, answer: str) -> None:
    """`/wsimg <text>` in the live channel, answered with ``answer`` in it."""
    asked = user.command(text, user_id=APPROVER, channel_id=LIVE_CHANNEL)
    said = slack.wait_for_response(asked.response_url, timeout=30)
    assert answer in json.dumps(said), said


def _wait_for_post(slack: SlackWebAPI, channel: str) -> None:
    slack.wait_for(
        lambda c: c.method == "chat.postMessage" and c.args.get("channel") == channel,
        timeout=WITHIN,
    )


def _subscription_made_ago(
    url: str, channel: str | tuple[str, ...], *, forget_slots: bool = False
) -> None:
    """``channel``'s every-minute subscription, as if made (or last changed) MADE_AGO: a new
    one when there is none. ``forget_slots``: and as if none of its digests had gone out.
    Several channels: all in one transaction, so that a digest run sees all or none."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            for one in (channel,) if isinstance(channel, str) else channel:
                _made_ago(session, one, forget_slots=forget_slots)
            session.commit()
    finally:
        engine.dispose()


def _made_ago(session: Session, channel: str, *, forget_slots: bool) -> None:
    subscription = session.exec(
        select(Subscription).where(Subscription.channel_id == channel)
    ).one_or_none() or Subscription(
        channel_id=channel,
        cron="* * * * *",
        timezone="UTC",
        created_by=APPROVER,
        created_at=utcnow() - MADE_AGO,
    )
    subscription.updated_at = utcnow() - MADE_AGO
    session.add(subscription)
    if forget_slots:
        session.execute(
            delete(DigestSlot).where(col(DigestSlot.subscription_id) == subscription.id)
        )


def _digest_ticks(process: WsimgProcess, pattern: re.Pattern[str] = TICK_DONE) -> int:
    """How many runs of its digest job the process has finished (or started)."""
    return len(pattern.findall(process.log.read_text(errors="replace")))


def _digest_ticks_of(groups: dict[str, list[WsimgProcess]]) -> dict[WsimgProcess, int]:
    """How many runs of its digest job each process has started so far."""
    return {p: _digest_ticks(p, TICK_STARTED) for group in groups.values() for p in group}


def _wait_for_whole_ticks(started: dict[WsimgProcess, int]) -> None:
    """Until every process has finished a run of its digest job that started after it had
    started ``started`` runs: runs end in the order they start."""

    def behind() -> list[str]:
        return [p.log.name for p, count in started.items() if _digest_ticks(p) <= count]

    try:
        wait_until(lambda: not behind(), "a whole digest tick of every process", timeout=WITHIN)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: still behind: {behind()}") from None


def _slots(url: str) -> list[tuple[Subscription, list[DigestSlot]]]:
    """Every subscription with its digest slots, oldest first."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return [
                (
                    subscription,
                    list(
                        session.exec(
                            select(DigestSlot)
                            .where(DigestSlot.subscription_id == subscription.id)
                            .order_by(col(DigestSlot.slot_at))
                        )
                    ),
                )
                for subscription in session.exec(select(Subscription))
            ]
    finally:
        engine.dispose()


def _minutes_between(after: datetime, until: datetime) -> list[datetime]:
    """Every whole minute m with after < m <= until."""
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    found = []
    while minute <= until:
        found.append(minute)
        minute += timedelta(minutes=1)
    return found


CHANNELS_STOPPING = ("C0STOPPING1", "C0STOPPING2")


@contextlib.contextmanager
def _told_to_stop_mid_digest(
    simulator: WorkSpacesSimulator, process: WsimgProcess, channels: tuple[str, ...]
) -> Iterator[Hold]:
    """``channels``' digests fall due while AWS holds the first one's scan; the process gets
    SIGTERM and says it is stopping. Inside the block AWS still holds the call (the block may
    release it); after it, the call is let go and the process stopped if still running."""
    held = simulator.hold("DescribeWorkspaceImages")
    try:
        _subscription_made_ago(process.env["DATABASE_URL"], channels)
        assert held.wait_until_blocked(timeout=WITHIN), process.log.read_text()
        assert process.proc is not None
        process.proc.send_signal(signal.SIGTERM)
        wait_until(
            lambda: "stopping:" in process.log.read_text(),
            "the process to take the signal",
            timeout=WITHIN,
        )
        yield held
    finally:
        held.release()
        process.stop()


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_a_process_told_to_stop_while_posting_a_digest_finishes_the_post_first(
    fake_world: tuple[WorkSpacesSimulator, SlackWebAPI, dict[str, str]],
    tmp_path: Path,
    command: str,
) -> None:
    """SIGTERM (a deploy, a restart) comes while a digest slot is claimed and its post is still
    reading the fleet from AWS, with another channel's digest due next in the same run. The
    process finishes the run (both posts, each recorded), then exits 0: no slot is left
    claimed, which would lose that digest (a claimed slot is never posted again, lest it go
    out twice)."""
    simulator, slack, env = fake_world
    simulator.add_image(region="us-east-1", name="Win-Stop-Me")
    env = {**env, "LOG_LEVEL": "DEBUG"}  # DEBUG: it logs each run of its digest job
    process = WsimgProcess(command, env, tmp_path / f"{command}.log").start().wait_ready()
    with _told_to_stop_mid_digest(simulator, process, CHANNELS_STOPPING) as held:
        held.release()
        assert process.proc is not None
        code = process.proc.wait(timeout=WITHIN)
    log_text = process.log.read_text()
    assert code == 0, log_text
    for channel in CHANNELS_STOPPING:
        [slots] = [slots for s, slots in _slots(env["DATABASE_URL"]) if s.channel_id == channel]
        assert slots, log_text
        assert [slot.state for slot in slots][-1] == "posted", (slots, log_text)
        posts = [c for c in slack.calls_to("chat.postMessage") if c.args["channel"] == channel]
        assert len(posts) == 1, log_text
    assert "Traceback" not in log_text, log_text


def test_a_second_sigterm_stops_a_process_that_waits_for_its_jobs_at_once(
    fake_world: tuple[WorkSpacesSimulator, SlackWebAPI, dict[str, str]], tmp_path: Path
) -> None:
    """Waiting for a job stuck on AWS, the process still obeys: the second SIGTERM (or
    Ctrl-C) ends it there and then, as SIGKILL would."""
    simulator, _slack, env = fake_world
    simulator.add_image(region="us-east-1", name="Win-Stuck")
    process = WsimgProcess("worker", env, tmp_path / "worker.log").start().wait_ready()
    with _told_to_stop_mid_digest(simulator, process, CHANNELS_STOPPING[:1]) as held:
        assert process.proc is not None
        process.proc.send_signal(signal.SIGTERM)
        code = process.proc.wait(timeout=10)  # while AWS still holds its call
        assert not held.released
    assert code == -signal.SIGTERM, process.log.read_text()
