"""A gate both simulators use to keep a request waiting while a test does something else:
``WorkSpacesSimulator.hold`` (before or after a call is carried out) and ``SlackWebAPI.hold``
(a Slack call carried out, its reply kept back)."""

from __future__ import annotations

import threading


class Hold:
    """A gate that keeps matching requests waiting until ``release()``.

    ``wait_until_blocked(n)`` returns once n requests are waiting at the gate together, which
    lets a test prove that something is (or is not) waiting for AWS without measuring time.
    """

    def __init__(self, operation: str, timeout: float) -> None:
        self.operation = operation
        self.timeout = timeout
        self._released = threading.Event()
        self._cond = threading.Condition()
        self.waiting = 0
        self.arrived = 0

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def release(self) -> None:
        self._released.set()

    def wait_until_blocked(self, count: int = 1, timeout: float = 10.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.waiting >= count, timeout)

    def block(self) -> None:
        """Wait at the gate (the caller's thread) until released or timed out."""
        self._block()

    def _block(self) -> None:
        with self._cond:
            self.arrived += 1
            self.waiting += 1
            self._cond.notify_all()
        try:
            # A forgotten release must not hang a test run forever: give up after `timeout`.
            self._released.wait(self.timeout)
        finally:
            with self._cond:
                self.waiting -= 1
                self._cond.notify_all()

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
