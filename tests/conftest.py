"""The fake world every end-to-end test runs in: the WorkSpaces simulator (real boto3 over
HTTP), the Slack Web API stand-in (real slack_sdk over HTTP), a real database, and the real
Bolt app served by waitress, reached with signed requests.

``World`` also holds what many tests do and read: approve an image as a user would, the
requests in the database, the CreateUpdatedWorkspaceImage calls AWS received, and waits for
what proves that something happened, or that nothing did: ``settle()`` returns once every
listener the app has started has finished."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlmodel import col, select

from bot.config import Settings
from bot.domain.poller import PollReport
from bot.fakes.slack import HttpResult, SlackUser, SlackWebAPI, find_buttons
from bot.fakes.slack.listeners import TrackingExecutor
from bot.fakes.workspaces import CLEARED_ENV, WorkSpacesSimulator
from bot.jobs.followups import run as run_followups
from bot.runtime import Services, build_app, build_services, http_server
from bot.slack.server import Server
from storage import crud
from storage.db import ensure_schema, session_scope
from storage.models import UpdateRequest
from tests.postgres import PostgresServer, PostgresUnavailable

BOT_TOKEN = "xoxb-test-token-do-not-log"
SIGNING_SECRET = "test-signing-secret-do-not-log"
APPROVER = "UAPPROVER"
GROUP = "SADMINS"
GROUP_MEMBER = "UGROUPIE"
OUTSIDER = "UOUTSIDER"
REGIONS = ("us-east-1", "eu-west-1")
T = TypeVar("T")


def wait_until(check: Callable[[], T], what: str, *, timeout: float = 15, every: float = 0.05) -> T:
    """``check()`` once it returns something true, or fail within ``timeout`` saying ``what``
    was awaited and what ``check()`` last returned."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}; last saw {found!r}")
        time.sleep(every)
    return found


def _is_loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str) or host.startswith("/"):
        return True  # Unix sockets
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The tests that run real processes under load or on the clock go first, so that the other
# worker's many short tests fill the time beside them instead of after them; and together,
# so that they run one after another on one worker instead of against each other for two
# cores (pyproject.toml, addopts).
PROCESSES = pytest.mark.processes


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("processes") is None)


@pytest.fixture(autouse=True, scope="session")
def _no_network_beyond_loopback() -> Iterator[None]:
    """Any connection to an address other than loopback fails the test that makes it."""
    original = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise AssertionError(f"test tried to reach {address!r}: only 127.0.0.1 is allowed")
        return original(self, address)

    socket.socket.connect = guarded  # type: ignore[method-assign]
    yield
    socket.socket.connect = original  # type: ignore[method-assign]


@pytest.fixture
def simulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkSpacesSimulator]:
    with WorkSpacesSimulator(pending_seconds=60) as sim:
        for name in CLEARED_ENV:
            monkeypatch.delenv(name, raising=False)
        for name, value in sim.environment().items():
            monkeypatch.setenv(name, value)
        yield sim


