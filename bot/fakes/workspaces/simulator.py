"""The simulator tests and ``wsimg demo`` start: :class:`WorkSpacesSimulator`, its lifecycle on
127.0.0.1, the environment that points boto3 at it, and the controls tests steer it with."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from bot.fakes.hold import Hold
from bot.fakes.workspaces.protocol import SimulatorServer
from bot.fakes.workspaces.service import STS_OPERATIONS, WorkSpacesService
from bot.fakes.workspaces.store import BuildFailure, Call, Injected

# Variables that would make boto3 ignore or second-guess the simulator (a developer's profile,
# a real session token, the instance metadata service): unset them when pointing boto3 here.
CLEARED_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL_WORKSPACES",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
    "AWS_CA_BUNDLE",
)


class WorkSpacesSimulator(WorkSpacesService):
    """In-memory WorkSpaces images behind a local HTTP endpoint. Thread-safe.

    ``pending_seconds``: how long an updated image stays PENDING. ``image_limit``: images per
    account and region (the real default quota is 40). ``credential_seconds``: the most an
    AssumeRole credential lives. ``clock``: the time source for image lifecycles (tests may pass
    a fake one). ``seed``: makes generated image IDs reproducible.
    """

    # -- lifecycle --

    def start(self) -> WorkSpacesSimulator:
        if self._server is not None:
            return self
        self._server = SimulatorServer(("127.0.0.1", self.port), self.handle)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"workspaces-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        with self._lock:
            holds = list(self._holds.values())
        for hold in holds:
            hold.release()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> WorkSpacesSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return f"http://127.0.0.1:{self.port}"

    def environment(self, *, region: str = "us-east-1") -> dict[str, str]:
        """Environment variables that point boto3 (with fake credentials) at this simulator.

        Also unset the names in ``CLEARED_ENV``.
        """
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "AKIASIMULATOR0000000",
            "AWS_SECRET_ACCESS_KEY": "simulator-secret-not-a-real-key",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }

    # -- controls for tests --

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def count(self, operation: str) -> int:
        with self._lock:
            return sum(1 for call in self._calls if call.operation == operation)

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def fail_next(
        self,
        operation: str,
        code: str,
        message: str = "",
        times: int = 1,
        *,
        region: str | None = None,
        account_id: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests for ``operation`` with error ``code``.

        ``code`` is sent as is (``ResourceLimitExceededException``); ``region`` and
        ``account_id`` narrow which requests are hit.
        """
        entry = Injected(code, message or f"Simulated {code}", region, account_id)
        with self._lock:
            self._failures.setdefault(operation, []).extend([entry] * times)

    def throttle(
        self,
        operation: str,
        times: int = 1,
        *,
        region: str | None = None,
        account_id: str | None = None,
    ) -> None:
        """Answer ``times`` requests with the throttling error botocore retries."""
        code = "Throttling" if operation in STS_OPERATIONS else "ThrottlingException"
        self.fail_next(
            operation, code, "Rate exceeded", times, region=region, account_id=account_id
        )

    def deny(
        self, operation: str, *, region: str | None = None, account_id: str | None = None
    ) -> None:
        """Answer ``operation`` with AccessDenied until ``allow(operation)``.

        ``region`` and ``account_id`` narrow the denial. Denying CreateTags also denies
        CreateUpdatedWorkspaceImage calls that pass Tags.
        """
        with self._lock:
            self._denied.add((operation, region, account_id))

    def allow(self, operation: str) -> None:
        """Lift every denial of ``operation``."""
        with self._lock:
            self._denied = {d for d in self._denied if d[0] != operation}

    def hold(self, operation: str, *, after: bool = False) -> Hold:
        """Keep calls of ``operation`` waiting until the hold is released: before they are
        carried out, or with ``after=True`` once carried out, before the reply goes back (a
        caller killed while held has made its change and never learns of it)."""
        hold = Hold(operation, self.hold_timeout)
        gates = self._holds_after if after else self._holds
        with self._lock:
            previous = gates.get(operation)
            gates[operation] = hold
        if previous is not None:
            previous.release()
        return hold

    def lose_response(self, operation: str, times: int = 1) -> None:
        """Carry out the next ``times`` calls of ``operation``, then answer each with a 500,
        as if the reply had been lost on the way: the caller cannot tell it worked."""
        with self._lock:
            self._lost[operation] = self._lost.get(operation, 0) + times

    def fail_build(
        self,
        source_image_id: str,
        code: str,
        message: str,
        details: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        """Updates of ``source_image_id`` started from now on end in ERROR with code/message.

        ``details``: the (ErrorCode, ErrorMessage) pairs DescribeWorkspaceImages lists as the
        image's ``ErrorDetails``; each code must be one of botocore's
        WorkspaceImageErrorDetailCode values (ValueError otherwise). Without ``details``, the
        image has one detail equal to code/message if ``code`` is such a value, else none.
        """
        allowed = self._model.shape_for("WorkspaceImageErrorDetailCode").enum
        pairs: tuple[tuple[str, str], ...]
        if details is None:
            pairs = ((code, message),) if code in allowed else ()
        else:
            pairs = tuple((detail_code, detail_message) for detail_code, detail_message in details)
            wrong = [detail_code for detail_code, _ in pairs if detail_code not in allowed]
            if wrong:
                raise ValueError(
                    f"{', '.join(wrong)} not in WorkspaceImageErrorDetailCode "
                    f"({', '.join(allowed)})"
                )
        with self._lock:
            self._build_failures[source_image_id] = BuildFailure(code, message, pairs)
