"""How `wsimg serve` answers while connections trickle a byte at a time.

    .venv/bin/python -m tests.benchmarks.slow_connections [--connections 200] [--seconds 40]

Starts the fakes and a real `wsimg serve` (SQLite), opens the slow connections (reopened as
soon as the server closes one), and every half second times GET /healthz and a signed
`/wsimg help` on fresh connections. Prints latency percentiles, how many probes got no answer
within the timeout, how long the server let a slow connection live, and resident memory.
The targets are printed next to the figures; nothing here fails on a timing.
"""

from __future__ import annotations

import argparse
import threading
import time

from bot.fakes.slack import SlackUser
from tests.benchmarks.load import (
    SLACK_ACK_SECONDS,
    Timed,
    Trickler,
    healthz,
    percentiles,
    rss_mb,
    running_serve,
    signed_command,
)
from tests.conftest import APPROVER, SIGNING_SECRET

PROBE_EVERY = 0.5
PROBE_TIMEOUT = 10.0


def _line(name: str, probes: list[Timed]) -> str:
    answered = [p.seconds for p in probes if p.answered]
    p50, p90, p99, most = percentiles(answered)
    late = sum(1 for p in probes if not p.answered or p.seconds > SLACK_ACK_SECONDS)
    return (
        f"{name:<14} n={len(probes):<4} p50={p50:.3f}s p90={p90:.3f}s p99={p99:.3f}s "
        f"max={most:.3f}s  unanswered or over {SLACK_ACK_SECONDS:.0f}s: {late}"
    )


def _help(user: SlackUser, into: list[Timed]) -> None:
    into.append(signed_command(user, "help", user_id=APPROVER)[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between bytes")
    parser.add_argument("--seconds", type=float, default=40.0, help="how long to probe")
    args = parser.parse_args()

    with running_serve() as (process, slack, _simulator):
        assert process.proc is not None
        pid = process.proc.pid
        user = SlackUser(process.events_url, SIGNING_SECRET, slack, timeout=PROBE_TIMEOUT)
        baseline = [healthz(process.port) for _ in range(20)]
        rss_before = rss_mb(pid)
        health: list[Timed] = []
        commands: list[Timed] = []
        rss: list[float] = []
        trickler = Trickler(
            process.port,
            connections=args.connections,
            interval=args.interval,
            seconds=args.seconds + 15,
        )
        with trickler:
            all_open = trickler.wait_open()
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                # Both probes at once, each on its own fresh connection.
                got: list[Timed] = []
                thread = threading.Thread(target=_help, args=(user, got))
                thread.start()
                health.append(healthz(process.port, timeout=PROBE_TIMEOUT))
                thread.join(PROBE_TIMEOUT + 5)
                commands.extend(got)
                rss.append(rss_mb(pid))
                time.sleep(PROBE_EVERY)
            opened, closed = trickler.opened, trickler.closed_by_server
            lifetimes = list(trickler.lifetimes)

    print(f"slow connections: {args.connections}, a byte every {args.interval:g}s")
    print(f"all open before probing: {all_open}; opened {opened}, closed by the server {closed}")
    if lifetimes:
        p50, most = percentiles(lifetimes, (50,))
        print(f"a slow connection lived: median {p50:.1f}s, longest {most:.1f}s")
    print(_line("/healthz idle", baseline))
    print(_line("/healthz", health))
    print(_line("/wsimg help", commands))
    print(f"resident memory: {rss_before:.0f} MB before, {max(rss, default=0):.0f} MB at most")
    print(f"targets: every probe answered within {SLACK_ACK_SECONDS:.0f}s; memory under 150 MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
