"""ErrorDetails: a hint for the common codes, WorkSpaces' message for the rest, nothing lost."""

from __future__ import annotations

import botocore.session
import pytest

from bot.aws.error_details import HINTS, LIMIT, NO_MESSAGE, detail_line, detail_lines

ENUM = (
    botocore.session.get_session()
    .get_service_model("workspaces")
    .shape_for("WorkspaceImageErrorDetailCode")
)


def test_every_hinted_code_is_one_workspaces_can_send() -> None:
    """A code renamed or dropped from botocore's model fails here, not silently in Slack."""
    assert ENUM.enum, "botocore's model no longer lists WorkspaceImageErrorDetailCode"
    assert sorted(set(HINTS) - set(ENUM.enum)) == []


@pytest.mark.parametrize(
    "code",
    [
        "AntiVirusInstalled",
        "FirewallEnabled",
        "RemoteDesktopServicesDisabled",
        "AutoLogonEnabled",
        "WorkspacesBYOLAccountNotFound",
        "WorkspacesBYOLAccountDisabled",
        "DomainJoined",
        "AzureDomainJoined",
        "DHCPDisabled",
        "DiskFreeSpace",
        "InsufficientDiskSpace",
        "OSNotSupported",
        "WindowsUpdatesEnabled",
        "WindowsUpdatesRequired",
        "InPlaceUpgrade",
        "SysPrepFileMissing",
        "ZeroRearmCount",
    ],
)
def test_the_common_codes_have_a_one_sentence_hint(code: str) -> None:
    hint = HINTS[code]
    assert hint.endswith(".") and "\n" not in hint and len(hint) < 200


def test_a_known_code_gets_its_hint_and_an_unknown_one_the_message_workspaces_gave() -> None:
    lines = detail_lines(
        [
            ("AntiVirusInstalled", "Antivirus software detected"),
            ("UnknownError", "Something unexpected happened"),
            ("SomeFutureCode", "A brand-new check failed"),
            ("InvalidIp", ""),
        ]
    )
    assert lines == [
        f"AntiVirusInstalled — {HINTS['AntiVirusInstalled']}",
        "UnknownError — Something unexpected happened",
        "SomeFutureCode — A brand-new check failed",
        f"InvalidIp — {NO_MESSAGE}",
    ]


def test_aws_text_is_quoted_and_flattened_to_one_line() -> None:
    line = detail_line("UnknownError", "a <b>\n  c & d", quote=lambda s: s.replace("<", "&lt;"))
    assert line == "UnknownError — a &lt;b> c & d"


def test_too_many_details_end_with_how_many_more_and_stay_within_the_limit() -> None:
    details = [("UnknownError", f"problem {n} " + "x" * 300) for n in range(40)]
    lines = detail_lines(details, bullet="• ")
    text = "\n".join(lines)
    assert len(text) <= LIMIT
    shown = len(lines) - 1
    assert 0 < shown < 40
    assert lines[-1] == f"• … and {40 - shown} more"
    assert all(f"problem {n} " in lines[n] for n in range(shown))


def test_details_that_fit_are_all_shown_without_a_more_line() -> None:
    details = [(code, "") for code in sorted(HINTS)]
    lines = detail_lines(details, limit=100_000)
    assert len(lines) == len(HINTS) and not any("more" in line[-5:] for line in lines)


def test_a_tight_limit_still_says_how_many_details_there_are() -> None:
    assert detail_lines([("UnknownError", "x" * 300)] * 3, limit=50) == ["… and 3 more"]


def test_one_long_message_is_cut_not_dropped() -> None:
    [line] = detail_lines([("UnknownError", "y" * 5000)])
    assert line.startswith("UnknownError — yyy") and line.endswith("…") and len(line) < 500
