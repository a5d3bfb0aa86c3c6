"""`wsimg bench`: a benchmark of the figures issue 10 sets, against the fake world.

It starts the WorkSpaces simulator (``latency`` seconds per AWS call) with a fleet of
``regions`` x ``images``, 30 % of them with an update, and the Slack stand-in in its own
process, and the real app as ``wsimg serve`` in another (a temporary SQLite database, no
scheduler), all on 127.0.0.1, so that the app shares its interpreter with nothing Slack or
AWS would do. It drives the app with signed requests as Slack would, times a full scan and a
poll pass in its own process (same database, same simulator), and prints each figure next to
its target with PASS or MISS. No AWS or Slack
account and no internet is needed. It is a benchmark, not a test: nothing fails on a figure.

The figures at 10,000 images (peak RSS, digest build) come from a child process that runs only
the app's side (the scan, the listing, the digest) against a second simulator in this process,
so its resident memory is wsimg's alone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

from bot import redact
from bot.config import Settings
from bot.domain import digests, fleet
from bot.domain.context import Services
from bot.fakes.slack import SlackUser, SlackWebAPI, find_buttons
from bot.fakes.workspaces import CLEARED_ENV, DEFAULT_ACCOUNT, WorkSpacesSimulator
from bot.jobs import followups
from bot.runtime import build_services
from storage.db import ensure_schema, unit_of_work
from storage.models import State, UpdateRequest

REGIONS = (
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-central-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ca-central-1",
    "sa-east-1",
    "ap-south-1",
)
PAGE = 25  # DescribeWorkspaceImages: images per page
UPDATE_SHARE = 0.3
CHANNEL = "C0BENCH"
DESCRIBE = "DescribeWorkspaceImages"
TIMEOUT = 300.0


@dataclass(frozen=True)
class Sizes:
    regions: int
    images: int  # per region
    latency: float
    listings: int = 50  # running while the acks are timed
    acks: int = 200
    warm: int = 5  # warm listings timed one after another
    in_flight: int = 500
    big: int = 10_000  # images for the RSS and digest figures
    bulk: int = 50  # images approved with one click

    @classmethod
    def quick(cls) -> Sizes:
        return cls(regions=2, images=30, latency=0.01, listings=5, acks=20, warm=2, in_flight=30,
                   big=300, bulk=12)  # fmt: skip


@dataclass
class Row:
    figure: str
    measured: str
    target: str
    verdict: str  # PASS, MISS, or MISS (why)


def run_bench(sizes: Sizes) -> int:
    # The bench queues requests on purpose: waitress's line per queued request says nothing.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    print(
        f"wsimg bench — {sizes.regions} regions x {sizes.images} images "
        f"({int(UPDATE_SHARE * 100)} % with an update), {sizes.latency * 1000:.0f} ms per AWS "
        f"call, {os.cpu_count()} cores; the app as `wsimg serve` in a process of its own, the "
        "simulator and the Slack stand-in in the bench's, all on 127.0.0.1.",
        flush=True,
    )
    rows = _main_fleet(sizes)
    rows.extend(_big_fleet(sizes))
    rows.append(_bulk(sizes))
    print()
    print(render(rows))
    return 0


def render(rows: list[Row]) -> str:
    lines = ["| figure | measured | target | verdict |", "|---|---|---|---|"]
    lines += [f"| {r.figure} | {r.measured} | {r.target} | {r.verdict} |" for r in rows]
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _step(text: str) -> None:
    print(f"  … {text}", flush=True)


# -- the main fleet: acks, scans, listings, the poller -------------------------------------------


def _main_fleet(sizes: Sizes) -> list[Row]:
    regions = REGIONS[: sizes.regions]
    users = [f"UBENCH{i:04d}" for i in range(sizes.listings + sizes.acks + sizes.warm)]
    with (
        tempfile.TemporaryDirectory(prefix="wsimg-bench-") as tmp,
        WorkSpacesSimulator(pending_seconds=3600, seed=11) as simulator,
        _world(simulator, regions, f"sqlite:///{tmp}/wsimg.db", users) as (services, user, slack),
    ):
        _fill(simulator, regions, sizes.images)
        pages = sum(math.ceil(len(simulator.images(region=r)) / PAGE) for r in regions)
        critical = math.ceil(sizes.images / PAGE) * sizes.latency  # every region as large
        simulator.latency = sizes.latency
        rows = _acks_and_shared_scan(sizes, simulator, user, slack, users, pages)
        rows.append(_warm_listing(sizes, user, slack, users[-sizes.warm :]))
        rows.extend(_cold_scan(services, simulator, pages, critical))
        rows.append(_poller(sizes, services, simulator, regions))
        return rows


@contextlib.contextmanager
def _world(
    simulator: WorkSpacesSimulator,
    regions: tuple[str, ...],
    database_url: str,
    users: list[str],
    *,
    image_quota: int = 40,
) -> Iterator[tuple[Services, SlackUser, SlackWebAPI]]:
    """The app as it is deployed, ``wsimg serve`` in a process of its own (no scheduler),
    pointed at the simulator and the Slack stand-in, which stay in this process as Slack and
    AWS are elsewhere; and this process's own services on the same database and simulator,
    for what the bench runs itself (the timed scan, a poll pass)."""
    signing_secret = secrets.token_hex(16)
    bot_token = "xoxb-bench-" + secrets.token_hex(8)
    with (
        SlackWebAPI(bot_token=bot_token) as slack,
        tempfile.TemporaryFile(prefix="wsimg-bench-serve-") as log,
    ):
        redact.install([bot_token, signing_secret], api_url=slack.api_url)
        _point_boto3_at(simulator, regions[0])
        slack.set_channel(CHANNEL, "it-ops")
        for user_id in users:
            slack.set_user(user_id, user_id.lower())
        settings = Settings(
            slack_bot_token=bot_token,
            slack_signing_secret=signing_secret,
            slack_api_url=slack.api_url,
            database_url=database_url,
            regions=list(regions),
            approvers=users[:1],
            image_quota=image_quota,
            scan_seconds=900,  # listings share the last scan, whatever WSIMG_SCAN_SECONDS says
        )
        services = build_services(settings)
        ensure_schema(services.engine)
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WSIMG_"))}
        env.update(
            SLACK_BOT_TOKEN=bot_token,
            SLACK_SIGNING_SECRET=signing_secret,
            SLACK_API_URL=slack.api_url,
            DATABASE_URL=database_url,
            WSIMG_REGIONS=",".join(regions),
            WSIMG_APPROVERS=users[0],
            WSIMG_IMAGE_QUOTA=str(image_quota),
            WSIMG_SCAN_SECONDS="900",
            WSIMG_SCHEDULER="off",
            LOG_LEVEL="WARNING",
            PORT=str(port),
        )
        app = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve"], env=env, stdout=log, stderr=log
        )
        try:
            _wait_until_serving(app, port, log)
            url = f"http://127.0.0.1:{port}/slack/events"
            yield services, SlackUser(url, signing_secret, slack), slack
        finally:
            app.terminate()
            try:
                app.wait(timeout=15)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait(timeout=15)
            services.engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_serving(app: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    log.seek(0)
    told = log.read().decode(errors="replace").strip().splitlines()[-5:]
    raise RuntimeError("wsimg serve did not start: " + " / ".join(told or ["no output"]))


def _point_boto3_at(simulator: WorkSpacesSimulator, region: str) -> None:
    for name in CLEARED_ENV:
        os.environ.pop(name, None)
    os.environ.update(simulator.environment(region=region))


def _fill(simulator: WorkSpacesSimulator, regions: tuple[str, ...], per_region: int) -> None:
    for region in regions:
        for index in range(per_region):
            simulator.add_image(
                region=region,
                name=f"bench-{region}-{index:05d}",
                update_available=index % 10 < UPDATE_SHARE * 10,
            )


def _list(user: SlackUser, slack: SlackWebAPI, user_id: str) -> tuple[float, float, float, bool]:
    """One `/wsimg updates`: (when it was sent, seconds to the ack, seconds to the answer, a
    listing answered).
    The answer is the first message with blocks: the scan's progress messages (text alone)
    come before it; an error is answered with blocks too, and counts as no listing."""
    started = time.monotonic()
    asked = user.command("updates", user_id=user_id, channel_id=CHANNEL)
    acked = time.monotonic() - started
    answer = slack.wait_for_response(
        asked.response_url, lambda payload: bool(payload.get("blocks")), timeout=TIMEOUT
    )
    listed = asked.status == 200 and not str(answer.get("text", "")).startswith(":warning:")
    return started, acked, time.monotonic() - started, listed


def _send(user: SlackUser, user_id: str) -> tuple[float, float, Any]:
    """One `/wsimg updates`, timed to its acknowledgement: (sent, seconds to the ack, result)."""
    started = time.monotonic()
    asked = user.command("updates", user_id=user_id, channel_id=CHANNEL)
    return started, time.monotonic() - started, asked


def _answered(
    slack: SlackWebAPI, asked: Any, started: float, acked: float
) -> tuple[float, float, float, bool]:
    """``_list``'s figures for a command ``_send`` sent."""
    answer = slack.wait_for_response(
        asked.response_url, lambda payload: bool(payload.get("blocks")), timeout=TIMEOUT
    )
    listed = asked.status == 200 and not str(answer.get("text", "")).startswith(":warning:")
    return started, acked, time.monotonic() - started, listed