@pytest.fixture
def slack() -> Iterator[SlackWebAPI]:
    with SlackWebAPI(bot_token=BOT_TOKEN) as api:
        api.set_usergroup(GROUP, [GROUP_MEMBER, "UOTHER"])
        for user in (APPROVER, GROUP_MEMBER, OUTSIDER):
            api.set_user(user, user.lower().removeprefix("u"))
        yield api


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL for the session (or the server WSIMG_TEST_POSTGRES_URL names)."""
    try:
        server = PostgresServer.from_environment()
    except PostgresUnavailable as exc:
        problem = str(exc)
    else:
        problem = ""
    if problem:
        pytest.fail(problem, pytrace=False)
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test that touches the database runs on SQLite and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/wsimg.db"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def settings(slack: SlackWebAPI, simulator: WorkSpacesSimulator, database_url: str) -> Settings:
    return Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        database_url=database_url,
        regions=list(REGIONS),
        approvers=[APPROVER, GROUP],
        poll_seconds=1,
        # Every listing scans again (sharing a scan only with listings at the same moment):
        # tests change the simulator between listings. Tests of the shared scan raise it.
        scan_seconds=0,
    )


@dataclass
class World:
    simulator: WorkSpacesSimulator
    slack: SlackWebAPI
    services: Services
    events_url: str
    user: SlackUser
    listeners: TrackingExecutor
    seen: dict[str, Any] = field(default_factory=dict)

    def command(
        self, text: str, *, user_id: str = APPROVER, channel_id: str = "C0OPS"
    ) -> HttpResult:
        return self.user.command(text, user_id=user_id, channel_id=channel_id)

    def answer(self, result: HttpResult, *, timeout: float = 15) -> dict[str, Any]:
        """The first message the app sent to the response_url of ``result`` that has blocks."""
        return self.slack.wait_for_response(
            result.response_url, lambda payload: bool(payload.get("blocks")), timeout=timeout
        )

    def listing(self, text: str = "updates", *, user_id: str = APPROVER) -> dict[str, Any]:
        return self.answer(self.command(text, user_id=user_id))

    def approve_button(self, message: dict[str, Any], image_id: str) -> dict[str, Any]:
        """The Approve button in the actions block under the image's section."""
        button = self.image_button(message, image_id, "approve")
        if button is None:
            raise AssertionError(f"no Approve button for {image_id}")
        return button

    def image_button(
        self, message: dict[str, Any], image_id: str, kind: str
    ) -> dict[str, Any] | None:
        """The `wsimg.<kind>` button under the image's section, or None."""
        blocks = message["blocks"]
        for block, following in zip(blocks, [*blocks[1:], {}], strict=True):
            if image_id in block.get("text", {}).get("text", "") and following.get("elements"):
                for button in find_buttons([following]):
                    if button["action_id"].startswith(f"wsimg.{kind}"):
                        return button
        return None

    def all_pages(self, first: dict[str, Any]) -> list[dict[str, Any]]:
        """Follow the Next buttons like a user would, collecting every page."""
        pages = [first]
        while True:
            nexts = [
                b
                for b in find_buttons(pages[-1]["blocks"])
                if b["action_id"].startswith("wsimg.page") and "Next" in b["text"]
            ]
            if not nexts:
                return pages
            pages.append(self.answer(self.click(nexts[0])))

    def approve_buttons(self, pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            b
            for page in pages
            for b in find_buttons(page["blocks"])
            if b["action_id"].startswith("wsimg.approve")
        ]

    def click(self, button: dict[str, Any], *, user_id: str = APPROVER) -> HttpResult:
        return self.user.click(button["action_id"], button["value"], user_id=user_id)

    def poll(self) -> PollReport:
        return run_followups(self.services)

    # ---- what many tests do and read ------------------------------------------------------

    def approve(self, image: str, *, user_id: str = APPROVER) -> dict[str, Any]:
        """List the updates, click the image's Approve as ``user_id``, and return the answer to
        the click: it comes once the click has been dealt with (the create called, or not)."""
        button = self.approve_button(self.listing(user_id=user_id), image)
        result = self.click(button, user_id=user_id)
        assert result.status == 200
        return self.answer(result)

    def approved(self, image: str, *, user_id: str = APPROVER) -> UpdateRequest:
        """``approve``, then the image's one request."""
        self.approve(image, user_id=user_id)
        [request] = self.requests(image)
        return request

    def requests(self, image: str | None = None) -> list[UpdateRequest]:
        """Every update request (of ``image``, when given), oldest first."""
        query = select(UpdateRequest).order_by(col(UpdateRequest.created_at))
        if image is not None:
            query = query.where(UpdateRequest.source_image_id == image)
        with session_scope(self.services.engine) as session:
            return list(session.exec(query))

    def reload(self, request: UpdateRequest | str) -> UpdateRequest:
        """The request (or request id) as the database has it now."""
        request_id = request if isinstance(request, str) else request.id
        with session_scope(self.services.engine) as session:
            found = crud.get_request(session=session, request_id=request_id)
        assert found is not None, request_id
        return found

    def creates(self) -> list[dict[str, Any]]:
        """The parameters of every CreateUpdatedWorkspaceImage call AWS received."""
        return [
            c.params for c in self.simulator.calls if c.operation == "CreateUpdatedWorkspaceImage"
        ]

    def responses(self, result: HttpResult, count: int, *, timeout: float = 15) -> list[Any]:
        """The payloads sent to ``result``'s response_url, once there are at least ``count``."""
        url = result.response_url
        assert url is not None

        def enough() -> list[Any]:
            found = self.slack.responses_for(url)
            return found if len(found) >= count else []

        return wait_until(enough, f"{count} answers at {url}", timeout=timeout)

    def settle(self, *, timeout: float = 30) -> None:
        """Until every listener the app has started so far has finished. Bolt hands a
        request's listeners to the pool before it answers the request, so once a request has
        its HTTP answer, what it set going (if anything) is done when this returns."""
        raised, running = self.listeners.settle(timeout)
        assert running == 0, f"{running} listener(s) still running after {timeout} s"
        assert raised == [], f"a listener raised: {raised!r}"


def serve_app(services: Services) -> tuple[str, Server, TrackingExecutor]:
    """The real app on a free port: its events URL, its server, and its tracked listener pool."""
    app = build_app(services.settings, services)
    listeners = TrackingExecutor.around(app)
    server = http_server(services, app=app, host="127.0.0.1", port=0).start()
    return f"http://127.0.0.1:{server.port}/slack/events", server, listeners


def serve(services: Services) -> tuple[str, Server]:
    url, server, _ = serve_app(services)
    return url, server


@contextmanager
def running_world(
    settings: Settings, simulator: WorkSpacesSimulator, slack: SlackWebAPI
) -> Iterator[World]:
    """The world of the ``world`` fixture, for fixtures that change something first."""
    # No real AWS lags behind: a Name AWS says exists is looked up without pauses.
    services = build_services(settings, name_lookup_pause=0)
    ensure_schema(services.engine)
    url, server, listeners = serve_app(services)
    try:
        yield World(
            simulator=simulator,
            slack=slack,
            services=services,
            events_url=url,
            user=SlackUser(url, SIGNING_SECRET, slack),
            listeners=listeners,
        )
    finally:
        # What the clicks set going (a Home refresh after the answer, say) ends before the
        # database goes: PostgreSQL will not drop a database a connection still uses.
        listeners.settle(5)
        server.stop()
        services.engine.dispose()


@pytest.fixture
def world(
    settings: Settings, simulator: WorkSpacesSimulator, slack: SlackWebAPI
) -> Iterator[World]:
    with running_world(settings, simulator, slack) as world:
        yield world
