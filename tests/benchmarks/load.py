"""The load `wsimg serve` must withstand, shared by tests/test_load.py and the benchmark scripts.

* :class:`Trickler`: connections that send the start of a request and then one byte every few
  seconds, so that the request never completes (half leave the headers unfinished, half the
  body). A connection the server closes is opened again, as an attacker would do, so the server
  faces the same number of them all along. One thread, non-blocking sockets.
* :class:`Flood`: signed slash commands from one user, spread evenly over a span of time by a
  few sender threads; every ack is kept.
* Probes: ``healthz`` and ``signed_command`` time one request each on a fresh connection;
  ``rss_mb`` reads a process's resident memory from /proc.

Everything talks to 127.0.0.1 only, and every loop ends by itself (a deadline or a count).
"""

from __future__ import annotations

import contextlib
import http.client
import selectors
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, func, select

from bot.fakes.slack import HttpResult, SlackUser, SlackWebAPI
from bot.fakes.workspaces import WorkSpacesSimulator
from storage.db import make_engine
from storage.models import Listing
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.processes import WsimgProcess, process_env

LOOPBACK = "127.0.0.1"
SLACK_ACK_SECONDS = 3.0  # Slack's hard limit for an ack; also the bound for /healthz

# Requests that never complete: the headers never end, or the body never reaches its length.
SLOW_HEADERS = b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
SLOW_BODY = (
    b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4096\r\n\r\ntext="
)
REOPEN_AFTER = 0.1  # seconds between the server closing a connection and the next one


@dataclass
class _Slow:
    sock: socket.socket
    head: bytes
    next_byte: float
    connected: bool = False


