"""The scan's progress message (bot/slack/progress.py) on a clock the test moves, posted with
Bolt's ``respond`` to a response_url of the Slack stand-in: when it is shown, how often, how
many times, and what it says. tests/handlers/test_scan_progress.py shows it through the real
app."""

from __future__ import annotations

import itertools
import socket
import threading
from typing import Any

import pytest
from slack_bolt import Respond

from bot.domain.fleet import Progress
from bot.fakes.slack import SlackWebAPI
from bot.slack.progress import SHOWN_AFTER_S, ProgressMessage, progress_text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Posted:
    """Bolt's ``respond`` for a fresh response_url of the Slack stand-in, and what reached it."""

    def __init__(self, slack: SlackWebAPI) -> None:
        self.slack = slack
        self.url = slack.new_response_url(channel="C0OPS", user_id="UAPPROVER")
        self.respond = Respond(response_url=self.url)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.slack.responses_for(self.url)


@pytest.fixture
def posted(slack: SlackWebAPI) -> Posted:
    return Posted(slack)


def step(done: int, images: int, total: int = 10) -> Progress:
    return Progress(done=done, total=total, accounts=1, images=images)


def test_a_scan_shorter_than_a_second_shows_nothing(posted: Posted) -> None:
    clock = Clock()
    progress = ProgressMessage(posted.respond, clock=clock)
    for done in range(11):
        clock.now += 0.09
        progress(step(done, done * 250))
    assert posted.messages == []
    assert not progress.shown


def test_at_most_once_a_second_and_three_times_in_all(posted: Posted) -> None:
    clock = Clock()
    progress = ProgressMessage(posted.respond, clock=clock)
    times: list[float] = []
    images = 0
    for _ in range(200):  # a 20-second scan, told every 100 ms
        clock.now += 0.1
        images += 25
        before = len(posted.messages)
        progress(step(images // 500, images, total=20))
        if len(posted.messages) > before:
            times.append(clock.now - 100.0)
    assert len(posted.messages) == len(SHOWN_AFTER_S) == 3
    assert times[0] >= 1.0
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(times))
    assert all(m["replace_original"] is True for m in posted.messages)
    assert all(m["response_type"] == "ephemeral" for m in posted.messages)
    assert progress.shown


def test_seconds_count_from_the_scan_not_from_the_command(posted: Posted) -> None:
    clock = Clock()
    progress = ProgressMessage(posted.respond, clock=clock)
    clock.now += 5  # the command took long to reach its scan
    progress(step(0, 0))  # the scan begins
    clock.now += 0.5
    progress(step(1, 25))
    assert posted.messages == []
    clock.now += 0.5
    progress(step(2, 50))
    assert [m["text"] for m in posted.messages] == [progress_text(step(2, 50))]


def test_the_same_text_is_not_shown_twice(posted: Posted) -> None:
    clock = Clock()
    progress = ProgressMessage(posted.respond, clock=clock)
    progress(step(0, 0))
    clock.now += 1.5
    progress(step(3, 700))
    clock.now += 5
    progress(step(3, 700))
    assert len(posted.messages) == 1


def test_a_refused_progress_message_stops_the_others_without_failing(
    posted: Posted, slack: SlackWebAPI
) -> None:
    slack.expire_response_url(posted.url)  # Slack answers 404 expired_url
    clock = Clock()
    progress = ProgressMessage(posted.respond, clock=clock)
    progress(step(0, 0))
    clock.now += 1.5
    progress(step(1, 10))
    clock.now += 5
    progress(step(2, 20))
    assert [error for _, _, error in slack.rejected_responses] == ["expired_url"]
    assert not progress.shown  # the answer need not replace what never showed


def test_a_progress_message_that_cannot_be_sent_does_not_fail_the_scan() -> None:
    clock = Clock()
    with socket.socket() as free:  # a port nothing listens on once closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    progress = ProgressMessage(Respond(response_url=f"http://127.0.0.1:{port}/r"), clock=clock)
    progress(step(0, 0))
    clock.now += 1.5
    progress(step(1, 10))  # logged, not raised
    assert not progress.shown


def test_called_from_many_threads_at_once_it_posts_once_per_turn(posted: Posted) -> None:
    clock = Clock()
    progress = ProgressMessage(posted.respond, clock=clock)
    progress(step(0, 0, total=32))
    clock.now += 1.5
    threads = [
        threading.Thread(target=progress, args=(step(n, n * 25, total=32),)) for n in range(32)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(posted.messages) == 1


@pytest.mark.parametrize(
    ("progress", "text"),
    [
        (
            Progress(done=6, total=10, accounts=1, images=1450),
            "Scanning the fleet… 6 of 10 regions done, 1,450 images so far",
        ),
        (
            Progress(done=0, total=1, accounts=1, images=1),
            "Scanning the fleet… 0 of 1 region done, 1 image so far",
        ),
        (
            Progress(done=7, total=30, accounts=3, images=0),
            "Scanning the fleet… 7 of 30 account-regions done, 0 images so far",
        ),
        (Progress(joined=True), "Waiting for the fleet scan another request started…"),
    ],
)
def test_what_it_says(progress: Progress, text: str) -> None:
    assert progress_text(progress) == text
