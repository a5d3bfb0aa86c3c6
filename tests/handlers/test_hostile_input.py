"""Hostile and broken input, sent as Slack sends it (signed, over HTTP) to the real app.

Property-based: hypothesis generates slash-command text, slash-command forms, interactive
payloads of every broken shape, forged values on our own action ids, and real offer keys used by
the wrong people or on the wrong buttons. Whatever arrives, for every request:

* the HTTP status is below 500;
* no CreateUpdatedWorkspaceImage reaches the WorkSpaces simulator;
* no UpdateRequest row is written;
* nothing is logged at ERROR (the app logs every unexpected exception there, see
  handlers/errors.py; so do Bolt and waitress), checked once every listener the request
  started, the lazy ones included, has finished;
* where the request is ours and well-formed enough, the user gets an answer Slack accepts;
* the app still serves: /healthz answers 200 after every request, and after every run a normal
  `/wsimg updates` by an approver still answers with the listing.

Runs are derandomized (a fixed seed, no example database), so CI sees the same inputs every
time. Each property counts the requests it sent; one database parametrization alone sends more
than 500 generated requests. ``test_minimal_hostile_inputs`` holds the smallest input that shows
each defect found so far, next to neighbours that work, one subtest each.

Bolt runs the lazy listeners in a thread pool after the ack, and the invariants can only be
checked once they have finished: ``hostile`` (tests/handlers/hostile.py) waits on the world's
listener pool. What is sent is drawn by the strategies in tests/handlers/hostile_inputs.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot.fakes.slack import HttpResult
from bot.slack.ids import CLOSE_VIEW, Action
from bot.slack.inbound import USER_ID
from tests.conftest import APPROVER, GROUP_MEMBER, OUTSIDER
from tests.handlers.hostile import OTHER_CHANNEL, Hostile
from tests.handlers.hostile_inputs import (
    ANSWERED_ACTIONS,
    FRESH_URL,
    MINUTES_60,
    SUBCOMMANDS,
    TEXT_FAMILIES,
    UNKNOWN_URL,
    Forged,
    Form,
    base_payload,
    broken_payloads,
    click,
    command_forms,
    command_texts,
    fill,
    forged_clicks,
    misused_keys,
    subcommand,
)

# Examples per property and database; their sum is what one parametrization sends.
TEXT_EXAMPLES_EACH = 25  # x 7 families of text
FORM_EXAMPLES = 100
PAYLOAD_EXAMPLES = 130
FORGED_EXAMPLES_EACH = 20  # x 7 action id prefixes
MISUSED_EXAMPLES = 80


def _run_settings(max_examples: int) -> hypothesis_settings:
    return hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# --------------------------------------------------------------------------------------------
# The properties
# --------------------------------------------------------------------------------------------


def _sent_at_least(hostile: Hostile, examples: int) -> None:
    # Hypothesis may stop a little short of max_examples (duplicates); most must have run.
    assert hostile.sent >= examples * 9 // 10, f"only {hostile.sent} requests were sent"


def test_slash_command_text_of_any_kind(hostile: Hostile, subtests: pytest.Subtests) -> None:
    """A subtest per family of text, so that each subcommand gets its share of examples and a
    defect in one family does not stop the others from running."""
    for family in TEXT_FAMILIES:
        with subtests.test(msg=family):

            @_run_settings(TEXT_EXAMPLES_EACH)
            @given(
                text=command_texts(family),
                user=st.sampled_from((APPROVER, GROUP_MEMBER, OUTSIDER)),
                channel=st.sampled_from(("C0OPS", OTHER_CHANNEL, "D0DIRECT")),
            )
            def run(text: str, user: str, channel: str) -> None:
                result = hostile.command(text, user_id=user, channel_id=channel)
                if "\x00" in text:  # Slack never sends a NUL: refused with 400, answered never
                    assert result.status == 400, result.body[:200]
                    hostile.check(result)
                    return
                later = subcommand(text) in SUBCOMMANDS  # else the help text, in the ack
                answer_at = result.response_url if later else None
                hostile.check(result, answer_at=answer_at, ack_answers=not later)

            run()
    _sent_at_least(hostile, TEXT_EXAMPLES_EACH * len(TEXT_FAMILIES))
    hostile.still_serves()


def test_slash_command_forms_with_fields_missing_or_of_the_wrong_type(hostile: Hostile) -> None:
    @_run_settings(FORM_EXAMPLES)
    @given(form=command_forms())
    def run(form: Form) -> None:
        url = hostile.response_url()
        result = hostile.post(form.body(url), content_type=form.content_type)
        hostile.check(result, answer_at=url if form.well_formed else None)

    run()
    _sent_at_least(hostile, FORM_EXAMPLES)
    hostile.still_serves()


def test_interactive_payloads_of_every_broken_shape(hostile: Hostile) -> None:
    @_run_settings(PAYLOAD_EXAMPLES)
    @given(payload=broken_payloads())
    def run(payload: Any) -> None:
        result = hostile.post_payload(fill(payload, hostile.response_url()))
        hostile.check(result)

    run()
    _sent_at_least(hostile, PAYLOAD_EXAMPLES)
    hostile.still_serves()


def _answered(forged: Forged) -> bool:
    """Whether the clicker must get an answer: one of our buttons, within what Slack sends (an
    action_id over 255 characters, a value over 2000 or a user that is no Slack user ID never
    comes from Slack: a 400 will do)."""
    fits = (
        len(forged.action.value + forged.suffix) <= 255
        and (forged.value is None or (isinstance(forged.value, str) and len(forged.value) <= 2000))
        and isinstance(forged.user, str)
        and USER_ID.fullmatch(forged.user) is not None
    )
    return forged.action in ANSWERED_ACTIONS and fits


def test_our_action_ids_with_forged_values(hostile: Hostile, subtests: pytest.Subtests) -> None:
    """A subtest per action id prefix (bot/slack/ids.py), each with its share of examples."""
    for action in Action:
        with subtests.test(msg=action.value):

            @_run_settings(FORGED_EXAMPLES_EACH)
            @given(forged=forged_clicks(action))
            def run(forged: Forged) -> None:
                result, url = click(hostile, forged)
                hostile.check(result, answer_at=url if _answered(forged) else None)

            run()
    _sent_at_least(hostile, FORGED_EXAMPLES_EACH * len(Action))
    hostile.still_serves()


def test_real_keys_clicked_by_the_wrong_people_or_on_the_wrong_button(hostile: Hostile) -> None:
    @_run_settings(MISUSED_EXAMPLES)
    @given(forged=misused_keys())
    def run(forged: Forged) -> None:
        result, url = click(hostile, forged)
        hostile.check(result, answer_at=url if _answered(forged) else None)

    run()
    _sent_at_least(hostile, MISUSED_EXAMPLES)
    hostile.still_serves()


# --------------------------------------------------------------------------------------------
# The smallest input that shows each defect found, next to neighbours that work
# --------------------------------------------------------------------------------------------


Case = Callable[[Hostile], tuple[Any, str | None]]
DIGITS_OVER_LIMIT = "9" * 4301  # int() refuses more than 4300 digits (Python >= 3.11)
LONG_CRON = f"{MINUTES_60} * * * *"  # a valid cron of 178 characters


def _text(text: str, **kwargs: str) -> Case:
    def send(hostile: Hostile) -> tuple[Any, str | None]:
        result = hostile.command(text, **kwargs)
        return result, result.response_url if subcommand(text) in SUBCOMMANDS else None

    return send


def _forged(
    action: Action, value: Any = None, *, suffix: str = ":0", user: str = APPROVER, key: str = ""
) -> Case:
    def send(hostile: Hostile) -> tuple[Any, str | None]:
        result, url = click(hostile, Forged(action, suffix, value, user, key or None))
        return result, url if action in ANSWERED_ACTIONS else None

    return send


def _payload(payload: Any) -> Case:
    return lambda hostile: (hostile.post_payload(fill(payload, hostile.response_url())), None)


def _json(body: dict[str, Any]) -> Case:
    def send(hostile: Hostile) -> tuple[Any, None]:
        data = json.dumps(fill(body, hostile.response_url())).encode()
        return hostile.post(data, content_type="application/json"), None

    return send


def _form(**fields: str | None) -> Case:
    def send(hostile: Hostile) -> tuple[Any, None]:
        body = {"command": "/wsimg", "text": "history", "user_id": APPROVER, "team_id": "T0WSIMG"}
        body.update({"channel_id": "C0OPS", "api_app_id": "A0WSIMG", "response_url": FRESH_URL})
        body.update(fields)
        form = {k: v for k, v in fill(body, hostile.response_url()).items() if v is not None}
        return hostile.post(urlencode(form).encode()), None

    return send


CLICK = {"type": "block_actions", "user": {"id": APPROVER}, "response_url": FRESH_URL}
APPROVE_CLICK = {"action_id": "wsimg.approve:0", "value": "k"}
VIEW = {
    "type": "view_submission",
    "user": {"id": APPROVER, "team_id": "T0WSIMG"},
    "team": {"id": "T0WSIMG"},
    "api_app_id": "A0WSIMG",
    "view": {"id": "V1", "type": "modal", "callback_id": "other", "state": {"values": {}}},
}
URL_ENTRY = {"block_id": "b", "action_id": "a", "channel_id": "C0OPS", "response_url": FRESH_URL}


def _view_with_metadata(metadata: str) -> dict[str, Any]:
    """The reason modal submitted with ``metadata``, a Slack response URL in response_urls."""
    view = {**VIEW["view"], "callback_id": CLOSE_VIEW, "private_metadata": metadata}
    return {**VIEW, "view": view, "response_urls": [URL_ENTRY]}


def _approve_real_key(**changes: Any) -> Case:
    """A click on a real Approve key with ``changes`` to the payload Slack sends."""

    def send(hostile: Hostile) -> tuple[Any, None]:
        key = hostile.keys["approve"][0]
        payload = {**base_payload("block_actions", f"{Action.APPROVE.value}:0", key), **changes}
        return hostile.post_payload(fill(payload, hostile.response_url())), None

    return send


def _not_this_installation(case: Case) -> Case:
    """Signed by Slack, but for another workspace, org or app: 403 before any listener runs."""

    def run(hostile: Hostile) -> tuple[HttpResult, str | None]:
        result, _ = case(hostile)
        assert result.status == 403, result.body[:200]
        return result, None

    return run


def _not_from_slack(case: Case) -> Case:
    """Input real Slack never sends (NUL, an id that is no Slack ID, an action_id over 255):
    refused with 400 before any listener runs, so nobody is answered and nothing changes."""

    def run(hostile: Hostile) -> tuple[HttpResult, str | None]:
        result, _ = case(hostile)
        assert result.status == 400, result.body[:200]
        return result, None

    return run


MINIMAL_CASES: dict[str, Case] = {
    # neighbours that work
    "history-20-digits": _text("history 99999999999999999999"),
    "history-negative": _text("history -5"),
    "status-percent": _text("status %"),
    "status-underscore": _text("status _"),
    "updates-unknown-region": _text("updates xx-nowhere-9"),
    "subscribe-short-cron": _text("subscribe 0,15,30,45 8 * * mon-fri Europe/Berlin quiet"),
    "approve-key-with-like-wildcard": _forged(Action.APPROVE, "like-tail", key="approve"),
    "approve-key-upper-case": _forged(Action.APPROVE, "upper", key="approve"),
    "approve-real-key-by-outsider": _forged(Action.APPROVE, key="approve", user=OUTSIDER),
    "approve-not-updatable-by-approver": _forged(Action.APPROVE, key="not_updatable"),
    "page-20-digits": _forged(Action.PAGE, suffix=":99999999999999999999", key="all"),
    "command-response-url-unknown-to-slack": _form(response_url=UNKNOWN_URL),
    # D1: int() of more than 4300 digits raises ValueError
    "history-4301-digits": _text(f"history {DIGITS_OVER_LIMIT}"),
    "page-4301-digits": _not_from_slack(
        _forged(Action.PAGE, suffix=f":{DIGITS_OVER_LIMIT}", key="all")
    ),
    "subscribe-4301-digit-hour": _text(f"subscribe {DIGITS_OVER_LIMIT}:00"),
    # D2 (PostgreSQL): NUL in a value that reaches a query
    "status-nul": _not_from_slack(_text("status a\x00b")),
    "approve-value-nul": _not_from_slack(_forged(Action.APPROVE, "k\x00")),
    "confirm-value-nul": _not_from_slack(_forged(Action.CONFIRM, "\x00")),
    "approve-real-key-by-nul-user": _not_from_slack(
        _forged(Action.APPROVE, key="approve", user="U\x00X")
    ),
    # D3 (PostgreSQL): a value longer than its varchar column
    "subscribe-cron-over-128": _text(f"subscribe {LONG_CRON}"),
    "approve-real-key-by-100-char-user": _not_from_slack(
        _forged(Action.APPROVE, key="approve", user="U" * 100)
    ),
    "updates-by-41-char-user": _not_from_slack(_text("updates", user_id="U" * 41)),
    "subscribe-in-41-char-channel": _not_from_slack(_text("subscribe", channel_id="C" * 41)),
    # D4: signed payloads of the wrong shape crash Bolt's matchers or our listeners
    "action-without-action-id": _payload({**CLICK, "actions": [{"value": "k"}]}),
    "action-id-not-a-string": _payload({**CLICK, "actions": [{"action_id": 5}]}),
    "dialog-submission-on-our-callback-id": _payload(
        {**CLICK, "type": "dialog_submission", "callback_id": "wsimg.approve", "actions": True}
    ),
    "view-not-an-object": _payload({**CLICK, "type": "view_submission", "view": "x"}),
    "json-event-not-an-object": _json({"type": "event_callback", "event": "x", "team_id": "T"}),
    "json-command-text-a-number": _json(
        {"command": "/wsimg", "text": 5, "user_id": APPROVER, "response_url": FRESH_URL}
    ),
    # D5: a command or click without a usable response_url
    "command-without-response-url": _form(response_url=None),
    "command-response-url-not-a-url": _form(response_url="not a url"),
    "click-without-response-url": _payload(
        {"type": "block_actions", "user": {"id": APPROVER}, "actions": [APPROVE_CLICK]}
    ),
    # D6: Bolt takes any form body that contains "payload" for an interaction
    "status-payload": _text("status payload"),
    # D7: a view_submission's response URLs went unchecked, and deeply nested private_metadata
    # recursed until a 500 whose error answer went to the payload's URL
    "view-response-urls-not-slacks": _not_from_slack(
        _payload({**VIEW, "response_urls": [{**URL_ENTRY, "response_url": "http://127.0.0.1:9/"}]})
    ),
    "view-response-url-not-slacks": _not_from_slack(
        _payload({**VIEW, "response_url": "http://127.0.0.1:9/"})
    ),
    "view-metadata-2999-brackets": _not_from_slack(_payload(_view_with_metadata("[" * 2999))),
    "view-metadata-a-list": _not_from_slack(_payload(_view_with_metadata("[]"))),
    # D8: a signed request from another workspace was served (refused with 403, see
    # tests/bot/slack/test_workspace.py)
    "command-from-another-workspace": _not_this_installation(_form(team_id="T0OTHER")),
    "click-from-another-enterprise": _not_this_installation(
        _approve_real_key(enterprise={"id": "E0OTHER"})
    ),
    "click-from-another-app": _not_this_installation(_approve_real_key(api_app_id="A0OTHER")),
}


def test_minimal_hostile_inputs(hostile: Hostile, subtests: pytest.Subtests) -> None:
    """One subtest per case, in one world (a world per case costs more than the case)."""
    for name, case in MINIMAL_CASES.items():
        with subtests.test(msg=name):
            result, answer_at = case(hostile)
            hostile.check(result, answer_at=answer_at)
    hostile.still_serves()
