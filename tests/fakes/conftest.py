"""Fixtures of the fake world's own tests: the Slack stand-in with a WebClient, a capturing
events endpoint and a real Bolt app; the WorkSpaces simulator on a fake clock with boto3."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import boto3
import botocore.config
import pytest
from botocore.retries.standard import ExponentialBackoff
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient

from bot.fakes.slack import SlackWebAPI
from bot.fakes.workspaces import CLEARED_ENV, WorkSpacesSimulator
from tests.fakes.slack_kit import SECRET, TOKEN, Capture
from tests.fakes.workspaces_kit import FakeClock

# -- the Slack stand-in ----------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[SlackWebAPI]:
    with SlackWebAPI(bot_token=TOKEN) as fake:
        yield fake


@pytest.fixture
def client(api: SlackWebAPI) -> WebClient:
    return WebClient(token=TOKEN, base_url=api.api_url)


# -- a stand-in for the bot's events endpoint, to see exactly what SlackUser sends -----------


@pytest.fixture
def events() -> Iterator[tuple[str, Capture]]:
    capture = Capture()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            capture.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(capture.reply_status)
            self.send_header("Content-Type", capture.reply_type)
            self.send_header("Content-Length", str(len(capture.reply_body)))
            self.end_headers()
            self.wfile.write(capture.reply_body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slack/events", capture
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- a real Bolt app -------------------------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def bolt_app(api: SlackWebAPI) -> Iterator[tuple[str, App]]:
    app = App(
        token=TOKEN,
        signing_secret=SECRET,
        client=WebClient(token=TOKEN, base_url=api.api_url),
    )
    server = make_server(
        "127.0.0.1",
        0,
        SlackRequestHandler(app),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/slack/events", app
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- the WorkSpaces simulator ---------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[WorkSpacesSimulator]:
    with WorkSpacesSimulator(pending_seconds=60, clock=clock, seed=7) as simulator:
        for name in CLEARED_ENV:
            monkeypatch.delenv(name, raising=False)
        for name, value in simulator.environment(region="us-east-1").items():
            monkeypatch.setenv(name, value)
        yield simulator


@pytest.fixture
def unchecked_ws(sim: WorkSpacesSimulator) -> Any:
    """A client that skips botocore's own checks, so only the simulator can refuse a value."""
    config = botocore.config.Config(parameter_validation=False)
    return boto3.client("workspaces", region_name="us-east-1", config=config)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's retry decisions but skip its jittered sleeps (up to seconds each)."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def ws(sim: WorkSpacesSimulator) -> Any:
    return boto3.client("workspaces", region_name="us-east-1")
