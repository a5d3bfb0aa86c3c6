"""HTTP serving: POST /slack/events to Bolt, GET /healthz for the platform's health checks.

waitress is a production WSGI server (threads, request size limits), unlike Bolt's
development server. It reads every request whole in its one event loop before a worker
thread sees it, so a slow client costs a socket, never a thread; what took it down were
its defaults, which this module changes:

* ``connection_limit`` (default 100): with 100 connections open, waitress stops accepting,
  so 99 half-open connections were enough to make /healthz time out. Now 1,000; the process's
  soft open-files limit is raised to fit them when the hard limit allows (else the limit is
  lowered to fit), because an ``accept()`` failing with EMFILE would spin the loop.
* ``asyncore_use_poll``: ``select()`` cannot watch a descriptor numbered 1024 or more.
* A deadline for reading a request: waitress only closes connections that have been
  *inactive* for ``channel_timeout``, which a byte every 5 seconds defeats for ever.
  ``_Channel`` remembers when the request being read began (for a new connection: when it
  was accepted) and ``_TcpServer.maintenance`` closes, every second, the connections whose
  request has not arrived whole within ``REQUEST_READ_SECONDS``. Slack sends a few KB at
  once; 10 seconds is generous for it and makes an attacker reopen every connection.
  Idle kept-alive connections between requests still go after ``channel_timeout``.

Measured with tests/benchmarks/slow_connections.py (200 connections, a byte every 5 s, each
reopened when closed; 2 cores): before, neither /healthz nor a signed command was answered
within 10 s; after, both answered in milliseconds throughout (p99 under 0.05 s), every slow
connection closed after 10-11 s, resident memory unchanged. Past the limit (1,500 such
connections) a new connection waits in the listen backlog until the deadline frees a slot:
probes were answered after about 9.5 s; that much is for the load balancer in front to stop.
Another server (gunicorn with
gevent, uvicorn behind an ASGI adapter) would have meant a second concurrency model for a
problem three settings and one deadline solve.
"""

from __future__ import annotations

import io
import json
import logging
import resource
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from bot.slack.inbound import Malformed, check
from storage.db import ping

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HTTP_THREADS = 16
MAX_BODY_BYTES = 1_000_000  # Slack payloads are a few KB; a larger body is not Slack's
CONNECTION_LIMIT = 1000  # open connections before waitress stops accepting (its default: 100)
FD_HEADROOM = 200  # descriptors besides connections: database, AWS and Slack clients, logs
REQUEST_READ_SECONDS = 10  # a request's headers and body must arrive within this
IDLE_SECONDS = 30  # a kept-alive connection with no request (waitress's channel_timeout)


