"""The simulator on the wire: the protocols botocore sends (AWS JSON 1.1 for WorkSpaces, the
query protocol with XML answers for STS), their error shapes, paging tokens, and the HTTP
server that hands each request to the simulator."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "WorkspacesService."
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


class SimulatorError(Exception):
    """An error answer: HTTP ``status`` with AWS error ``code`` and ``message``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _request_id() -> str:
    return str(uuid.uuid4())


def json_response(result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(result).encode()
    return 200, {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-RequestId": _request_id()}, body


def json_error(err: SimulatorError) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"__type": err.code, "message": err.message}).encode()
    headers = {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-RequestId": _request_id()}
    return err.status, headers, body


def sts_response(action: str, result_xml: str) -> tuple[int, dict[str, str], bytes]:
    body = (
        f'<{action}Response xmlns="{STS_NAMESPACE}"><{action}Result>{result_xml}</{action}Result>'
        f"<ResponseMetadata><RequestId>{_request_id()}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    )
    return 200, {"Content-Type": "text/xml"}, body.encode()


def sts_error(err: SimulatorError) -> tuple[int, dict[str, str], bytes]:
    code = err.code.removesuffix("Exception") if err.code != "ThrottlingException" else "Throttling"
    body = (
        f'<ErrorResponse xmlns="{STS_NAMESPACE}"><Error><Type>Sender</Type>'
        f"<Code>{escape(code)}</Code><Message>{escape(err.message)}</Message></Error>"
        f"<RequestId>{_request_id()}</RequestId></ErrorResponse>"
    )
    return err.status, {"Content-Type": "text/xml"}, body.encode()


def make_token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(f"v1:{offset}:{fingerprint}".encode()).decode()


def read_token(token: str, fingerprint: str) -> int:
    try:
        version, offset, seen = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        if version != "v1" or seen != fingerprint:
            raise ValueError(token)
        return int(offset)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise SimulatorError(
            "InvalidParameterValuesException",
            "The NextToken is invalid or belongs to a different query.",
        ) from exc


Answer = tuple[int, dict[str, str], bytes]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "WorkSpacesSimulator"
    # Headers and body go out in two writes: with Nagle's algorithm on, the second waits for
    # the client's delayed ACK (about 40 ms on Linux) on a kept-alive connection, a delay real
    # AWS does not add and the benchmark's latency figures must not carry.
    disable_nagle_algorithm = True
    server: SimulatorServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, payload = self.server.answer(self.command, headers, body)
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], answer: Callable[[str, Mapping[str, str], bytes], Answer]
    ) -> None:
        super().__init__(address, _Handler)
        self.answer = answer
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive connections so their handler threads finish."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # the client went away; nothing to report
        super().handle_error(request, client_address)
