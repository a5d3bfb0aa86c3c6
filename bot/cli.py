"""The `wsimg` command line (also `python -m bot`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from typing import TYPE_CHECKING, Any, TextIO

from bot import redact
from bot.config import Settings, load_settings, log_level, require
from bot.errors import ConfigError, WsimgError
from storage.db import DatabaseError

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from bot.aws.gateway import ScanProgress

log = logging.getLogger("wsimg")

# Libraries whose INFO lines (alembic's on every start, waitress's, Slack's socket) stay out of
# the output unless LOG_LEVEL asks for them.
_LIBRARIES = ("alembic", "waitress", "slack_bolt", "slack_sdk", "urllib3", "sqlalchemy", "boto3")
# One line per scheduler run, one per AWS client: shown only when LOG_LEVEL=DEBUG.
_CHATTY = ("apscheduler", "botocore")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # A secret too short to be redacted (and to be Slack's) is refused before anything logs;
    # its value is never printed.
    short = redact.too_short()
    for name in short:
        print(
            f"wsimg: {name} is too short (under {redact.MIN_SECRET_LENGTH} characters) to be a "
            "real Slack secret: copy it again from the app's "
            f"{redact.SECRET_SOURCES[name.upper()]} at api.slack.com/apps.",
            file=sys.stderr,
        )
    if short:
        return 2
    long_running = args.run in (_serve, _worker)
    try:
        _configure_logging(logging.INFO if long_running else logging.WARNING)
        # Before anything can log: the Slack secrets and response URLs never reach a log line,
        # whatever fails.
        redact.install(redact.secrets_from_environment(), api_url=redact.api_url_from_environment())
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except (WsimgError, DatabaseError) as exc:
        # One line, whatever the message: a first run must not end in garbled text.
        print(f"wsimg: {' '.join(redact.scrub(exc.user_message).split())}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        if long_running:
            raise  # not a reader that went away: a failure to see
        # `wsimg updates --json | head`: the reader has what it wanted. Python's recipe: point
        # stdout at devnull so the flush at exit does not fail again, and exit as a process
        # that SIGPIPE ended would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


def _configure_logging(default: int) -> None:
    level, asked = log_level(default)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A logger's own level is the only one a record meets on its way to the root's handler:
    # never below the level asked for.
    quiet = max(logging.WARNING, level)
    if level > logging.DEBUG or not asked:
        for name in _CHATTY:
            logging.getLogger(name).setLevel(quiet)
    # Logging set up before main (a test harness at DEBUG) is left as it is.
    if not asked and logging.getLogger().level >= logging.INFO:
        for name in _LIBRARIES:
            logging.getLogger(name).setLevel(quiet)


def _version() -> str:
    try:
        return metadata.version("wsimg")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


# What each command reads, for its --help (README.md, Configuration, says more).
_MEANINGS = {
    "SLACK_BOT_TOKEN": "bot token (xoxb-…), checked with auth.test at start",
    "SLACK_SIGNING_SECRET": "signing secret (HTTP mode)",
    "SLACK_APP_TOKEN": "app-level token (xapp-…); when set, Socket Mode",
    "SLACK_API_URL": "Web API base URL (default https://slack.com/api/)",
    "DATABASE_URL": "SQLAlchemy URL (default sqlite:///wsimg.db)",
    "WSIMG_REGIONS": "comma list (default AWS_REGION, AWS_DEFAULT_REGION)",
    "WSIMG_ROLE_ARNS": "IAM roles to assume, one per extra account",
    "WSIMG_TEAM_IDS": "workspaces (T…) and orgs (E…) served",
    "WSIMG_APPROVERS": "user IDs (U…/W…) and group IDs (S…) allowed to approve",
    "WSIMG_FOUR_EYES": "true: a different approver must approve each request",
    "WSIMG_REQUESTERS": "with four eyes: who may ask for updates",
    "WSIMG_DIGEST_MANAGERS": "who may subscribe, unsubscribe and post digests",
    "WSIMG_MIN_DIGEST_MINUTES": "a subscription from Slack posts at most this often",
    "WSIMG_APPROVAL_TTL_HOURS": "an undecided request or an old list expires after this",
    "WSIMG_DIGEST_CHANNEL": "channel ID of the default digest",
    "WSIMG_DIGEST_CRON": "its 5-field cron (default 0 9 * * *)",
    "WSIMG_TIMEZONE": "IANA zone of the schedules (default UTC)",
    "WSIMG_POLL_SECONDS": "follow-up poll interval (default 300)",
    "WSIMG_REBUILD_BATCH": "WorkSpaces a rollout rebuilds at once (default 10)",
    "WSIMG_REBUILD_IDLE_HOURS": "a WorkSpace is rebuilt only when idle this long (default 8)",
    "WSIMG_IMAGE_QUOTA": "images per account and region, shown against counts (default 40)",
    "WSIMG_MAX_CONCURRENT_UPDATES": "updates building at once; more approved wait (default 10)",
    "WSIMG_SCHEDULER": "on/off: the scheduler inside serve",
    "PORT": "HTTP port (default 3000)",
    "AWS_*": "credentials, profile, endpoint URLs, as boto3 reads them",
    "AWS_RETRY_MODE": "standard (default), adaptive or legacy",
    "AWS_MAX_ATTEMPTS": "attempts per AWS call, the first included (default 5)",
    "LOG_LEVEL": "DEBUG, INFO, WARNING, ERROR (default {default})",
}
_AWS = ("WSIMG_REGIONS", "WSIMG_ROLE_ARNS", "AWS_*", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS")
_POLICY = (
    "WSIMG_APPROVERS",
    "WSIMG_FOUR_EYES",
    "WSIMG_REQUESTERS",
    "WSIMG_DIGEST_MANAGERS",
    "WSIMG_MIN_DIGEST_MINUTES",
    "WSIMG_APPROVAL_TTL_HOURS",
)
_SCHEDULE = ("WSIMG_DIGEST_CHANNEL", "WSIMG_DIGEST_CRON", "WSIMG_TIMEZONE", "WSIMG_POLL_SECONDS")
_ROLLOUT = (
    "WSIMG_REBUILD_BATCH",
    "WSIMG_REBUILD_IDLE_HOURS",
    "WSIMG_IMAGE_QUOTA",
    "WSIMG_MAX_CONCURRENT_UPDATES",
)


def _epilog(names: Sequence[str], *, log_default: str = "WARNING", note: str = "") -> str:
    width = max(len(name) for name in names)
    lines = [f"  {name:<{width}}  {_MEANINGS[name].format(default=log_default)}" for name in names]
    text = "environment (a bad value stops the command with a line naming it):\n"
    return text + "\n".join(lines) + (f"\n\n{note}" if note else "")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsimg", description=__doc__)
    parser.add_argument("--version", action="version", version=f"wsimg {_version()}")
    sub = parser.add_subparsers(required=True, metavar="command")

    def add(name: str, help: str, epilog: str, parent: Any = sub) -> argparse.ArgumentParser:
        return parent.add_parser(
            name,
            help=help,
            description=help,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    serve = add(
        "serve",
        "the Slack app (HTTP on $PORT, or Socket Mode)",
        _epilog(
            (
                "SLACK_BOT_TOKEN",
                "SLACK_SIGNING_SECRET",
                "SLACK_APP_TOKEN",
                "SLACK_API_URL",
                "WSIMG_TEAM_IDS",
                "DATABASE_URL",
                *_AWS,
                *_POLICY,
                *_SCHEDULE,
                *_ROLLOUT,
                "WSIMG_SCHEDULER",
                "PORT",
                "LOG_LEVEL",
            ),
            log_default="INFO",
        ),
    )
    serve.set_defaults(run=_serve)

    worker = add(
        "worker",
        "the scheduler alone: follow-ups and digests",
        _epilog(
            (
                "SLACK_BOT_TOKEN",
                "SLACK_API_URL",
                "DATABASE_URL",
                *_AWS,
                "WSIMG_FOUR_EYES",
                "WSIMG_APPROVAL_TTL_HOURS",
                *_SCHEDULE,
                *_ROLLOUT,
                "LOG_LEVEL",
            ),
            log_default="INFO",
        ),
    )
    worker.set_defaults(run=_worker)

    listing = add(
        "updates",
        "images with an update available",
        _epilog((*_AWS, "LOG_LEVEL")),
    )
    listing.add_argument("--region", help="one configured region only")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=_updates)

    digest = add(
        "digest",
        "post the digest now (or print it)",
        _epilog(
            (
                "SLACK_BOT_TOKEN",
                "SLACK_API_URL",
                "DATABASE_URL",
                *_AWS,
                "WSIMG_FOUR_EYES",
                "WSIMG_DIGEST_CHANNEL",
                "LOG_LEVEL",
            ),
            note="--dry-run needs no SLACK_BOT_TOKEN and calls no Slack.",
        ),
    )
    digest.add_argument("--channel", help="channel ID (default: WSIMG_DIGEST_CHANNEL)")
    digest.add_argument("--dry-run", action="store_true", help="print it; post nothing")
    digest.set_defaults(run=_digest)

    history = add(
        "history",
        "recent update requests and what happened",
        _epilog(("DATABASE_URL", "LOG_LEVEL")),
    )
    history.add_argument("--limit", type=int, default=20, help="how many requests (default 20)")
    history.add_argument("--json", action="store_true", help="every event, for an audit")
    history.set_defaults(run=_history)

    rollout = add(
        "rollout",
        "the rollout plan of an AVAILABLE update: bundles, WorkSpaces, shares, progress",
        _epilog(("DATABASE_URL", *_AWS, "WSIMG_IMAGE_QUOTA", "LOG_LEVEL")),
    )
    rollout.add_argument("id", nargs="?", help="request id or image id (default: the newest)")
    rollout.add_argument("--json", action="store_true", help="machine-readable output")
    rollout.set_defaults(run=_rollout)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(required=True, metavar="action")
    add(
        "upgrade",
        "apply the migrations",
        _epilog(("DATABASE_URL", "LOG_LEVEL")),
        parent=db_sub,
    ).set_defaults(run=_db_upgrade)

    demo = add(
        "demo",
        "play list → approve → follow-up against a fake world",
        _epilog(
            ("LOG_LEVEL",),
            note=(
                "The demo brings its own WorkSpaces simulator, Slack stand-in and temporary\n"
                "database, all on 127.0.0.1, whatever SLACK_*, DATABASE_URL, WSIMG_REGIONS\n"
                "and AWS_* say."
            ),
        ),
    )
    demo.set_defaults(run=_demo)

    bench = add(
        "bench",
        "measure the figures of issue 10 against a fake world; print each with PASS or MISS",
        _epilog(
            ("LOG_LEVEL",),
            note=(
                "Like the demo, the benchmark brings its own WorkSpaces simulator (with the\n"
                "latency asked for), Slack stand-in and temporary database, all on 127.0.0.1,\n"
                "whatever SLACK_*, DATABASE_URL, WSIMG_REGIONS and AWS_* say. A benchmark, not\n"
                "a test: it exits 0 whatever the figures. The full size takes a few minutes."
            ),
        ),
    )
    bench.add_argument("--regions", type=int, default=10, help="regions (default 10, at most 12)")
    bench.add_argument("--images", type=int, default=250, help="images per region (default 250)")
    bench.add_argument(
        "--latency", type=float, default=0.1, help="seconds per AWS call (default 0.1)"
    )
    bench.add_argument(
        "--quick", action="store_true", help="a small fleet, for a smoke run (ignores the rest)"
    )
    bench.set_defaults(run=_bench)
    return parser


def _services(settings: Settings, *, posts: bool = False):  # type: ignore[no-untyped-def]
    from bot.runtime import build_services
    from bot.slack.installation import auth_test
    from storage.db import ensure_schema

    services = build_services(settings)
    if posts:
        # A process that posts asks Slack about its token first: a refused one stops it now,
        # not at its first follow-up or digest.
        auth_test(settings, services.slack)
    ensure_schema(services.engine)
    return services


def _serve(_args: argparse.Namespace) -> int:
    from bot.jobs.scheduler import build_scheduler
    from bot.runtime import build_app, http_server, settle_heap

    settings = load_settings()
    require(settings.slack_bot_token, "SLACK_BOT_TOKEN")
    services = _services(settings)
    socket_mode = settings.slack_app_token is not None
    app = build_app(settings, services, socket_mode=socket_mode)
    settle_heap(services)
    server = None
    if not socket_mode:  # listening first: a PORT it cannot have stops it before any job runs
        try:
            server = http_server(services, app=app, port=settings.port)
        except OSError as exc:  # in use, or below 1024 without the right to it
            raise ConfigError(
                f"Configuration error: PORT {settings.port}: cannot listen there "
                f"({exc.strerror or exc}): set PORT to a free port, or stop what uses it."
            ) from exc
    scheduler = build_scheduler(services) if settings.scheduler else None
    if scheduler is not None:
        scheduler.start()
    try:
        if server is None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            log.info("serving over Socket Mode")
            handler = SocketModeHandler(app, require(settings.slack_app_token, "SLACK_APP_TOKEN"))
            handler.connect()
            _wait_for_signal()
            handler.close()
        else:
            log.info("serving HTTP on port %s", server.port)
            signal.signal(signal.SIGTERM, lambda *_: server.stop())
            server.run()
    finally:
        if scheduler is not None:
            _stop_scheduler(scheduler)
    return 0


def _worker(_args: argparse.Namespace) -> int:
    from bot.jobs.scheduler import build_scheduler
    from bot.runtime import settle_heap

    settings = load_settings()
    require(settings.slack_bot_token, "SLACK_BOT_TOKEN")  # it posts follow-ups and digests
    services = _services(settings, posts=True)
    scheduler = build_scheduler(services)
    settle_heap(services)
    scheduler.start()
    log.info("scheduler running")
    _wait_for_signal()
    _stop_scheduler(scheduler)
    return 0


def _stop_scheduler(scheduler: BaseScheduler) -> None:
    """Start no more jobs, and let the ones running finish before the process exits. A job
    cut off at exit (its new worker threads refused once the interpreter shuts down) leaves
    what it claimed half done: a digest slot claimed and never posted is a lost digest. A
    second SIGTERM or Ctrl-C ends the process at once, as a platform's SIGKILL does; that is
    what the claims and their takeovers are for."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    log.info("stopping: letting running jobs finish (a second SIGTERM or Ctrl-C stops at once)")
    scheduler.shutdown(wait=True)
    log.info("stopped")


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def _updates(args: argparse.Namespace) -> int:
    from bot.aws.gateway import WorkSpacesGateway

    settings = load_settings()
    if not settings.regions:
        print("wsimg: no region configured: set WSIMG_REGIONS or AWS_REGION.", file=sys.stderr)
        return 2
    if args.region and args.region not in settings.regions:
        print(f"wsimg: {args.region} is not in WSIMG_REGIONS.", file=sys.stderr)
        return 2
    gateway = WorkSpacesGateway(regions=settings.regions, role_arns=settings.role_arns)
    with _scan_bar(sys.stderr) as progress:
        listing = gateway.list_images(region=args.region, progress=progress)
    images = [image for image in listing.images if image.update_available]
    if args.json:
        print(json.dumps(_as_json(images, listing.failures), indent=2))
    else:
        print(_as_text(images, listing.failures))
    return 1 if listing.failures else 0


