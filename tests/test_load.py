"""Load `wsimg serve` cannot be taken down by: connections that trickle a byte at a time, and
one person flooding `/wsimg updates`. Against a real `wsimg serve` process, as deployed.

The bound checked is Slack's: an ack within 3 seconds (also the bound for /healthz). It is a
functional limit, not a speed benchmark; tests/benchmarks/ prints the figures. The per-user
limits themselves are checked with a clock the test moves.
"""

from __future__ import annotations

import gc
import json
import threading
import time
from pathlib import Path

import pytest

from bot.fakes.slack import SlackUser, SlackWebAPI
from bot.fakes.workspaces import WorkSpacesSimulator
from bot.slack.limits import (
    LISTINGS,
    STALE_SECONDS,
    BoundedExecutor,
    CommandLimits,
    LimitReached,
    Rate,
)
from bot.slack.server import REQUEST_READ_SECONDS
from tests.benchmarks.load import (
    SLACK_ACK_SECONDS,
    Asked,
    Flood,
    Timed,
    Trickler,
    ask,
    healthz,
    listing_rows,
    rss_mb,
    signed_command,
)
from tests.conftest import APPROVER, PROCESSES, SIGNING_SECRET, World
from tests.processes import WsimgProcess, process_env

pytestmark = PROCESSES

MEMORY_MB = 150
TOO_MANY = "more listings than wsimg takes from one person in a minute; try again in"
STILL_RUNNING = "still working on your `/wsimg updates`; its answer comes here in a moment"
FLOODER = "UFLOODER"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


def _serve(
    simulator: WorkSpacesSimulator, slack: SlackWebAPI, database_url: str, log: Path
) -> WsimgProcess:
    env = process_env(simulator, slack, database_url, WSIMG_REGIONS=",".join(REGIONS))
    return WsimgProcess("serve", env, log).start().wait_ready()


# --------------------------------------------------------------------------------------------
# Slow connections
# --------------------------------------------------------------------------------------------

TRICKLERS = 200
PROBE_SECONDS = 20.0


def test_healthz_and_signed_commands_answer_while_200_connections_trickle_a_byte_every_5s(
    simulator: WorkSpacesSimulator, slack: SlackWebAPI, tmp_path: Path
) -> None:
    """200 connections send the start of a request and then a byte every 5 seconds; each one
    the server closes is opened again at once, so 200 stay on it. For 20 seconds /healthz and a
    signed `/wsimg help` are answered within 3 seconds, and the server closes every slow
    connection once its request has taken REQUEST_READ_SECONDS to arrive.

    The subject is the HTTP server, not the database: one database (SQLite) is enough."""
    process = _serve(simulator, slack, f"sqlite:///{tmp_path}/wsimg.db", tmp_path / "serve.log")
    user = SlackUser(process.events_url, SIGNING_SECRET, slack, timeout=10)
    health: list[Timed] = []
    helps: list[tuple[Timed, bool]] = []
    open_during: list[int] = []
    try:
        with Trickler(process.port, connections=TRICKLERS, seconds=PROBE_SECONDS + 20) as slow:
            assert slow.wait_open(), f"only {slow.open_now} slow connections opened"
            deadline = time.monotonic() + PROBE_SECONDS
            while time.monotonic() < deadline:
                open_during.append(slow.open_now)
                health.append(healthz(process.port))
                timed, ack = signed_command(user, "help", user_id=APPROVER)
                helps.append((timed, ack is not None and "/wsimg updates" in ack.body))
                time.sleep(0.5)
            lifetimes, closed = list(slow.lifetimes), slow.closed_by_server
    finally:
        assert process.stop() == 0

    late = [p for p in health if not p.answered or p.seconds > SLACK_ACK_SECONDS]
    assert not late, f"/healthz late or unanswered {len(late)}/{len(health)} times: {late[:3]}"
    late = [p for p, _ in helps if not p.answered or p.seconds > SLACK_ACK_SECONDS]
    assert not late, f"`/wsimg help` late or unanswered {len(late)}/{len(helps)}: {late[:3]}"
    assert all(is_help for _, is_help in helps)
    assert len(health) >= PROBE_SECONDS  # about two a second: the loop did run
    # The load was there all along (a closed connection is reopened a tenth of a second later).
    loaded = [n for n in open_during if n >= TRICKLERS * 0.9]
    assert len(loaded) >= len(open_during) * 0.9, open_during
    # Every slow connection was cut at the read deadline: at least the first 200 went.
    assert closed >= TRICKLERS, closed
    assert max(lifetimes) < REQUEST_READ_SECONDS + 3, max(lifetimes)