def _acks_and_shared_scan(
    sizes: Sizes,
    simulator: WorkSpacesSimulator,
    user: SlackUser,
    slack: SlackWebAPI,
    users: list[str],
    pages: int,
) -> list[Row]:
    _step(f"{sizes.listings} listings on a cold fleet, {sizes.acks} more commands meanwhile")
    simulator.clear_calls()
    listers = users[: sizes.listings]
    askers = users[sizes.listings : sizes.listings + sizes.acks]
    with ThreadPoolExecutor(max_workers=sizes.listings) as pool:
        running = [pool.submit(_list, user, slack, u) for u in listers]
        # The acks are timed while the listings run: each sender sends its next command once
        # the last one is acknowledged, without waiting for its answer (each is a listing too).
        with ThreadPoolExecutor(max_workers=8) as senders:
            sent = list(senders.map(lambda u: _send(user, u), askers))
        first = [f.result() for f in running]
    timed = [_answered(slack, asked, started, acked) for started, acked, asked in sent]
    acks = [acked for _, acked, _, _ in timed]
    p95 = _p95(acks)
    answered = sum(1 for _, _, _, ok in first + timed if ok)
    last_answer = max(started + took for started, _, took, _ in first)
    meanwhile = sum(1 for started, _, _, _ in timed if started < last_answer)
    calls = simulator.count(DESCRIBE)
    total = sizes.listings + sizes.acks
    return [
        Row(
            f"acknowledgement p95 over {sizes.acks} `/wsimg updates` while {sizes.listings} "
            "listings run",
            f"{p95 * 1000:.0f} ms (max {max(acks) * 1000:.0f} ms; {meanwhile} of the "
            f"{sizes.acks} sent before the last of the {sizes.listings} answered)",
            "< 100 ms",
            _verdict(p95 < 0.1),
        ),
        Row(
            f"{DESCRIBE} calls for {sizes.listings} concurrent listings "
            f"(and the {sizes.acks} after them)",
            f"{calls} ({answered}/{total} answered with a listing)",
            f"one scan's worth ({pages})",
            _verdict(calls == pages),
        ),
    ]


