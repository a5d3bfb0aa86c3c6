"""The progress message of a `/wsimg updates` that waits for a fleet scan ("Scanning the fleet…
6 of 10 regions done, 1,450 images so far"), posted to the command's response_url, each one
replacing the last, until the answer replaces it.

Slack takes about five messages at one response_url within 30 minutes (DESIGN.md), and the
answer needs one (an error after it, another), so a command shows at most three progress
messages: the first once the scan has run a second (a quick scan shows only its answer), the
others after 3 and 9 seconds, so that a long scan is still reported on later; never more often
than once a second, and only when the text changed. The seconds count from the first thing the
scan tells (it has begun, or another request's scan is being waited for), so that a command
slow to reach its scan does not show "0 of 10" for it.

The scan calls it from its threads: the decision and the post are made under one lock, so the
messages go out in the order of the counts they show.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from slack_sdk.errors import SlackClientError

from bot.domain.fleet import Progress

log = logging.getLogger(__name__)

# Seconds since the scan began before the first, second and third progress message.
SHOWN_AFTER_S = (1.0, 3.0, 9.0)


def progress_text(progress: Progress) -> str:
    if progress.joined:
        return "Waiting for the fleet scan another request started…"
    unit = "region" if progress.accounts <= 1 else "account-region"
    units = unit if progress.total == 1 else f"{unit}s"
    images = "image" if progress.images == 1 else "images"
    return (
        f"Scanning the fleet… {progress.done} of {progress.total} {units} done, "
        f"{progress.images:,} {images} so far"
    )


class ProgressMessage:
    """A ``fleet.Watcher`` that shows the scan's progress through ``post`` (a Bolt
    ``respond``); ``shown`` says whether it did, and so whether the answer should replace it."""

    def __init__(
        self,
        post: Callable[..., Any],
        *,
        shown_after: Sequence[float] = SHOWN_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._post = post
        self._shown_after = tuple(shown_after)
        self._clock = clock
        self._began: float | None = None
        self._lock = threading.Lock()
        self._texts: list[str] = []
        self._stopped = False

    @property
    def shown(self) -> bool:
        with self._lock:
            return bool(self._texts)

    @property
    def texts(self) -> list[str]:
        """What was shown, oldest first."""
        with self._lock:
            return list(self._texts)

    def __call__(self, progress: Progress) -> None:
        with self._lock:
            count = len(self._texts)
            if self._stopped or count >= len(self._shown_after):
                return
            now = self._clock()
            if self._began is None:
                self._began = now
            if now - self._began < self._shown_after[count]:
                return
            text = progress_text(progress)
            if self._texts and self._texts[-1] == text:
                return
            self._stopped = not self._show(text)
            if not self._stopped:
                self._texts.append(text)

    def _show(self, text: str) -> bool:
        """Post one progress message; False when Slack would not take it. A progress message
        that cannot be shown must not fail the scan (or the answer after it): logged, and no
        more are tried."""
        try:
            response = self._post(response_type="ephemeral", replace_original=True, text=text)
        except (OSError, SlackClientError):
            log.warning("could not show the scan's progress", exc_info=True)
            return False
        status = getattr(response, "status_code", 200)
        if status != 200:
            log.warning("Slack refused the scan's progress message: HTTP %s", status)
            return False
        return True