@contextmanager
def _scan_bar(stream: TextIO) -> Iterator[Callable[[ScanProgress], None] | None]:
    """A progress bar on ``stream`` while the scan runs, if it is a terminal (a pipe or a file
    gets nothing extra), wiped when the scan ends: what is printed next starts on a clean line.

    tqdm, not rich: a bar is all that is needed, and tqdm is one small module with no
    dependencies of its own."""
    if not stream.isatty():
        yield None
        return
    from tqdm import tqdm

    bar: tqdm[Any] | None = None

    def show(seen: ScanProgress) -> None:  # from the scan's threads, one at a time
        nonlocal bar
        if bar is None:
            unit = "region" if seen.accounts <= 1 else "account-region"
            bar = tqdm(
                total=seen.total,
                desc="Scanning",
                unit=unit,
                file=stream,
                leave=False,
                bar_format="{desc} {bar} {n_fmt}/{total_fmt} {unit}s [{elapsed}{postfix}]",
            )
        bar.set_postfix_str(f"{seen.images:,} images", refresh=False)
        bar.update(seen.done - bar.n)  # tqdm redraws at most every 0.1 s

    try:
        yield show
    finally:
        if bar is not None:
            bar.close()


def _as_json(images: list[Any], failures: list[Any]) -> dict[str, Any]:
    return {
        "images": [
            {
                "account_id": i.account_id,
                "region": i.region,
                "image_id": i.image_id,
                "name": i.name,
                "platform": i.platform,
                "update_description": i.update_description,
                "updatable": i.updatable,
                "not_updatable_reason": i.not_updatable_reason,
            }
            for i in images
        ],
        "failures": [
            {
                "account_id": f.target.account_id,
                "region": f.target.region,
                "code": f.error.code,
                "message": f.error.user_message,
            }
            for f in failures
        ],
    }


