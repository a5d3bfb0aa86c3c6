"""Outbound only to Slack: a signed payload cannot make the bot POST anywhere else.

Bolt's ``respond`` — and so its error path — posts to the first response URL a payload
carries, ``response_url`` or ``response_urls[0].response_url``. Every payload type's URLs are
checked before Bolt sees them, and the reason modal's ``private_metadata`` must be what wsimg
wrote (2,999 ``[`` used to reach the recursion limit, answer 500 and post the error to the
payload's URL). Each refusal is a 400 from the server before Bolt runs, so the HTTP answer
proves that no listener and no error path was started; a local HTTP listener plays the foreign
address and must have received nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.config import Settings
from bot.fakes.slack import APP_ID, VERIFICATION_TOKEN, HttpResult, ModalView, find_buttons
from bot.slack.ids import CLOSE_VIEW, REASON_BLOCK, REASON_INPUT
from storage.models import State, UpdateRequest
from tests.conftest import APPROVER, GROUP_MEMBER, World

DECIDER = GROUP_MEMBER  # four eyes: another approver rejects the request APPROVER made


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"four_eyes": True})


class Foreign:
    """An HTTP listener on 127.0.0.1 that is not Slack: it records whatever reaches it."""

    def __init__(self) -> None:
        received: list[tuple[str, str, bytes]] = []
        self.received = received

        class Record(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append((self.command, self.path, self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = do_PUT = _record

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/T0/B0/x"

    def __enter__(self) -> Foreign:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def foreign() -> Iterator[Foreign]:
    with Foreign() as listener:
        yield listener


def _post_payload(world: World, payload: dict[str, Any]) -> HttpResult:
    return world.user.post(urlencode({"payload": json.dumps(payload)}).encode())


def _request_and_reason_modal(world: World) -> tuple[UpdateRequest, ModalView]:
    """A real request, and the real reason modal its Reject button opened for DECIDER."""
    image = world.simulator.add_image(region="us-east-1", name="Win-Outbound")
    request = world.approved(image)
    assert request.channel_id and request.message_ts
    message = world.slack.message(request.channel_id, request.message_ts)
    assert message is not None
    [reject] = [b for b in find_buttons(message.blocks) if b["text"] == "Reject"]
    assert world.user.click_button(reject, user_id=DECIDER, message=message).status == 200
    return request, world.slack.wait_for_view(DECIDER, callback_id=CLOSE_VIEW, timeout=15)


def _submission(world: World, view: ModalView, **changes: Any) -> dict[str, Any]:
    """The view_submission Slack sends for ``view`` with a reason typed in, then ``changes``
    (top-level fields; ``private_metadata`` goes into the view)."""
    submitted = {**view.view}
    submitted["state"] = {
        "values": {REASON_BLOCK: {REASON_INPUT: {"type": "plain_text_input", "value": "Not now"}}}
    }
    if "private_metadata" in changes:
        submitted["private_metadata"] = changes.pop("private_metadata")
    payload = {
        "type": "view_submission",
        "team": {"id": "T0WSIMG", "domain": "wsimg-demo"},
        "user": {"id": DECIDER, "username": "groupie", "name": "groupie", "team_id": "T0WSIMG"},
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": world.slack.new_trigger_id(user_id=DECIDER),
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    payload.update(changes)
    return payload


def _entry(url: str) -> dict[str, str]:
    """One ``response_urls`` entry, as Slack sends it for a conversation select in a modal."""
    return {"block_id": "where", "action_id": "channel", "channel_id": "C0OPS", "response_url": url}


def _nothing_went_out(world: World, foreign: Foreign, answered: int) -> None:
    """No request reached the foreign listener, no answer reached Slack since ``answered``
    answers had, and the reason modal decided nothing."""
    assert foreign.received == []
    assert len(world.slack.responses) == answered and world.slack.rejected_responses == []
    assert [r.state for r in world.requests()] == [State.requested]
    assert world.simulator.count("CreateUpdatedWorkspaceImage") == 0


def test_a_view_submission_naming_a_foreign_response_url_is_refused(
    world: World, foreign: Foreign
) -> None:
    _, view = _request_and_reason_modal(world)
    answered = len(world.slack.responses)

    for changes in (
        {"response_urls": [_entry(foreign.url)]},
        {
            "response_urls": [
                _entry(world.slack.new_response_url(channel="C0OPS")),
                _entry(foreign.url),
            ]
        },
        {"response_url": foreign.url},
    ):
        result = _post_payload(world, _submission(world, view, **changes))
        assert result.status == 400, (changes, result.body)
        assert "response_url" in result.body

    _nothing_went_out(world, foreign, answered)
    # The same modal, submitted as Slack submits it, is served: only the URLs were refused.
    assert world.user.submit_view(view, {"reason": "Not during the close"}).view_closed
    assert [r.state for r in world.requests()] == [State.rejected]


HOSTILE_METADATA = {
    "2999-brackets": "[" * 2999,
    "2999-braces": '{"a":' * 599,
    "a-list": "[]",
    "a-string": '"request"',
    "null": "null",
    "request-a-number": '{"request": 5, "cancel": false}',
    "cancel-a-string": '{"request": "%(id)s", "cancel": "no"}',
    "request-nested": '{"request": {"id": "%(id)s"}, "cancel": false}',
    "an-extra-key": '{"request": "%(id)s", "cancel": false, "respond_to": "http://x"}',
    "channel-not-an-id": '{"request": "%(id)s", "cancel": false, "channel": "#ops!"}',
    "empty": "",
    "not-json": "{request: 1}",
}


def test_a_reason_modal_with_metadata_wsimg_did_not_write_is_refused(
    world: World, foreign: Foreign, subtests: pytest.Subtests
) -> None:
    request, view = _request_and_reason_modal(world)
    answered = len(world.slack.responses)
    slack_url = world.slack.new_response_url(channel="C0OPS", user_id=DECIDER)

    for name, metadata in HOSTILE_METADATA.items():
        with subtests.test(msg=name):
            payload = _submission(
                world,
                view,
                private_metadata=metadata.replace("%(id)s", request.id),
                response_urls=[_entry(slack_url)],
            )
            result = _post_payload(world, payload)
            assert result.status == 400, result.body
            assert "private_metadata" in result.body

    assert world.slack.responses_for(slack_url) == []
    _nothing_went_out(world, foreign, answered)
    assert world.user.submit_view(view, {"reason": "Not during the close"}).view_closed
    assert [r.state for r in world.requests()] == [State.rejected]


def _command(url: str) -> bytes:
    return urlencode(
        {
            "command": "/wsimg",
            "text": "updates",
            "user_id": APPROVER,
            "channel_id": "C0OPS",
            "team_id": "T0WSIMG",
            "api_app_id": APP_ID,
            "response_url": url,
        }
    ).encode()


def _interaction(kind: str, **urls: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": kind,
        "team": {"id": "T0WSIMG"},
        "user": {"id": APPROVER, "team_id": "T0WSIMG"},
        "api_app_id": APP_ID,
        **urls,
    }
    if kind == "block_actions":
        payload["actions"] = [{"action_id": "wsimg.page:2", "value": "k", "type": "button"}]
    else:
        payload["view"] = {"id": "V1", "type": "modal", "callback_id": "other", "state": {}}
    return payload


EVERY_KIND = ("block_actions", "view_submission", "view_closed")


@pytest.mark.parametrize(
    "how",
    [
        "command",
        *(f"{kind} response_url" for kind in EVERY_KIND),
        *(f"{kind} response_urls" for kind in EVERY_KIND),
    ],
)
def test_every_payload_type_naming_a_foreign_response_url_is_refused(
    world: World, foreign: Foreign, how: str
) -> None:
    kind, _, field = how.partition(" ")
    if kind == "command":
        result = world.user.post(_command(foreign.url))
    elif field == "response_url":
        result = _post_payload(world, _interaction(kind, response_url=foreign.url))
    else:
        slack_url = world.slack.new_response_url(channel="C0OPS")
        urls: dict[str, Any] = {"response_urls": [_entry(foreign.url)]}
        if kind == "block_actions":
            urls["response_url"] = slack_url  # required there; the list is what is foreign
        result = _post_payload(world, _interaction(kind, **urls))

    assert result.status == 400, result.body
    assert "response_url" in result.body
    assert foreign.received == [] and world.slack.responses == []
    assert world.simulator.calls == []
