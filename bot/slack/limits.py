"""Limits that keep one person, or one stuck client, from queueing work without end.

A listing (`/wsimg updates`, `/wsimg digest`) asks AWS in every region and account and stores
what it found, so it is what a flood costs: each user has at most one listing running, and a
token bucket (``LISTINGS``: a burst of 5, then one every 12 seconds) bounds how many they
start. The cheap commands (`status`, `history`, `subscribe`, `unsubscribe`) get a generous
bucket of their own; help costs nothing and is not limited. Without this, 1,000 `/wsimg
updates` in 30 seconds made 643 listings and kept other people's answers 20 seconds behind;
with it, 7 listings, and their answers came within 0.1 seconds (tests/benchmarks/).

The decision is taken in the ack, so the person learns at once, in a sentence that says when to
ask again. The limits are per process: behind a load balancer each `wsimg serve` allows as
much, which is enough for what they are for (a process that keeps answering) and needs no
shared store.

``BoundedExecutor`` is the listener pool: a queue that cannot grow without limit either.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any

from bot.errors import WsimgError

LISTING_COMMANDS = frozenset({"updates", "digest", "rollout"})
# A listing whose end was never reported (its thread died with the process's pool) stops
# counting as running after this, so nobody is locked out for good.
STALE_SECONDS = 600.0
MAX_TRACKED_USERS = 10_000  # past this, users whose buckets are full again are forgotten


@dataclass(frozen=True)
class Rate:
    """A token bucket: ``burst`` at once, then ``per_minute`` over time."""

    burst: int
    per_minute: float


LISTINGS = Rate(burst=5, per_minute=5)
OTHER_COMMANDS = Rate(burst=30, per_minute=60)


class LimitReached(WsimgError):
    """The command was refused; ``user_message`` says why and when to ask again."""

    def __init__(self, user_message: str, *, retry_after: int) -> None:
        super().__init__(user_message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Ticket:
    """An admitted command. Plain data: Bolt deep-copies it into the lazy listener's context."""

    id: str
    user_id: str
    listing: bool


@dataclass
class _Bucket:
    tokens: float
    updated: float


class CommandLimits:
    """Per-user admission of slash commands; thread-safe. ``clock`` is for tests."""

    def __init__(
        self,
        *,
        listings: Rate | None = None,
        others: Rate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The module's rates are read here, not when the module loads, so that a test can
        # change them for every app it builds.
        self._rates = {True: listings or LISTINGS, False: others or OTHER_COMMANDS}
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, bool], _Bucket] = {}
        self._running: dict[str, tuple[str, str, float]] = {}  # user -> (ticket, command, since)

    def admit(self, user_id: str, subcommand: str) -> Ticket:
        """A ticket for ``subcommand`` by ``user_id``, to ``release`` when its work is done;
        raises ``LimitReached`` when the user is over a limit (nothing is counted then)."""
        listing = subcommand in LISTING_COMMANDS
        # Made before the lock is taken: os.urandom lets the GIL go, and a thread that must
        # win the GIL back while it holds the lock keeps every other acknowledgement waiting
        # behind it (under load, 80 ms for an acknowledgement that needs 1; wsimg bench).
        ticket_id = uuid.uuid4().hex
        with self._lock:
            now = self._clock()
            if listing:
                self._refuse_a_second_listing(user_id, now)
            bucket = self._refill(user_id, listing, now)
            if bucket.tokens < 1:
                rate = self._rates[listing]
                wait = max(1, math.ceil((1 - bucket.tokens) * 60 / rate.per_minute))
                what = "listings" if listing else "commands"
                raise LimitReached(
                    f"That is more {what} than wsimg takes from one person in a minute; "
                    f"try again in {wait} seconds.",
                    retry_after=wait,
                )
            bucket.tokens -= 1
            ticket = Ticket(ticket_id, user_id, listing)
            if listing:
                self._running[user_id] = (ticket.id, subcommand, now)
            return ticket

    def release(self, ticket: Ticket) -> None:
        """The ticket's work has ended (answered or failed). Releasing twice is harmless."""
        with self._lock:
            running = self._running.get(ticket.user_id)
            if running is not None and running[0] == ticket.id:
                del self._running[ticket.user_id]

    def running(self, user_id: str) -> bool:
        with self._lock:
            return user_id in self._running

    def _refuse_a_second_listing(self, user_id: str, now: float) -> None:
        running = self._running.get(user_id)
        if running is None:
            return
        _, command, since = running
        if now - since > STALE_SECONDS:
            del self._running[user_id]
            return
        raise LimitReached(
            f"wsimg is still working on your `/wsimg {command}`; its answer comes here in a "
            "moment. Ask again once it has.",
            retry_after=5,
        )

    def _refill(self, user_id: str, listing: bool, now: float) -> _Bucket:
        rate = self._rates[listing]
        bucket = self._buckets.get((user_id, listing))
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_USERS:
                self._forget_full_buckets(now)
            bucket = self._buckets[(user_id, listing)] = _Bucket(rate.burst, now)
            return bucket
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(rate.burst, bucket.tokens + elapsed * rate.per_minute / 60)
        bucket.updated = now
        return bucket

    def _forget_full_buckets(self, now: float) -> None:
        """A bucket that has refilled is the same as no bucket."""
        for key, bucket in list(self._buckets.items()):
            rate = self._rates[key[1]]
            if bucket.tokens + (now - bucket.updated) * rate.per_minute / 60 >= rate.burst:
                del self._buckets[key]