def _warm_listing(sizes: Sizes, user: SlackUser, slack: SlackWebAPI, users: list[str]) -> Row:
    _step(f"{sizes.warm} warm listings, one after another")
    took = [_list(user, slack, u)[2] for u in users]
    slowest = max(took)
    return Row(
        "warm listing (snapshot): command → first page",
        f"{slowest * 1000:.0f} ms (slowest of {len(took)}, median "
        f"{statistics.median(took) * 1000:.0f} ms)",
        "< 300 ms",
        _verdict(slowest < 0.3),
    )


def _cold_scan(
    services: Services, simulator: WorkSpacesSimulator, pages: int, critical: float
) -> list[Row]:
    _step("a full scan, timed (after one untimed, as in a process that has run a while)")
    # The untimed scan makes this process's AWS clients and loads botocore's models, which a
    # long-running wsimg has done long before; the timed one still asks AWS for everything.
    fleet.fresh(services, max_age=timedelta(0))
    simulator.clear_calls()
    started = time.monotonic()
    fleet.fresh(services, max_age=timedelta(0))
    took = time.monotonic() - started
    calls = simulator.count(DESCRIBE)
    ratio = took / critical if critical else float("inf")
    return [
        Row(
            "cold scan time ÷ critical path (max over regions of ⌈n/25⌉ x latency)",
            f"{ratio:.2f} ({took:.2f} s ÷ {critical:.2f} s)",
            "≤ 1.2",
            _verdict(ratio <= 1.2),
        ),
        Row(
            f"{DESCRIBE} calls per cold scan ÷ Σ⌈n/25⌉",
            f"{calls / pages:.2f} ({calls} ÷ {pages})",
            "1.0",
            _verdict(calls == pages),
        ),
    ]