def _as_text(images: list[Any], failures: list[Any]) -> str:
    lines = [f"{len(images)} image(s) with a WorkSpaces update available"]
    group = None
    for image in images:
        if (image.account_id, image.region) != group:
            group = (image.account_id, image.region)
            lines.append(f"\n{image.region} (account {image.account_id})")
        note = (
            ""
            if image.updatable
            else f"  [cannot be updated by the API: {image.not_updatable_reason}]"
        )
        lines.append(f"  {image.image_id}  {image.name}  — {image.update_description or ''}{note}")
    for failure in failures:
        lines.append(f"\n! could not list {failure.target.region}: {failure.error.user_message}")
    return "\n".join(lines)


def _digest(args: argparse.Namespace) -> int:
    from bot.domain import digests
    from bot.slack import blocks, digest_view
    from bot.slack.notify import NotPosted
    from bot.slack.render import blocks_to_text

    settings = load_settings()
    channel = args.channel or settings.digest_channel
    if args.dry_run:
        services = _services(settings)
        report = digests.build_digest(services, user_id="cli", channel_id=channel)
        for message in digest_view.digest(report) or [
            blocks.text_message("(quiet: nothing to post)")
        ]:
            print(blocks_to_text(message["blocks"]))
            print()
        return 0
    if not channel:
        print("wsimg: name a channel with --channel or WSIMG_DIGEST_CHANNEL.", file=sys.stderr)
        return 2
    require(settings.slack_bot_token, "SLACK_BOT_TOKEN")
    services = _services(settings, posts=True)
    try:
        posted = digests.post_digest(services, channel_id=channel, user_id="cli")
    except NotPosted as exc:
        print(f"wsimg: {exc.user_message}", file=sys.stderr)
        return 1
    print(f"posted {posted} message(s) to {channel}")
    return 0