# --------------------------------------------------------------------------------------------
# A command flood
# --------------------------------------------------------------------------------------------

FLOOD_COMMANDS = 1000
# Faster than the 1,000 in 30 seconds, to keep the suite short.
FLOOD_SECONDS = 20.0
IMAGES = 100  # in three regions: a listing asks AWS for several pages and stores 100 offers


def test_a_flood_of_listings_from_one_user_leaves_another_users_commands_answered_within_3s(
    simulator: WorkSpacesSimulator, slack: SlackWebAPI, database_url: str, tmp_path: Path
) -> None:
    """1,000 `/wsimg updates` by one user in 20 seconds. Throughout, another user's
    `/wsimg status` is acknowledged and answered within 3 seconds (halfway, their
    `/wsimg updates` too); every command of the flood is acknowledged at once, the excess
    with a sentence that says when to try again; the process stays under 150 MB; the flood
    made only as many listings as the per-user rate allows."""
    for n in range(IMAGES):
        simulator.add_image(region=REGIONS[n % len(REGIONS)], name=f"Win-Flood-{n}")
    process = _serve(simulator, slack, database_url, tmp_path / "serve.log")
    assert process.proc is not None
    user = SlackUser(process.events_url, SIGNING_SECRET, slack, timeout=10)
    probes: list[tuple[Asked, bool]] = []
    listing: tuple[Asked, bool] | None = None
    memory: list[float] = []
    try:
        flood = Flood(
            process.events_url,
            slack,
            user_id=FLOODER,
            count=FLOOD_COMMANDS,
            seconds=FLOOD_SECONDS,
        ).start()
        started = time.monotonic()
        while flood.running and time.monotonic() - started < FLOOD_SECONDS + 30:
            status = ask(user, "status", user_id=APPROVER)
            probes.append((status, _answered(slack, status)))
            if listing is None and time.monotonic() - started > FLOOD_SECONDS / 2:
                asked = ask(user, "updates", user_id=APPROVER)
                listing = (asked, _answered(slack, asked, listing=True))
            memory.append(rss_mb(process.proc.pid))
            time.sleep(0.5)
        assert flood.join(timeout=30), "the flood did not finish"
        elapsed = time.monotonic() - started
        memory.append(rss_mb(process.proc.pid))
    finally:
        assert process.stop() == 0

    # The other user: every ack and every answer within Slack's 3 seconds.
    slow = [a.ack for a, _ in probes if not a.ack.answered or a.ack.seconds > SLACK_ACK_SECONDS]
    assert not slow, f"acks late or missing: {slow[:3]}"
    late = sum(not answered for _, answered in probes)
    assert not late, f"{late} of {len(probes)} `/wsimg status` answers came after 3 seconds"
    assert len(probes) >= FLOOD_SECONDS / 2, len(probes)
    assert listing is not None
    assert listing[0].ack.answered and listing[0].ack.seconds <= SLACK_ACK_SECONDS
    assert listing[1], "the other user's `/wsimg updates` was not answered within 3 seconds"

    # The flood: all acknowledged at once; the excess refused in the ack itself.
    acks = flood.acks
    assert len(acks) == FLOOD_COMMANDS
    assert all(t.answered and t.seconds <= SLACK_ACK_SECONDS for t, _ in acks), [
        t for t, _ in acks if not t.answered or t.seconds > SLACK_ACK_SECONDS
    ][:3]
    bodies = [json.loads(r.body)["text"] for _, r in acks if r is not None]
    admitted = [b for b in bodies if b.startswith("Looking for image updates")]
    refused = [b for b in bodies if TOO_MANY in b or STILL_RUNNING in b]
    assert len(admitted) + len(refused) == FLOOD_COMMANDS, set(bodies) - set(admitted + refused)
    # A burst, then one per 12 seconds (and one more for a refill due as the flood ended).
    most = LISTINGS.burst + int(elapsed * LISTINGS.per_minute / 60) + 1
    assert 1 <= len(admitted) <= most, (len(admitted), most)
    assert any(TOO_MANY in b for b in refused)

    rows = listing_rows(database_url)
    assert 1 <= rows.get(FLOODER, 0) <= len(admitted), rows
    assert rows.get(APPROVER) == 1, rows
    assert max(memory) < MEMORY_MB, f"resident memory reached {max(memory):.0f} MB"


