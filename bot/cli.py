"""The `wsimg` command line (also `python -m bot`)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from bot import redact
from bot.config import Settings, load_settings, require
from bot.errors import WsimgError

log = logging.getLogger("wsimg")


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
    logging.basicConfig(
        level=logging.WARNING if args.run is _demo else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per scheduler run is noise; APScheduler's warnings and errors still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # botocore logs where it found the endpoint on every client it makes.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    # Before anything can log: the Slack secrets and response URLs never reach a log line,
    # whatever fails.
    redact.install(redact.secrets_from_environment(), api_url=redact.api_url_from_environment())
    try:
        return int(args.run(args) or 0)
    except WsimgError as exc:
        print(f"wsimg: {redact.scrub(exc.user_message)}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsimg", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="command")

    serve = sub.add_parser("serve", help="the Slack app (HTTP on $PORT, or Socket Mode)")
    serve.set_defaults(run=_serve)

    worker = sub.add_parser("worker", help="the scheduler alone")
    worker.set_defaults(run=_worker)

    listing = sub.add_parser("updates", help="images with an update available")
    listing.add_argument("--region", help="one configured region only")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(run=_updates)

    digest = sub.add_parser("digest", help="post the digest now (or print it)")
    digest.add_argument("--channel", help="channel ID (default: WSIMG_DIGEST_CHANNEL)")
    digest.add_argument("--dry-run", action="store_true", help="print it; post nothing")
    digest.set_defaults(run=_digest)

    history = sub.add_parser("history", help="recent update requests and what happened")
    history.add_argument("--limit", type=int, default=20, help="how many requests (default 20)")
    history.add_argument("--json", action="store_true", help="every event, for an audit")
    history.set_defaults(run=_history)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(required=True, metavar="action")
    db_sub.add_parser("upgrade", help="apply the migrations").set_defaults(run=_db_upgrade)

    demo = sub.add_parser("demo", help="play list → approve → follow-up against a fake world")
    demo.set_defaults(run=_demo)
    return parser


def _services(settings: Settings):  # type: ignore[no-untyped-def]
    from bot.services import build_services
    from storage.db import ensure_schema

    services = build_services(settings)
    ensure_schema(services.engine)
    return services


def _serve(_args: argparse.Namespace) -> int:
    from bot.app import build_app
    from bot.scheduler import build_scheduler
    from bot.server import WsgiApp, make_server

    settings = load_settings()
    require(settings.slack_bot_token, "SLACK_BOT_TOKEN")
    services = _services(settings)
    socket_mode = settings.slack_app_token is not None
    app = build_app(settings, services, socket_mode=socket_mode)
    scheduler = build_scheduler(services) if settings.scheduler else None
    if scheduler is not None:
        scheduler.start()
    try:
        if socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            log.info("serving over Socket Mode")
            handler = SocketModeHandler(app, require(settings.slack_app_token, "SLACK_APP_TOKEN"))
            handler.connect()
            _wait_for_signal()
            handler.close()
        else:
            secret = require(settings.slack_signing_secret, "SLACK_SIGNING_SECRET")
            wsgi = WsgiApp(
                app, services.engine, signing_secret=secret, api_url=settings.slack_api_url
            )
            server = make_server(wsgi, port=settings.port)
            log.info("serving HTTP on port %s", server.port)
            signal.signal(signal.SIGTERM, lambda *_: server.stop())
            server.run()
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
    return 0


def _worker(_args: argparse.Namespace) -> int:
    from bot.scheduler import build_scheduler

    settings = load_settings()
    require(settings.slack_bot_token, "SLACK_BOT_TOKEN")  # it posts follow-ups and digests
    services = _services(settings)
    scheduler = build_scheduler(services)
    scheduler.start()
    log.info("scheduler running")
    _wait_for_signal()
    scheduler.shutdown(wait=False)
    return 0


def _wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def _updates(args: argparse.Namespace) -> int:
    from bot.gateway import WorkSpacesGateway

    settings = load_settings()
    if not settings.regions:
        print("wsimg: no region configured: set WSIMG_REGIONS or AWS_REGION.", file=sys.stderr)
        return 2
    if args.region and args.region not in settings.regions:
        print(f"wsimg: {args.region} is not in WSIMG_REGIONS.", file=sys.stderr)
        return 2
    gateway = WorkSpacesGateway(regions=settings.regions, role_arns=settings.role_arns)
    listing = gateway.list_images(region=args.region)
    images = [image for image in listing.images if image.update_available]
    if args.json:
        print(json.dumps(_as_json(images, listing.failures), indent=2))
    else:
        print(_as_text(images, listing.failures))
    return 1 if listing.failures else 0


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
    from bot import blocks, digests
    from bot.render import blocks_to_text

    settings = load_settings()
    services = _services(settings)
    channel = args.channel or settings.digest_channel
    if args.dry_run:
        report = digests.build_digest(services, user_id="cli", channel_id=channel)
        for message in blocks.digest(report) or [blocks.text_message("(quiet: nothing to post)")]:
            print(blocks_to_text(message["blocks"]))
            print()
        return 0
    if not channel:
        print("wsimg: name a channel with --channel or WSIMG_DIGEST_CHANNEL.", file=sys.stderr)
        return 2
    require(settings.slack_bot_token, "SLACK_BOT_TOKEN")
    posted = digests.post_digest(services, channel_id=channel, user_id="cli")
    print(f"posted {posted} message(s) to {channel}")
    return 0


def _history(args: argparse.Namespace) -> int:
    from bot import updates
    from storage.db import ensure_schema, make_engine

    engine = make_engine(load_settings().database_url)  # the record only: no AWS, no Slack
    ensure_schema(engine)
    trail = updates.audit_trail(engine, limit=args.limit)
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