class WsgiApp:
    """Routes requests. Slack's signature is checked here, before Bolt sees the body, so an
    unsigned or tampered request gets 401 whatever it holds; a signed request of a shape wsimg
    does not handle (bot/slack/inbound.py) gets 400 rather than a stack trace."""

    def __init__(self, app: App, engine: Engine, *, signing_secret: str, api_url: str) -> None:
        self._slack = SlackRequestHandler(app, path=EVENTS_PATH)
        self._verifier = SignatureVerifier(signing_secret)
        self._engine = engine
        self._api_url = api_url  # where response URLs may point: hooks.<its domain>

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == "/healthz" and method in ("GET", "HEAD"):
            return self._health(start_response)
        if path == EVENTS_PATH and method == "POST":
            return self._events(environ, start_response)
        return _json(start_response, "404 Not Found", {"ok": False, "error": "not found"})

    def _events(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        body = _read_body(environ)
        timestamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""))
        signed = (
            timestamp.isascii()
            and timestamp.isdecimal()
            and _is_utf8(body)  # what Slack signs always is; the verifier decodes it
            and self._verifier.is_valid(
                body=body,
                timestamp=timestamp,
                signature=str(environ.get("HTTP_X_SLACK_SIGNATURE", "")),
            )
        )
        if not signed:
            return _json(start_response, "401 Unauthorized", {"ok": False, "error": "unsigned"})
        try:
            inbound = check(body, str(environ.get("CONTENT_TYPE", "")), api_url=self._api_url)
        except Malformed as problem:
            log.warning("signed Slack request refused: %s", problem)
            return _json(start_response, "400 Bad Request", {"ok": False, "error": str(problem)})
        if inbound.body != body:  # re-encoded for Bolt: sign it as Slack did, same timestamp
            body = inbound.body
            environ = {
                **environ,
                "CONTENT_TYPE": inbound.content_type,
                "HTTP_X_SLACK_SIGNATURE": self._verifier.generate_signature(
                    timestamp=timestamp, body=body
                ),
            }
        environ = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        try:
            return self._slack(environ, start_response)
        # bot/slack/inbound.py let it through, so this is a gap in that check: logged with its
        # traceback (secrets are scrubbed from every log line) and answered as a bad request.
        except Exception:
            log.exception("signed Slack request that Bolt could not handle")
            return _json(start_response, "400 Bad Request", {"ok": False, "error": "bad request"})

    def _health(self, start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            ping(self._engine)
        except SQLAlchemyError as exc:
            log.warning("health check: database did not answer: %s", type(exc).__name__)
            return _json(
                start_response, "503 Service Unavailable", {"ok": False, "database": "down"}
            )
        return _json(start_response, "200 OK", {"ok": True, "database": "ok"})


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    return stream.read(min(max(length, 0), MAX_BODY_BYTES)) if length > 0 else b""


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json(start_response: Callable[..., Any], status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


class _Channel(HTTPChannel):
    """A waitress connection that knows since when the request it is reading has been arriving
    (None: no request under way). Runs in the event loop's thread, as ``maintenance`` does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A new connection is a request that has not arrived yet: one that sends nothing
        # cannot keep its slot longer than one that sends a byte.
        self.reading_since: float | None = self.creation_time

    def received(self, data: bytes) -> bool:
        before = self.request  # waitress's parser of the request under way, if any
        try:
            return bool(super().received(data))
        finally:
            if self.request is None:  # the request arrived whole (or nothing is under way)
                self.reading_since = None
            elif self.request is not before and (before is not None or self.reading_since is None):
                self.reading_since = time.time()  # a new request on a kept-alive connection


class _TcpServer(TcpWSGIServer):
    channel_class = _Channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stopping = threading.Event()

    def run(self) -> None:
        # waitress's loop runs until its map is empty; this one also ends within one poll
        # timeout of ``stopping`` being set, so a stop never depends on the wake-up pipe alone.
        try:
            while self._map and not self.stopping.is_set():
                wasyncore.loop(
                    timeout=self.adj.asyncore_loop_timeout,
                    map=self._map,
                    use_poll=self.adj.asyncore_use_poll,
                    count=1,
                )
        finally:
            wasyncore.close_all(self._map)  # in the loop's own thread, never under its poll()

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # connections idle for longer than channel_timeout
        cutoff = now - REQUEST_READ_SECONDS
        late = [
            channel
            for channel in self.active_channels.values()
            if not channel.requests
            and not channel.will_close
            and (getattr(channel, "reading_since", None) or now) < cutoff
        ]
        for channel in late:
            channel.will_close = True  # the loop closes it on its next pass
        if late:
            log.warning(
                "closed %d connection(s) whose request took longer than %ds to arrive",
                len(late),
                REQUEST_READ_SECONDS,
            )


def _fit_connections(wanted: int) -> int:
    """How many connections fit the open-files limit, raising the soft limit up to the hard
    one when ``wanted`` does not fit (the usual soft limit is 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + FD_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < need:
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        if raised > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted
    fit = max(soft - FD_HEADROOM, soft // 2)
    log.warning("open-files limit %d: serving at most %d connections", soft, fit)
    return fit


class Server:
    """A waitress server: ``run()`` serves until ``stop()`` is called from any thread."""

    def __init__(self, wsgi: WsgiApp, *, host: str, port: int) -> None:
        adjustments = Adjustments(
            host=host,
            port=port,
            threads=HTTP_THREADS,
            max_request_body_size=MAX_BODY_BYTES,
            ident="wsimg",
            connection_limit=_fit_connections(CONNECTION_LIMIT),
            channel_timeout=IDLE_SECONDS,
            cleanup_interval=1,  # how often maintenance runs: the read deadline's precision
            asyncore_use_poll=True,
        )
        if len(adjustments.listen) != 1:
            raise ValueError(f"serve on one address, not {host!r}")
        dispatcher = ThreadedTaskDispatcher()
        dispatcher.set_thread_count(adjustments.threads)
        self._server = _TcpServer(
            wsgi, map={}, dispatcher=dispatcher, adj=adjustments, sockinfo=adjustments.listen[0]
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.effective_port)

    def run(self) -> None:
        self._server.run()

    def start(self) -> Server:
        """Serve in a background thread (the demo and the tests)."""
        self._thread = threading.Thread(target=self.run, name="waitress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        # Closing the sockets from another thread would pull them out from under poll(): the
        # loop closes them itself once it sees ``stopping``; the trigger wakes it at once.
        server = self._server
        server.stopping.set()
        try:
            server.trigger.pull_trigger()
        except OSError as exc:  # the pipe is gone: the loop still ends within its timeout
            log.warning("stopping the server without its wake-up pipe: %s", exc)
        if self._thread is not None:
            self._thread.join(timeout=10)
        server.task_dispatcher.shutdown()


def make_server(wsgi: WsgiApp, *, host: str = "0.0.0.0", port: int = 3000) -> Server:  # noqa: S104
    return Server(wsgi, host=host, port=port)