def _poller(
    sizes: Sizes, services: Services, simulator: WorkSpacesSimulator, regions: tuple[str, ...]
) -> Row:
    _step(f"{sizes.in_flight} images in flight, one poll pass")
    in_region = Counter(regions[i % len(regions)] for i in range(sizes.in_flight))
    with unit_of_work(services.engine) as session:
        for region, count in in_region.items():
            sources = simulator.images(region=region)[:count]
            for index, source in enumerate(sources):
                new_id = simulator.add_image(
                    region=region, name=f"bench-new-{region}-{index:05d}", state="PENDING"
                )
                key = f"{DEFAULT_ACCOUNT}:{region}:{source['ImageId']}"
                session.add(
                    UpdateRequest(
                        id=uuid.uuid4().hex,
                        state=State.pending.value,
                        active_key=key,
                        account_id=DEFAULT_ACCOUNT,
                        region=region,
                        source_image_id=source["ImageId"],
                        source_image_name=source["Name"],
                        requested_by="UBENCH0000",
                        approved_by="UBENCH0000",
                        channel_id=CHANNEL,
                        new_image_name=f"bench-new-{region}-{index:05d}",
                        new_image_id=new_id,
                    )
                )
    simulator.clear_calls()
    followups.run(services)
    per_target = Counter(call.region for call in simulator.calls if call.operation == DESCRIBE)
    expected = {region: math.ceil(count / PAGE) for region, count in in_region.items()}
    worst = max(per_target.get(r, 0) - e for r, e in expected.items())
    return Row(
        f"poller calls per pass for {sizes.in_flight} images in flight",
        f"{sum(per_target.values())} in {len(expected)} account-regions "
        f"(most over ⌈n/25⌉ in one: {worst})",
        f"⌈n/25⌉ per account-region ({sum(expected.values())})",
        _verdict(dict(per_target) == expected),
    )


# -- bulk approval: one click, every image once, the cap held --------------------------------------


def _bulk(sizes: Sizes) -> Row:
    region = REGIONS[0]
    approver = "UBENCHBULK"
    figure = f"{sizes.bulk} bulk approvals in one click"
    target = f"{sizes.bulk} creates, none twice, ≤ max concurrent in flight"
    _step(f"{sizes.bulk} images approved with one click, built as the cap allows")
    with (
        tempfile.TemporaryDirectory(prefix="wsimg-bench-") as tmp,
        WorkSpacesSimulator(pending_seconds=3600, seed=17) as simulator,
        _world(
            simulator,
            (region,),
            f"sqlite:///{tmp}/wsimg.db",
            [approver],
            image_quota=10_000,
        ) as (services, user, slack),
    ):
        simulator.image_limit = 10_000
        sources = [
            simulator.add_image(region=region, name=f"bulk-{n:04d}") for n in range(sizes.bulk)
        ]
        simulator.latency = sizes.latency
        cap = services.settings.max_concurrent_updates
        asked = user.command(f"updates {region}", user_id=approver, channel_id=CHANNEL)
        listing = slack.wait_for_response(
            asked.response_url, lambda payload: bool(payload.get("blocks")), timeout=TIMEOUT
        )
        buttons = [
            b for b in find_buttons(listing["blocks"]) if b["action_id"].startswith("wsimg.bulk")
        ]
        if len(buttons) != 1:
            return Row(figure, f"{len(buttons)} Approve all buttons", target, "MISS")
        started = time.monotonic()
        clicked = user.click_button(buttons[0], user_id=approver, channel_id=CHANNEL)
        slack.wait_for_response(clicked.response_url, timeout=TIMEOUT)
        answered = time.monotonic() - started
        made = {
            c.params["Name"]
            for c in simulator.calls
            if c.operation == "CreateUpdatedWorkspaceImage"
        }
        most = 0
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            creates = [c for c in simulator.calls if c.operation == "CreateUpdatedWorkspaceImage"]
            made = {c.params["Name"] for c in creates}
            building = sum(
                1
                for i in simulator.images(region=region)
                if i["Name"] in made and i["State"] == "PENDING"
            )
            most = max(most, building)
            if len(creates) >= sizes.bulk and not building:
                break
            simulator.complete_pending()
            followups.run(services)  # a poll pass: builds that ended free their slots
        created = Counter(c.params["SourceImageId"] for c in creates)
    twice = sum(1 for n in created.values() if n > 1)
    ok = created == Counter(sources) and most <= cap
    return Row(
        figure,
        f"{len(creates)} creates of {len(created)} images ({twice} twice), at most {most} "
        f"building at once (cap {cap}); the click answered in {answered:.2f} s",
        target,
        _verdict(ok),
    )


