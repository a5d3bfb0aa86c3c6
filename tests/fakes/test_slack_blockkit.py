"""The stand-in enforces the Block Kit limits Slack enforces, and finds buttons as a user would."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError

from bot.fakes.slack import SlackUser, find_buttons, validate_blocks
from bot.slack.render import RULE, blocks_to_text
from tests.fakes.slack_kit import button, plain, section

# -- Block Kit limits ------------------------------------------------------------------------

TOO_BIG = {
    "51 blocks": [section("x")] * 51,
    "section text 3001 chars": [section("x" * 3001)],
    "26 elements in actions": [
        {"type": "actions", "elements": [button(f"a{i}", "v") for i in range(26)]}
    ],
    "action_id 256 chars": [{"type": "actions", "elements": [button("a" * 256, "v")]}],
    "block_id 256 chars": [section("x", block_id="b" * 256)],
    "duplicate action_id in message": [
        {"type": "actions", "elements": [button("approve", "1")]},
        {"type": "actions", "elements": [button("approve", "2")]},
    ],
    "duplicate block_id": [section("x", block_id="b"), section("y", block_id="b")],
    "button value 2001 chars": [{"type": "actions", "elements": [button("a", "v" * 2001)]}],
    "empty section text": [section("")],
    "unknown block type": [{"type": "fancy"}],
}


@pytest.mark.parametrize("blocks", TOO_BIG.values(), ids=TOO_BIG.keys())
def test_validate_blocks_reports_limit_breaks(blocks):
    assert validate_blocks(blocks)


def test_blocks_exactly_at_the_limits_are_accepted(client):
    at_limits = [
        section("x" * 3000, block_id="b" * 255),
        {"type": "actions", "elements": [button(f"a{i}", "v" * 2000) for i in range(24)]},
        {"type": "actions", "elements": [button("z" * 255, "v")] * 1},
        *[{"type": "divider"}] * 47,
    ]
    assert len(at_limits) == 50
    assert validate_blocks(at_limits) == []
    assert client.chat_postMessage(channel="C0OPS", text="ok", blocks=at_limits)["ok"]


def test_invalid_blocks_are_refused_with_slack_error_and_json_pointer(api, client):
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0OPS", text="x", blocks=[section("x" * 3001)])

    assert err.value.response["error"] == "invalid_blocks"
    assert err.value.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    assert api.posts() == []


def test_update_with_invalid_blocks_is_refused(client):
    ts = client.chat_postMessage(channel="C0OPS", text="x")["ts"]
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C0OPS", ts=ts, text="x", blocks=[section("x")] * 51)
    assert err.value.response["error"] == "invalid_blocks"


def test_find_buttons_lists_action_and_accessory_buttons_in_order():
    blocks = [
        section("a", block_id="s1", accessory=button("details", "d1", "Details")),
        {"type": "divider"},
        {"type": "actions", "block_id": "b2", "elements": [button("approve", "x", "Approve")]},
    ]

    assert [
        (b["action_id"], b["value"], b["block_id"], b["text"]) for b in find_buttons(blocks)
    ] == [
        ("details", "d1", "s1", "Details"),
        ("approve", "x", "b2", "Approve"),
    ]
    assert SlackUser.find_buttons(blocks) == find_buttons(blocks)


def test_find_buttons_names_the_section_each_button_is_for_and_its_confirm_dialog():
    confirm = {
        "title": plain("Sure?"),
        "text": plain("Really."),
        "confirm": plain("Yes"),
        "deny": plain("No"),
    }
    blocks = [
        section("*Win10* `wsi-aaaaaaaaa`"),
        {
            "type": "actions",
            "elements": [{**button("approve", "x", "Ok"), "confirm": confirm}],
        },
        {"type": "actions", "elements": [button("next", "p2", "Next")]},
        section("*Win11*", accessory=button("open", "o1", "Open")),
    ]

    assert [(b["text"], b["section"], b["confirm"]) for b in find_buttons(blocks)] == [
        ("Ok", "*Win10* `wsi-aaaaaaaaa`", confirm),
        ("Next", "", None),
        ("Open", "*Win11*", None),
    ]


def test_blocks_to_text_renders_each_block_kind_plainly():
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Updates available"}},
        section("*wsi-abc123def* by <@U1> <https://example.com/x|details>"),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Region*\neu-west-1"},
                {"type": "mrkdwn", "text": "*State*\nAVAILABLE"},
            ],
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "asked by a"}]},
        {"type": "divider"},
        {"type": "actions", "elements": [button("a", "1", "Approve"), button("r", "1", "Reject")]},
    ]

    assert blocks_to_text(blocks, user_names={"U1": "alice"}) == "\n".join(
        [
            "Updates available",
            "wsi-abc123def by @alice details (https://example.com/x)",
            "  Region eu-west-1",
            "  State AVAILABLE",
            "asked by a",
            RULE,
            "[ Approve ]  [ Reject ]",
        ]
    )
