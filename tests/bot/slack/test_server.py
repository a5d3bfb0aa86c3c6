"""The HTTP server's own life: it stops when asked, whatever became of its wake-up pipe."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, cast

import pytest

from bot.slack.server import Server, WsgiApp, make_server


def _hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def _serving() -> Server:
    server = make_server(cast(WsgiApp, _hello), host="127.0.0.1", port=0).start()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5) as answer:
        assert answer.read() == b"ok"
    return server


def _refuses(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_stop_closes_the_port_and_ends_the_loop() -> None:
    server = _serving()
    server.stop()
    assert server._thread is not None and not server._thread.is_alive()
    assert _refuses(server.port)


def test_stop_ends_the_loop_when_its_wake_up_pipe_is_already_gone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Seen once in CI: the pipe waitress wakes its loop with was closed under it, and stop()
    # raised EBADF, leaving the port open and the thread running.
    server = _serving()
    trigger = server._server.trigger
    os.close(trigger.trigger)  # the write end, as the failure found it
    server.stop()
    assert server._thread is not None and not server._thread.is_alive()
    assert _refuses(server.port)
    assert "without its wake-up pipe" in caplog.text