# -- the big fleet: one process's memory and the digest -----------------------------------------


def _big_fleet(sizes: Sizes) -> list[Row]:
    regions = REGIONS[: sizes.regions]
    per_region = math.ceil(sizes.big / len(regions))
    _step(f"{per_region * len(regions)} images: scan and digest in a child process")
    with WorkSpacesSimulator(pending_seconds=3600, seed=13) as simulator:
        _fill(simulator, regions, per_region)
        env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
        env.update(simulator.environment(region=regions[0]))
        done = subprocess.run(  # noqa: S603 (this interpreter, this module)
            [sys.executable, "-m", "bot.bench", ",".join(regions)],
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    total = per_region * len(regions)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [
            Row(f"peak RSS of one process at {total} images", "—", "< 150 MB", f"MISS ({why})"),
            Row(f"digest build at {total} images", "—", "< 2 s", f"MISS ({why})"),
        ]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return [
        Row(
            f"peak RSS of one process at {total} images",
            f"{found['rss_mb']:.0f} MB (after a scan, a listing and a digest)",
            "< 150 MB",
            _verdict(found["rss_mb"] < 150),
        ),
        Row(
            f"digest build at {total} images",
            f"{found['digest_s']:.2f} s (the scan before it: {found['scan_s']:.2f} s)",
            "< 2 s",
            _verdict(found["digest_s"] < 2),
        ),
    ]


def _child(regions: list[str]) -> None:
    """In the child: scan the fleet the environment points at, build a digest, say how long
    and how much memory, as one JSON line."""
    with tempfile.TemporaryDirectory(prefix="wsimg-bench-big-") as tmp:
        settings = Settings(
            slack_bot_token="xoxb-bench-" + secrets.token_hex(8),
            database_url=f"sqlite:///{tmp}/wsimg.db",
            regions=regions,
            approvers=["UBENCH0000"],
            scan_seconds=900,
        )
        services = build_services(settings)
        ensure_schema(services.engine)
        started = time.monotonic()
        fleet.fresh(services, max_age=timedelta(0))
        scanned = time.monotonic()
        digests.build_digest(services, user_id="UBENCH0000", channel_id=CHANNEL)
        built = time.monotonic()
        services.engine.dispose()
    found: dict[str, Any] = {
        "scan_s": scanned - started,
        "digest_s": built - scanned,
        "rss_mb": _peak_rss_mb(),
    }
    print(json.dumps(found))


def _peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM, the high-water mark of its own address
    space. Not ru_maxrss: Linux carries the parent's high-water mark over fork and exec into
    the child's (a child of a 300 MB parent reported 311 MB while it held 11), and the bench's
    parent holds the simulator's 10,000 images and what the main fleet left behind."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: KiB, as on Linux


if __name__ == "__main__":  # the child process of _big_fleet
    threading.current_thread().name = "wsimg-bench-child"
    _child(sys.argv[1].split(","))
