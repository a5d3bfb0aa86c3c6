"""HTTP serving: POST /slack/events to Bolt, GET /healthz for the platform's health checks.

waitress is a production WSGI server (threads, request size limits), unlike Bolt's
development server.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from waitress import wasyncore
from waitress.server import create_server

from bot.inbound import Malformed, check
from storage.db import ping

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SLACK_API_URL = "https://slack.com/api/"
HTTP_THREADS = 16
MAX_BODY_BYTES = 1_000_000  # Slack payloads are a few KB; a larger body is not Slack's


class WsgiApp:
    """Routes requests. Slack's signature is checked here, before Bolt sees the body, so an
    unsigned or tampered request gets 401 whatever it holds; a signed request of a shape wsimg
    does not handle (bot/inbound.py) gets 400 rather than a stack trace."""

    def __init__(
        self, app: App, engine: Engine, *, signing_secret: str, api_url: str = SLACK_API_URL
    ) -> None:
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
        # bot/inbound.py let it through, so this is a gap in that check: logged with its
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


class Server:
    """A waitress server: ``run()`` serves until ``stop()`` is called from any thread."""

    def __init__(self, wsgi: WsgiApp, *, host: str, port: int) -> None:
        self._server = create_server(
            wsgi,
            host=host,
            port=port,
            threads=HTTP_THREADS,
            max_request_body_size=MAX_BODY_BYTES,
            ident="wsimg",
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
        # Closing the sockets from another thread would pull them out from under select();
        # the trigger runs the close inside the loop's own thread, and the loop then ends.
        server = self._server
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        if self._thread is not None:
            self._thread.join(timeout=10)
        server.task_dispatcher.shutdown()


def make_server(wsgi: WsgiApp, *, host: str = "0.0.0.0", port: int = 3000) -> Server:  # noqa: S104
    return Server(wsgi, host=host, port=port)