def _history(args: argparse.Namespace) -> int:
    settings = load_settings()  # before the domain's imports: a bad value is told at once
    from bot.domain import audit
    from storage.db import ensure_schema, make_engine

    engine = make_engine(settings.database_url)  # the record only: no AWS, no Slack
    ensure_schema(engine)
    trail = audit.audit_trail(engine, limit=args.limit)
    engine.dispose()
    if args.json:
        print(json.dumps({"requests": trail}, indent=2))
        return 0
    for request in trail:
        print(
            f"{request['id'][:8]}  {request['created_at']}  {request['state']:<10} "
            f"{request['source_image_name']} ({request['region']}) requested by "
            f"{request['requested_by']}, approved by {request['approved_by'] or '-'}"
            + (f" -> {request['new_image_id']}" if request["new_image_id"] else "")
        )
        for event in request["events"]:
            print(f"    {event['at']}  {event['kind']} by {event['actor']}")
    if not trail:
        print("No update request yet.")
    return 0


def _rollout(args: argparse.Namespace) -> int:
    settings = load_settings()
    from bot.domain import rollout
    from bot.domain.audit import Viewer
    from bot.slack import rollout_view
    from bot.slack.render import blocks_to_text

    services = _services(settings)
    # The terminal is an operator's, with the database's and AWS's credentials: every channel.
    who = Viewer(user_id="cli", channel_id="cli", everything=True)
    found = rollout.plan(services, rollout.find(services, query=args.id, who=who))
    if args.json:
        print(json.dumps(_plan_json(found), indent=2, default=str))
    else:
        print(blocks_to_text(rollout_view.plan(found)["blocks"]))
    return 1 if found.problems else 0


