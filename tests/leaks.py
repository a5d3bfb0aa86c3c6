"""The secrets the tests plant and the scanner that looks for them (test_secrets.py,
test_secrets_processes.py): any WINDOW characters in a row of a secret, plain or escaped, in
log records, process output, Slack traffic, HTTP answers, AWS calls and the database; and any
response_url of the requests sent."""

from __future__ import annotations

import dataclasses
import json
import logging
import traceback
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from bot.fakes.slack import HttpResult, SlackWebAPI
from bot.fakes.workspaces import WorkSpacesSimulator
from tests.conftest import (
    BOT_TOKEN,
    SIGNING_SECRET,
)

APP_TOKEN = "xapp-1-A0WSIMG-4242-test-app-token-do-not-log"
# A bot token Slack refuses (revoked, or of another workspace): still a secret.
REFUSED_TOKEN = "xoxb-9999-refused-bot-token-do-not-log"
SECRETS = {
    "SLACK_BOT_TOKEN": BOT_TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "SLACK_APP_TOKEN": APP_TOKEN,
}
WINDOW = 12  # any 12 characters in a row of a secret count as a leak


# --------------------------------------------------------------------------------------------
# The scanner
# --------------------------------------------------------------------------------------------


def _needles(secret: str) -> set[str]:
    """The secret, its encodings, and every WINDOW-long piece of it (a truncated leak)."""
    forms = {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}
    pieces = {secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1)}
    return forms | pieces


def find_leaks(found: Iterable[tuple[str, str]], secrets: dict[str, str]) -> list[str]:
    """``where: NAME`` for each (where, text) holding a piece of a secret."""
    needles = {name: _needles(value) for name, value in secrets.items()}
    leaks = []
    for where, text in found:
        for name, pieces in needles.items():
            hit = next((p for p in pieces if p in text), None)
            if hit is not None:
                start = text.index(hit)
                excerpt = text[max(0, start - 80) : start + len(hit) + 40]
                leaks.append(f"{where}: {name} in …{excerpt!r}…")
    return leaks


def _dump(value: Any) -> str:
    return json.dumps(value, default=repr, sort_keys=True)


def _exc_text(exc_info: Any) -> str:
    return "".join(traceback.format_exception(*exc_info))


def log_texts(records: Iterable[logging.LogRecord], formatted: str) -> Iterator[tuple[str, str]]:
    """Everything a log handler or formatter could write from these records."""
    yield "log text", formatted
    for record in records:
        where = f"log record {record.name}:{record.lineno}"
        try:
            message = record.getMessage()
        except Exception as exc:  # noqa: BLE001 (a broken record is shown, not fatal)
            message = f"<unformattable: {exc!r}>"
        yield where, message
        yield f"{where} attributes", repr(vars(record))
        if record.exc_info and record.exc_info[0] is not None:
            yield f"{where} exception", _exc_text(record.exc_info)


def slack_texts(slack: SlackWebAPI) -> Iterator[tuple[str, str]]:
    """Everything the app sent to Slack and Slack answered, as the stand-in recorded it."""
    for call in slack.calls:
        yield f"Slack {call.method} call", _dump(dataclasses.asdict(call))
    for response in slack.responses:
        yield "response_url payload", _dump(response._asdict())
    for rejected in slack.rejected_responses:
        yield "refused response_url payload", _dump(rejected)
    for entry in slack.timeline:
        yield f"Slack timeline {entry.kind}", _dump(dataclasses.asdict(entry))
    for message in slack.posts():
        yield "Slack channel message", _dump(dataclasses.asdict(message))
    yield "Slack ephemerals", _dump(slack.ephemerals())


def aws_texts(simulator: WorkSpacesSimulator) -> Iterator[tuple[str, str]]:
    for call in simulator.calls:
        yield f"AWS {call.operation} call", _dump(dataclasses.asdict(call))


def http_texts(results: Iterable[HttpResult]) -> Iterator[tuple[str, str]]:
    for result in results:
        yield f"HTTP answer {result.status}", _dump([result.headers, result.body])


def database_texts(engine: sa.Engine) -> Iterator[tuple[str, str]]:
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows = connection.execute(sa.select(table)).all()
            yield f"database table {table.name}", _dump([list(row) for row in rows])


def response_url_leaks(
    found: Iterable[tuple[str, str]], results: Iterable[HttpResult]
) -> list[str]:
    """``where: url`` for each text holding a response_url of ``results``, or its id (the
    stand-in's last path segment), plain, percent-encoded or JSON-escaped."""
    urls = {r.response_url for r in results if r.response_url}
    assert urls, "no request carried a response_url: nothing to look for"
    needles = {
        url: {
            url,
            quote(url, safe=""),
            url.replace("/", "\\/"),
            url.rsplit("/", 1)[1],
        }
        for url in urls
    }
    return [
        f"{where}: {url}"
        for where, text in found
        for url, forms in needles.items()
        if any(form in text for form in forms)
    ]
