"""The app's listener pool with every future kept, so that a test or the demo can wait until
all a request set going (ack listener, lazy listeners) has finished."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_bolt import App


class TrackingExecutor(Executor):
    """Wraps the app's listener pool and keeps every future it is given."""

    def __init__(self, inner: Executor) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._futures: list[Future[Any]] = []

    @classmethod
    def around(cls, app: App) -> TrackingExecutor:
        """Put one around ``app``'s listener pool, for its listeners and lazy listeners."""
        runner = app.listener_runner
        tracking = cls(runner.listener_executor)
        runner.listener_executor = tracking
        runner.lazy_listener_runner.executor = tracking  # type: ignore[attr-defined]
        return tracking

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = self._inner.submit(fn, *args, **kwargs)
        with self._lock:
            self._futures.append(future)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait, cancel_futures=cancel_futures)

    def settle(self, timeout: float = 30) -> tuple[list[BaseException], int]:
        """Wait for every future so far: (what they raised, how many still run)."""
        with self._lock:
            futures, self._futures = self._futures, []
        done, not_done = wait(futures, timeout=timeout)
        with self._lock:  # the unfinished ones are waited for again next time
            self._futures.extend(not_done)
        raised = [f.exception() for f in done if not f.cancelled()]
        return [e for e in raised if e is not None], len(not_done)