def _plan_json(found: Any) -> dict[str, Any]:
    rollout = found.rollout
    progress = found.progress
    return {
        "request_id": rollout.id,
        "account_id": rollout.account_id,
        "region": rollout.region,
        "source_image_id": rollout.source_image_id,
        "new_image_id": rollout.new_image_id,
        "state": rollout.state,
        "bundles": [
            {
                "bundle_id": use.bundle.bundle_id,
                "name": use.bundle.name,
                "image_id": use.bundle.image_id,
                "moved": use.moved,
                "workspaces": use.workspaces,
                "states": use.states,
                "connected": use.connected,
            }
            for use in found.bundles
        ],
        "source_shared_with": found.source_shares,
        "new_shared_with": found.new_shares,
        "image_count": found.image_count,
        "image_quota": found.quota,
        "progress": None
        if progress is None
        else {
            "wave": progress.wave,
            "total": progress.total,
            "rebuilt": progress.rebuilt,
            "in_flight": progress.in_flight,
            "waiting": progress.waiting,
            "failed": progress.failed,
            "unconfirmed": progress.unconfirmed,
            "line": progress.line(),
        },
        "failed_steps": found.failed,
        "problems": found.problems,
    }


def _db_upgrade(_args: argparse.Namespace) -> int:
    from storage.db import make_engine, schema_status, upgrade

    engine = make_engine(load_settings().database_url)
    upgrade(engine)
    current, _head = schema_status(engine)
    print(f"database at revision {current}")
    return 0


def _demo(_args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return run_demo()


def _bench(args: argparse.Namespace) -> int:
    from bot.bench import REGIONS, Sizes, run_bench

    if args.quick:
        return run_bench(Sizes.quick())
    if not 1 <= args.regions <= len(REGIONS) or args.images < 1 or args.latency < 0:
        print(
            f"wsimg: --regions must be 1 to {len(REGIONS)}, --images at least 1, "
            "--latency at least 0.",
            file=sys.stderr,
        )
        return 2
    return run_bench(Sizes(regions=args.regions, images=args.images, latency=args.latency))
