"""Which process this is, and whether another process on this host is still alive.

Rows that a process holds while it works on them (a request in `approved` or `submitting`, a
follow-up being posted) carry its id: ``host:pid:start:token``. A process that finds the
holder dead on its own host takes the row over at once, so a restart after a crash carries
on right away; a holder on another host is only taken over after the long timeout in
bot/domain/poller.py.

A pid alone does not name a process: the kernel hands a dead process's pid to a new one. The
id therefore carries the process's start time (``/proc/<pid>/stat``, clock ticks since boot),
and a live pid whose start time differs is a different process: the holder is dead.
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
    return f"{socket.gethostname()[:48]}/{namespace}"[:64].replace(":", "_")


def started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot), or "" where that is unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except OSError:
        return ""
    # Field 2 (the command) is in parentheses and may hold spaces or parentheses itself.
    fields = text.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""  # field 22, starttime


HOST = _host()
# The token tells this process from an earlier one with the same pid and start (a clock reset).
WORKER_ID = f"{HOST}:{os.getpid()}:{started(os.getpid())}:{secrets.token_hex(4)}"


def is_dead_here(worker_id: str | None) -> bool:
    """True only when ``worker_id`` is a process of this host that no longer runs: its pid is
    gone, or now belongs to a process that started at another time."""
    if not worker_id or worker_id == WORKER_ID:
        return False
    parts = worker_id.split(":")
    if len(parts) == 4:
        host, pid_text, start, _token = parts
    elif len(parts) == 3:  # written before the start time was recorded
        host, pid_text, _token = parts
        start = ""
    else:
        return False
    if host != HOST or not pid_text.isdecimal():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's: its start time still tells
        pass
    now = started(pid)
    return bool(start and now and now != start)