def _answered(slack: SlackWebAPI, asked: Asked, *, listing: bool = False) -> bool:
    """Whether the answer reached the response_url within 3 seconds of sending."""
    if asked.result is None or asked.result.response_url is None:
        return False
    remaining = asked.sent + SLACK_ACK_SECONDS - time.time()
    try:
        slack.wait_for_response(
            asked.result.response_url,
            (lambda p: bool(p.get("blocks")) and "Win-Flood" in json.dumps(p)) if listing else None,
            timeout=max(0.0, remaining),
        )
    except TimeoutError:
        return False
    return True


def test_a_second_listing_while_the_first_runs_is_answered_at_once_and_the_first_still_comes(
    world: World,
) -> None:
    """Through the real app: while a user's listing waits for AWS, their next `/wsimg updates`
    is refused in the ack with a sentence; once the first is answered, they may list again."""
    world.simulator.add_image(region="us-east-1", name="Win-Only-One")
    with world.simulator.hold("DescribeWorkspaceImages") as held:
        first = world.command("updates")
        assert held.wait_until_blocked(1, timeout=10)
        second = world.command("updates")
        assert second.status == 200 and STILL_RUNNING in second.body, second.body
        status = world.command("status")  # other commands are not held up by it
        assert status.status == 200 and "still working" not in status.body
    assert "Win-Only-One" in json.dumps(world.answer(first))
    assert not world.slack.responses_for(second.response_url or "")
    third = world.command("updates")
    assert "Looking for image updates" in third.body
    assert "Win-Only-One" in json.dumps(world.answer(third))


# --------------------------------------------------------------------------------------------
# The limits, with a clock the test moves
# --------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_one_listing_at_a_time_per_user_and_other_users_are_not_held_up(clock: Clock) -> None:
    limits = CommandLimits(clock=clock)
    first = limits.admit("UONE", "updates")
    with pytest.raises(LimitReached, match="still working on your `/wsimg updates`"):
        limits.admit("UONE", "updates")
    with pytest.raises(LimitReached, match="still working on your `/wsimg updates`"):
        limits.admit("UONE", "digest")
    limits.admit("UTWO", "updates")
    limits.admit("UONE", "status")  # a cheap command while the listing runs
    limits.release(first)
    assert not limits.running("UONE")
    limits.admit("UONE", "digest")


def test_listings_come_in_a_burst_then_one_every_12_seconds(clock: Clock) -> None:
    limits = CommandLimits(listings=Rate(burst=5, per_minute=5), clock=clock)
    for _ in range(5):
        limits.release(limits.admit("UONE", "updates"))
    with pytest.raises(LimitReached) as refused:
        limits.admit("UONE", "updates")
    assert refused.value.retry_after == 12
    assert refused.value.user_message == (
        "That is more listings than wsimg takes from one person in a minute; "
        "try again in 12 seconds."
    )
    clock.now += 9
    with pytest.raises(LimitReached) as refused:
        limits.admit("UONE", "updates")
    assert refused.value.retry_after == 3  # the refusal did not cost a token
    clock.now += 3
    limits.release(limits.admit("UONE", "updates"))
    with pytest.raises(LimitReached):
        limits.admit("UONE", "updates")
    clock.now += 600  # a long pause refills the burst, no more
    for _ in range(5):
        limits.release(limits.admit("UONE", "updates"))
    with pytest.raises(LimitReached):
        limits.admit("UONE", "updates")


