"""An image that ends in ERROR with ErrorDetails, through the real app: the follow-up in the
approval thread and `/wsimg status` list every detail, with a hint for the codes wsimg knows
and WorkSpaces' own message for the others; the request and its `error` event keep them."""

from __future__ import annotations

import botocore.session

from bot.aws.error_details import HINTS
from bot.slack.blocks import SECTION_TEXT
from bot.slack.render import blocks_to_text
from storage import crud
from storage.db import session_scope
from tests.conftest import World

DETAILS = [
    ("AntiVirusInstalled", "Third-party antivirus software found"),
    ("FirewallEnabled", "Windows Firewall is on for the Domain profile"),
    ("UnknownError", "The image check stopped: <unexpected> state & no log"),
    ("DomainJoined", "The machine is joined to corp.example.com"),
    ("InvalidIp", "The network adapter has the address 169.254.10.20"),
]
UNHINTED = ("UnknownError", "InvalidIp")


def _failed(world: World, name: str, details: list[tuple[str, str]]) -> tuple[str, str]:
    """Approve an update of a new image whose build ends in ERROR with ``details``; poll
    until its follow-up is posted. The request id and the follow-up's text."""
    image = world.simulator.add_image(region="us-east-1", name=name)
    world.simulator.fail_build(image, "UpdateFailed", "The image failed its checks", details)
    request = world.approved(image)
    world.simulator.complete_pending()
    assert world.poll().followups == 1
    [reply] = world.slack.thread(request.channel_id, request.message_ts)
    for block in reply.blocks:
        assert len(block.get("text", {}).get("text", "")) <= SECTION_TEXT
    return request.id, blocks_to_text(reply.blocks)


def _says_every_detail(text: str) -> None:
    assert all(code not in HINTS for code in UNHINTED), "the test needs codes without hints"
    for code, message in DETAILS:
        said = message if code in UNHINTED else HINTS[code]
        assert f"{code} — {said}" in text, (code, text)


def test_the_error_follow_up_names_every_detail_with_its_hint_or_message(world: World) -> None:
    request_id, text = _failed(world, "Win-Checks", DETAILS)

    assert "ERROR" in text and "UpdateFailed" in text and "failed its checks" in text
    _says_every_detail(text)
    final = world.reload(request_id)
    assert final.error_details == [list(pair) for pair in DETAILS]
    with session_scope(world.services.engine) as session:
        [error] = [
            e for e in crud.events(session=session, request_id=request_id) if e.kind == "error"
        ]
    assert error.detail["error_details"] == [list(pair) for pair in DETAILS]


def test_status_of_the_failed_request_lists_the_details_too(world: World) -> None:
    request_id, _ = _failed(world, "Win-Status-Checks", DETAILS)
    short_id = world.reload(request_id).short_id

    text = blocks_to_text(world.answer(world.command(f"status {short_id}"))["blocks"])

    assert "ended in ERROR" in text
    _says_every_detail(text)


def test_details_past_one_section_end_with_how_many_more(world: World) -> None:
    codes = (
        botocore.session.get_session()
        .get_service_model("workspaces")
        .shape_for("WorkspaceImageErrorDetailCode")
        .enum
    )
    details = [(code, f"{code} check failed: " + "x" * 200) for code in codes]

    _, text = _failed(world, "Win-Everything-Wrong", details)

    listed = [code for code in codes if f"• {code} — " in text]
    last = text.rstrip().splitlines()[-1]
    assert last.startswith("• … and ") and last.endswith(" more")
    assert listed == list(codes[: len(listed)])  # in WorkSpaces' order
    assert len(listed) + int(last.split()[3]) == len(codes)  # shown + "N more" = all of them