class Trickler:
    """``connections`` slow connections to 127.0.0.1:``port`` for at most ``seconds``."""

    def __init__(
        self,
        port: int,
        *,
        connections: int = 200,
        interval: float = 5.0,
        seconds: float = 60.0,
        reopen: bool = True,
    ) -> None:
        self.port, self.connections, self.interval = port, connections, interval
        self.seconds, self.reopen = seconds, reopen
        self.opened = 0  # connections made (the first ones and the reopened ones)
        self.closed_by_server = 0
        self.bytes_sent = 0
        self.lifetimes: list[float] = []  # how long each connection the server closed lived
        self._open: dict[int, tuple[_Slow, float]] = {}  # slot -> (connection, opened at)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trickler", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> Trickler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> Trickler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def open_now(self) -> int:
        with self._lock:
            return len(self._open)

    def wait_open(self, timeout: float = 10.0) -> bool:
        """Whether all connections were open (connected, their first bytes sent) in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if sum(slow.connected for slow, _ in self._open.values()) >= self.connections:
                    return True
            time.sleep(0.05)
        return False

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        deadline = time.monotonic() + self.seconds
        reopen_at = {slot: time.monotonic() for slot in range(self.connections)}
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                now = time.monotonic()
                for slot, when in list(reopen_at.items()):
                    if when <= now:
                        del reopen_at[slot]
                        self._connect(selector, slot, now)
                for key, _mask in selector.select(timeout=0.05):
                    slot = key.data
                    if not self._serve_event(selector, slot):
                        self._close(selector, slot, by_server=True)
                        if self.reopen:
                            reopen_at[slot] = time.monotonic() + REOPEN_AFTER
                now = time.monotonic()
                for slot, (slow, _) in list(self._open.items()):
                    if slow.connected and slow.next_byte <= now:
                        slow.next_byte = now + self.interval
                        if not self._send(slow, b"a"):
                            self._close(selector, slot, by_server=True)
                            if self.reopen:
                                reopen_at[slot] = now + REOPEN_AFTER
        finally:
            for slot in list(self._open):
                self._close(selector, slot, by_server=False)
            selector.close()

    def _connect(self, selector: selectors.BaseSelector, slot: int, now: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect((LOOPBACK, self.port))
        except BlockingIOError:
            pass  # completes later: the selector says when the socket is writable
        except OSError:
            sock.close()
            return
        head = SLOW_HEADERS if slot % 2 else SLOW_BODY
        # The bytes of all connections are spread over the interval, not sent in one burst.
        first = now + self.interval * (1 + slot / self.connections)
        slow = _Slow(sock, head, first)
        selector.register(sock, selectors.EVENT_WRITE, slot)
        with self._lock:
            self._open[slot] = (slow, now)
            self.opened += 1

    def _serve_event(self, selector: selectors.BaseSelector, slot: int) -> bool:
        """Finish a connect or read what the server sent; False once the server closed."""
        slow, _ = self._open[slot]
        if not slow.connected:
            if slow.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                return False
            slow.connected = True
            selector.modify(slow.sock, selectors.EVENT_READ, slot)
            return self._send(slow, slow.head)
        try:
            return bool(slow.sock.recv(65536))  # an error page, or b"" when it closed
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _send(self, slow: _Slow, data: bytes) -> bool:
        try:
            self.bytes_sent += slow.sock.send(data)
        except BlockingIOError:
            return True
        except OSError:
            return False
        return True

    def _close(self, selector: selectors.BaseSelector, slot: int, *, by_server: bool) -> None:
        with self._lock:
            slow, opened = self._open.pop(slot)
            if by_server:
                self.closed_by_server += 1
                self.lifetimes.append(time.monotonic() - opened)
        selector.unregister(slow.sock)
        slow.sock.close()


@dataclass
class Timed:
    """One probe: when it was sent, how long the answer took, and what it was (0: none)."""

    at: float
    seconds: float
    status: int
    detail: str = ""

    @property
    def answered(self) -> bool:
        return self.status == 200


def healthz(port: int, *, timeout: float = 10.0) -> Timed:
    """GET /healthz on a fresh connection."""
    started = time.monotonic()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        return Timed(started, time.monotonic() - started, response.status)
    except OSError as exc:
        return Timed(started, time.monotonic() - started, 0, type(exc).__name__)
    finally:
        conn.close()


def signed_command(user: SlackUser, text: str, *, user_id: str) -> tuple[Timed, HttpResult | None]:
    """A signed `/wsimg <text>` as Slack sends it; the timing, and the ack when there was one."""
    started = time.monotonic()
    try:
        result = user.command(text, user_id=user_id)
    except OSError as exc:  # no answer within the user's timeout, or the connection failed
        return Timed(started, time.monotonic() - started, 0, type(exc).__name__), None
    return Timed(started, result.elapsed, result.status, result.body[:200]), result


@dataclass
class Asked:
    """A command another user sent during the load: its ack, and when it was sent (wall
    clock, as the fake Slack stamps the answers at the response_url)."""

    sent: float
    ack: Timed
    result: HttpResult | None

    def answer_seconds(self, slack: SlackWebAPI) -> float | None:
        """How long after sending the first answer reached the response_url (None: none)."""
        url = self.result.response_url if self.result is not None else None
        if not url:
            return None
        url_id = url.rstrip("/").rsplit("/", 1)[-1]
        times = [r.time for r in slack.responses if r.url_id == url_id]
        return min(times) - self.sent if times else None


def ask(user: SlackUser, text: str, *, user_id: str) -> Asked:
    sent = time.time()
    ack, result = signed_command(user, text, user_id=user_id)
    return Asked(sent, ack, result)


def listing_rows(database_url: str) -> dict[str, int]:
    """Rows of the ``listing`` table by who made them."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            rows = session.exec(
                select(Listing.created_by, func.count()).group_by(Listing.created_by)
            )
            return {str(user): int(count) for user, count in rows}
    finally:
        engine.dispose()


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (VmRSS from /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


@dataclass
class Flood:
    """``count`` signed `/wsimg <text>` by ``user_id``, evenly over ``seconds``, sent by
    ``senders`` threads (each with its own connection per request, as Slack's are)."""

    events_url: str
    slack: SlackWebAPI
    user_id: str
    text: str = "updates"
    count: int = 1000
    seconds: float = 30.0
    senders: int = 4
    acks: list[tuple[Timed, HttpResult | None]] = field(default_factory=list)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _started: float = 0.0

    def start(self) -> Flood:
        self._started = time.monotonic()
        self._threads = [
            threading.Thread(target=self._send, name=f"flood-{n}", daemon=True)
            for n in range(self.senders)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float) -> bool:
        """Whether every command was sent and acknowledged (or failed) within ``timeout``."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def _send(self) -> None:
        user = SlackUser(self.events_url, SIGNING_SECRET, self.slack, timeout=10)
        give_up = self._started + self.seconds + 60
        while time.monotonic() < give_up:
            with self._lock:
                n, self._next = self._next, self._next + 1
            if n >= self.count:
                return
            due = self._started + n * self.seconds / self.count
            time.sleep(max(0.0, due - time.monotonic()))
            sent = signed_command(user, self.text, user_id=self.user_id)
            with self._lock:
                self.acks.append(sent)


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 90, 99)) -> list[float]:
    """Nearest-rank percentiles, and the maximum last."""
    ordered = sorted(values) or [float("nan")]
    last = len(ordered) - 1
    return [
        *(ordered[min(last, max(0, -(-p * len(ordered) // 100) - 1))] for p in points),
        ordered[-1],
    ]


@contextlib.contextmanager
def running_serve(
    database_url: str | None = None, *, images: int = 3, regions: Sequence[str] = ("us-east-1",)
) -> Iterator[tuple[WsimgProcess, SlackWebAPI, WorkSpacesSimulator]]:
    """For the scripts: the fakes, ``images`` images with an update spread over ``regions``,
    and `wsimg serve` on a database (default: SQLite in a temporary directory; the process's
    ``env`` names it)."""
    with (
        tempfile.TemporaryDirectory(prefix="wsimg-bench-") as tmp,
        WorkSpacesSimulator(pending_seconds=60) as simulator,
        SlackWebAPI(bot_token=BOT_TOKEN) as slack,
    ):
        for n in range(images):
            simulator.add_image(region=regions[n % len(regions)], name=f"Win-Bench-{n}")
        url = database_url or f"sqlite:///{tmp}/wsimg.db"
        env = process_env(simulator, slack, url, WSIMG_REGIONS=",".join(regions))
        process = WsimgProcess("serve", env, Path(tmp) / "serve.log").start()
        try:
            yield process.wait_ready(), slack, simulator
        finally:
            process.stop()