def test_cheap_commands_have_a_generous_bucket_of_their_own_and_help_is_free(
    clock: Clock,
) -> None:
    limits = CommandLimits(others=Rate(burst=30, per_minute=60), clock=clock)
    for _ in range(5):
        limits.release(limits.admit("UONE", "updates"))
    for _ in range(30):
        limits.release(limits.admit("UONE", "status"))
    with pytest.raises(LimitReached, match="more commands than wsimg takes") as refused:
        limits.admit("UONE", "history")
    assert refused.value.retry_after == 1
    clock.now += 1
    limits.admit("UONE", "history")
    # status releases nothing it holds: cheap commands never count as a running listing
    assert not limits.running("UONE")


def test_a_listing_never_released_stops_counting_after_ten_minutes(clock: Clock) -> None:
    limits = CommandLimits(clock=clock)
    lost = limits.admit("UONE", "updates")
    clock.now += STALE_SECONDS - 1
    with pytest.raises(LimitReached):
        limits.admit("UONE", "updates")
    clock.now += 2
    newer = limits.admit("UONE", "updates")
    limits.release(lost)  # the old ticket ends late: the newer listing still counts
    assert limits.running("UONE")
    limits.release(newer)
    limits.release(newer)  # twice is harmless
    assert not limits.running("UONE")


def test_concurrent_commands_from_one_user_admit_exactly_one_listing(clock: Clock) -> None:
    limits = CommandLimits(listings=Rate(burst=50, per_minute=1), clock=clock)
    admitted: list[object] = []
    refused: list[LimitReached] = []
    start = threading.Barrier(20)

    def send() -> None:
        start.wait()
        try:
            admitted.append(limits.admit("UONE", "updates"))
        except LimitReached as refusal:
            refused.append(refusal)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert (len(admitted), len(refused)) == (1, 19)


def test_a_full_listener_queue_runs_the_task_in_the_submitting_thread() -> None:
    """Nothing is dropped and nothing queues past the bound."""
    gate = threading.Event()
    ran_in: list[str] = []
    executor = BoundedExecutor(1, max_queued=1, thread_name_prefix="pool")
    try:

        def task(n: int) -> int:
            if n == 0:
                gate.wait(10)
            ran_in.append(threading.current_thread().name)
            return n

        running = executor.submit(task, 0)  # takes the one thread
        queued = executor.submit(task, 1)  # waits in the queue
        overflow = executor.submit(task, 2)  # no room: runs here, now
        assert overflow.done() and overflow.result() == 2
        assert ran_in == [threading.current_thread().name]
        gate.set()
        assert [running.result(10), queued.result(10)] == [0, 1]
        assert all(name.startswith("pool") for name in ran_in[1:])
        assert executor.submit(task, 3).result(10) == 3  # the slots came back
    finally:
        gate.set()
        executor.shutdown(wait=True)


def test_the_listener_pool_shuts_down_cancelling_what_waits_and_refuses_more() -> None:
    gate = threading.Event()
    executor = BoundedExecutor(1, max_queued=2, thread_name_prefix="pool")
    running = executor.submit(gate.wait, 10)
    waiting = executor.submit(lambda: "never")
    deadline = time.monotonic() + 10
    while not running.running() and time.monotonic() < deadline:
        time.sleep(0.01)  # the one thread has taken the first task
    threads = [t for t in threading.enumerate() if t.name.startswith("pool_")]
    executor.shutdown(wait=False, cancel_futures=True)  # the one thread is busy: it waits
    assert waiting.cancelled()
    gate.set()
    assert running.result(10) is True
    for thread in threads:
        thread.join(10)
    assert threads and not any(t.is_alive() for t in threads)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(lambda: None)


def test_a_dropped_listener_pool_lets_its_threads_go() -> None:
    executor = BoundedExecutor(2, max_queued=0, thread_name_prefix="dropped")
    assert executor.submit(lambda: 1).result(10) == 1
    threads = [t for t in threading.enumerate() if t.name.startswith("dropped_")]
    del executor
    gc.collect()
    for thread in threads:
        thread.join(10)
    assert len(threads) == 2 and not any(t.is_alive() for t in threads)
