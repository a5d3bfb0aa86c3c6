"""How `wsimg serve` answers other people while one person floods `/wsimg updates`.

    .venv/bin/python -m tests.benchmarks.command_flood [--count 1000] [--seconds 30]

Starts the fakes and a real `wsimg serve` (SQLite; 100 images with an update in three
regions, so that a listing asks AWS for several pages and stores 100 offers), sends ``count``
signed `/wsimg updates` from one user evenly over ``seconds`` (four sender threads), and
meanwhile, every second,
a `/wsimg status` from an approver (halfway through, a `/wsimg updates`). Prints how fast the
flood's commands were acknowledged and how many were refused at once, how long the approver
waited for the ack and for the answer, the rows in the ``listing`` table, and resident memory.
The targets are printed next to the figures; nothing here fails on a timing.
"""

from __future__ import annotations

import argparse
import time

from bot.fakes.slack import SlackUser
from tests.benchmarks.load import (
    SLACK_ACK_SECONDS,
    Asked,
    Flood,
    ask,
    listing_rows,
    percentiles,
    rss_mb,
    running_serve,
)
from tests.conftest import APPROVER, SIGNING_SECRET

FLOODER = "UFLOODER"
SETTLE_SECONDS = 10.0  # after the flood, how long to wait for late answers


def _seconds(values: list[float]) -> str:
    p50, p90, p99, most = percentiles(values)
    return f"p50={p50:.3f}s p90={p90:.3f}s p99={p99:.3f}s max={most:.3f}s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--images", type=int, default=100, help="images with an update")
    parser.add_argument("--regions", default="us-east-1,eu-west-1,ap-southeast-2")
    args = parser.parse_args()

    regions = tuple(args.regions.split(","))
    with running_serve(images=args.images, regions=regions) as (process, slack, _simulator):
        assert process.proc is not None
        pid = process.proc.pid
        user = SlackUser(process.events_url, SIGNING_SECRET, slack, timeout=30)
        rss = [rss_mb(pid)]
        asked: list[Asked] = []
        listing: Asked | None = None
        flood = Flood(
            process.events_url, slack, user_id=FLOODER, count=args.count, seconds=args.seconds
        ).start()
        started = time.monotonic()
        while flood.running:
            asked.append(ask(user, "status", user_id=APPROVER))
            if listing is None and time.monotonic() - started > args.seconds / 2:
                listing = ask(user, "updates", user_id=APPROVER)
            rss.append(rss_mb(pid))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - started) % 1.0))
        flood.join(timeout=60)
        flood_ended = time.monotonic() - started
        answered_at_end = len(slack.responses)
        time.sleep(SETTLE_SECONDS)
        rss.append(rss_mb(pid))
        answered_later = len(slack.responses)
        rows = listing_rows(process.env["DATABASE_URL"])

    acks = [timed for timed, _ in flood.acks]
    refused = [r for _, r in flood.acks if r is not None and "Looking for" not in r.body]
    print(f"flood: {len(acks)} `/wsimg updates` by one user in {flood_ended:.1f}s")
    print(f"  acks: {_seconds([t.seconds for t in acks if t.answered])}")
    print(f"  unanswered: {sum(not t.answered for t in acks)}; refused at once: {len(refused)}")
    if refused:
        print(f"  refusal: {refused[-1].body[:200]}")
    print(f"approver's `/wsimg status` during the flood, n={len(asked)}")
    print(f"  ack:    {_seconds([a.ack.seconds for a in asked if a.ack.answered])}")
    answers = [a.answer_seconds(slack) for a in asked]
    print(
        f"  answer: {_seconds([s for s in answers if s is not None])}; "
        f"none: {sum(s is None for s in answers)}"
    )
    if listing is not None:
        seconds = listing.answer_seconds(slack)
        shown = "none" if seconds is None else f"{seconds:.2f}s"
        print(
            f"approver's `/wsimg updates` halfway: ack {listing.ack.seconds:.3f}s, answer {shown}"
        )
    print(
        f"answers at response_urls: {answered_at_end} when the flood ended, "
        f"{answered_later} {SETTLE_SECONDS:.0f}s later"
    )
    print(f"listing rows: {rows}")
    print(f"resident memory: {rss[0]:.0f} MB before, {max(rss):.0f} MB at most")
    print(
        f"targets: the approver's ack and answer within {SLACK_ACK_SECONDS:.0f}s; memory under "
        "150 MB; listing rows bounded by the per-user rate"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
