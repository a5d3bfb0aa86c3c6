"""Which process this is, and whether another process on this host is still alive.

Rows that a process holds while it calls AWS (a request in `approved` or `submitting`) carry
its id. A process that finds the holder dead on its own host takes the row over at once, so a
restart after a crash reconciles right away; a holder on another host (or one whose pid has
been reused) is only taken over after the long timeout in bot/updates.py.
"""

from __future__ import annotations

import os
import secrets
import socket


def _host() -> str:
    """This host, as processes that can see each other's pids share it: the hostname and,
    where there is one, the pid namespace (two containers may share a hostname, not pids)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:").strip("[]")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()[:48]}/{namespace}"[:64]


HOST = _host()
# The token tells this process from an earlier one that had the same pid.
WORKER_ID = f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def is_dead_here(worker_id: str | None) -> bool:
    """True only when ``worker_id`` is a process of this host that no longer runs."""
    if not worker_id:
        return False
    host, _, rest = worker_id.rpartition(":")[0].rpartition(":")
    pid_text = rest
    if host != HOST or not pid_text.isdecimal() or worker_id == WORKER_ID:
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