class BoundedExecutor(Executor):
    """A pool of ``max_workers`` threads whose queue holds at most ``max_queued`` tasks beyond
    the running ones.

    ThreadPoolExecutor's own queue has no bound, so a flood of requests queued work (and
    memory) without limit. Past the bound the submitting thread runs the task itself: for Bolt
    that is the HTTP thread, so a flood past every per-user limit slows down its own requests
    (waitress has a bounded number of threads and connections) instead of growing the queue.
    Nothing is dropped, so every admitted command still gets its answer.

    Every acknowledgement submits its command's work here, so ``submit`` takes no lock of its
    own: the free places and the tasks are C-level ``SimpleQueue``s, and the threads are all
    started at once. ThreadPoolExecutor.submit holds two locks while it starts a thread or
    looks for an idle one; under load a thread that had to win the GIL back while it held them
    kept every acknowledgement behind it waiting, 40 to 160 ms each (wsimg bench).
    """

    def __init__(self, max_workers: int, *, max_queued: int, thread_name_prefix: str = "") -> None:
        self._work: SimpleQueue[_Task | None] = SimpleQueue()
        self._places: SimpleQueue[None] = SimpleQueue()
        for _ in range(max_workers + max_queued):
            self._places.put(None)
        self._closed = False
        self._threads = [
            threading.Thread(
                target=_work_on,
                args=(self._work, self._places),
                name=f"{thread_name_prefix or 'pool'}_{n}",
                daemon=True,
            )
            for n in range(max_workers)
        ]
        for thread in self._threads:
            thread.start()
        # The threads end when the pool is shut down or dropped (they hold no reference to it).
        self._stop = weakref.finalize(self, _stop, self._work, max_workers)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        try:
            self._places.get_nowait()
        except Empty:
            return _run_here(fn, *args, **kwargs)
        future: Future[Any] = Future()
        self._work.put(_Task(future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._closed = True
        if cancel_futures:
            while True:
                try:
                    task = self._work.get_nowait()
                except Empty:
                    break
                if task is not None:
                    task.future.cancel()
                    self._places.put(None)
        self._stop()
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()


@dataclass(frozen=True)
class _Task:
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


def _work_on(work: SimpleQueue[_Task | None], places: SimpleQueue[None]) -> None:
    while (task := work.get()) is not None:
        try:
            if task.future.set_running_or_notify_cancel():
                try:
                    result = task.fn(*task.args, **task.kwargs)
                except BaseException as exc:  # noqa: BLE001 (kept in the future, as a pool does)
                    task.future.set_exception(exc)
                else:
                    task.future.set_result(result)
        finally:
            places.put(None)
        del task  # nothing of it kept alive while waiting for the next


def _stop(work: SimpleQueue[_Task | None], threads: int) -> None:
    for _ in range(threads):
        work.put(None)


def _run_here(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
    future: Future[Any] = Future()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 (kept in the future, as the pool would)
        future.set_exception(exc)
    else:
        future.set_result(result)
    return future
