"""The WorkSpaces gateway: every AWS call wsimg makes for images (the rollout's calls are in
bot/aws/rollout.py), and the only module that imports boto3.

It reaches the base account (whatever credentials boto3 finds) and one extra account per role
in WSIMG_ROLE_ARNS, in each configured region. Clients are built once per (account, region)
with botocore's standard retry mode, so throttled Describe* calls back off and retry inside
botocore. Every botocore exception leaves this module as an ``AwsError`` (bot/aws/errors.py).

AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_WORKSPACES and AWS_ENDPOINT_URL_STS work as boto3 defines
them because no client here is given an explicit endpoint.

A fleet scan lists every target at once (one thread each, up to ``MAX_SCAN_WORKERS``): its
time is then the longest target's pages, not a sum of rounds. What it costs in CPU matters as
much, because signing and parsing hold the GIL while the other targets wait for theirs; see
``_utc_timestamp``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import boto3
import botocore.parsers
import botocore.session
import botocore.utils
from botocore.config import Config
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import BotoCoreError, ClientError

from bot.aws.errors import aws_error_from_botocore_error, aws_error_from_client_error
from bot.errors import AwsError, ConfigError

PAGE_SIZE = 25  # DescribeWorkspaceImages: MaxResults 1-25, ImageIds 1-25
# One thread per target up to this many (ten accounts in three regions fit); beyond it the
# targets take turns.
MAX_SCAN_WORKERS = 32
ROLE_SESSION_NAME = "wsimg"
ROLE_SESSION_SECONDS = 3600

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/[\w+=,.@/-]+$")

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """One account in one region."""

    account_id: str
    region: str
    role_arn: str | None = None


@dataclass(frozen=True)
class Image:
    account_id: str
    region: str
    image_id: str
    name: str
    description: str | None
    state: str  # AVAILABLE | PENDING | ERROR
    platform: str | None  # OperatingSystem.Type: WINDOWS | LINUX | None
    update_available: bool
    update_description: str | None
    error_code: str | None = None
    error_message: str | None = None
    created: datetime | None = None
    # ErrorDetails of an ERROR image: (ErrorCode, ErrorMessage) pairs, in WorkSpaces' order.
    error_details: tuple[tuple[str, str], ...] = ()

    @property
    def updatable(self) -> bool:
        """Whether CreateUpdatedWorkspaceImage can work on this image now: a Windows image
        that is AVAILABLE (anything else is refused with InvalidResourceState)."""
        return self.platform == "WINDOWS" and self.state == "AVAILABLE"

    @property
    def not_updatable_reason(self) -> str | None:
        if self.updatable:
            return None
        if self.platform == "WINDOWS":
            return f"The image is {self.state}; it can be updated once it is AVAILABLE."
        if self.platform == "LINUX":
            return "Linux images cannot be updated by the API; update it by hand."
        return (
            "WorkSpaces does not say which operating system this image runs, and only "
            "Windows images can be updated by the API; update it by hand."
        )


@dataclass(frozen=True)
class TargetFailure:
    target: Target
    error: AwsError


@dataclass(frozen=True)
class Listing:
    images: list[Image]
    failures: list[TargetFailure]


@dataclass(frozen=True)
class ScanProgress:
    """How far ``list_images`` has come."""

    done: int  # targets listed, or failed
    total: int
    accounts: int  # accounts among the targets
    images: int  # images seen so far, in every target


def account_from_role_arn(role_arn: str) -> str:
    """The 12-digit account ID of an IAM role ARN; ConfigError when it is not one."""
    match = _ROLE_ARN.match(role_arn.strip())
    if not match:
        raise ConfigError(
            f"WSIMG_ROLE_ARNS: {role_arn!r} is not an IAM role ARN "
            f"(arn:aws:iam::123456789012:role/NAME)."
        )
    return match.group("account")


class _FixedProvider(CredentialProvider):
    """Hands one credentials object to a botocore session's credential resolver."""

    METHOD = "wsimg-assume-role"
    CANONICAL_NAME = "wsimg-assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


def _image_from_api(data: dict[str, Any], *, account_id: str, region: str) -> Image:
    updates = data.get("Updates") or {}
    created = data.get("Created")
    return Image(
        account_id=account_id,
        region=region,
        image_id=data["ImageId"],
        name=data.get("Name", ""),
        description=data.get("Description"),
        state=data.get("State", "UNKNOWN"),
        platform=(data.get("OperatingSystem") or {}).get("Type"),
        update_available=bool(updates.get("UpdateAvailable", False)),
        update_description=updates.get("Description"),
        error_code=data.get("ErrorCode"),
        error_message=data.get("ErrorMessage"),
        created=created.astimezone(UTC) if isinstance(created, datetime) else None,
        error_details=tuple(
            (str(detail.get("ErrorCode", "")), str(detail.get("ErrorMessage", "")))
            for detail in data.get("ErrorDetails") or ()
        ),
    )


def _utc_timestamp(value: Any) -> datetime:
    """botocore's response timestamp parser, made cheap for the JSON protocol's epoch seconds.

    botocore turns each one into local time through dateutil's ``tzlocal`` (``localtime``
    calls and a DST check): parsing a page of 25 images took 1.1 ms, of about 3.5 ms of CPU
    per call on the client, and takes 0.6 ms with this. The instant is the same, in UTC;
    anything else (ISO 8601, RFC 822, out of range) goes to botocore's parser as before."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    parsed: datetime = botocore.utils.parse_timestamp(value)
    return parsed


class _LeanJSONParser(botocore.parsers.JSONParser):
    """botocore's parser of the JSON protocol, except that DescribeWorkspaceImages' answer is
    not walked member by member against the model: its JSON is used as it is and each image's
    ``Created`` (its one timestamp; the rest are strings, booleans and lists and structures of
    them) made a datetime. A page of 25 images took 0.9 ms of CPU to parse, of about 4 ms per
    call on the client, and the scan's 10 regions make their calls at the same moments under
    one GIL (wsimg bench). The result is the same but for members the model does not know,
    which are kept (``test_gateway_parsing.py`` compares the two)."""

    def _handle_json_body(self, raw_body: bytes, shape: Any) -> Any:
        if shape is None or shape.name != "DescribeWorkspaceImagesResult":
            return super()._handle_json_body(raw_body, shape)
        parsed = self._parse_body_as_json(raw_body)
        for image in parsed.get("Images") or ():
            if image.get("Created") is not None:
                image["Created"] = self._timestamp_parser(image["Created"])
        return parsed


class _LeanParserFactory(botocore.parsers.ResponseParserFactory):
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return _LeanJSONParser(**self._defaults)
        return super().create_parser(protocol_name)


def _lean_parsing(session: botocore.session.Session) -> None:
    """Make the clients of ``session`` parse response timestamps with ``_utc_timestamp`` and
    DescribeWorkspaceImages' answers with ``_LeanJSONParser`` (botocore's documented hook: the
    session's response parser factory, and its defaults)."""
    factory = _LeanParserFactory()
    factory.set_parser_defaults(timestamp_parser=_utc_timestamp)
    session.register_component("response_parser_factory", factory)


def call(action: str, region: str, fn: Callable[[], T]) -> T:
    """Run one AWS call; every botocore failure leaves as an AwsError naming ``action``."""
    return _call(action, region, fn)


def _call(action: str, region: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ClientError as exc:
        raise aws_error_from_client_error(exc, action=action, region=region) from exc
    except BotoCoreError as exc:
        raise aws_error_from_botocore_error(exc, action=action, region=region) from exc


DEFAULT_RETRY_MODE = "standard"
DEFAULT_MAX_ATTEMPTS = 5


def _retries(retry_mode: str | None, max_attempts: int | None) -> dict[str, Any]:
    """The client's retry settings: those passed in, else AWS_RETRY_MODE and AWS_MAX_ATTEMPTS
    as boto3 defines them, else standard mode and 5 attempts.

    botocore reads the two variables only for the keys a client's Config leaves out, so a key
    is left out when its variable is set (bot/config.py has already checked its value)."""
    retries: dict[str, Any] = {}
    if retry_mode is not None or not os.environ.get("AWS_RETRY_MODE"):
        retries["mode"] = retry_mode or DEFAULT_RETRY_MODE
    if max_attempts is not None or not os.environ.get("AWS_MAX_ATTEMPTS"):
        # total_max_attempts counts the first request too (like AWS_MAX_ATTEMPTS); botocore's
        # "max_attempts" key would count only the retries.
        retries["total_max_attempts"] = max_attempts or DEFAULT_MAX_ATTEMPTS
    return retries


class WorkSpacesGateway:
    """All WorkSpaces and STS calls for the configured accounts and regions. Thread-safe."""

    def __init__(
        self,
        *,
        regions: list[str],
        role_arns: Sequence[str] = (),
        session: boto3.Session | None = None,
        max_workers: int = MAX_SCAN_WORKERS,
        retry_mode: str | None = None,
        max_attempts: int | None = None,
    ) -> None:
        self.regions = list(dict.fromkeys(r.strip() for r in regions if r.strip()))
        if not self.regions:
            raise ConfigError("No AWS region is configured: set WSIMG_REGIONS or AWS_REGION.")
        self.role_arns = list(dict.fromkeys(a.strip() for a in role_arns if a.strip()))
        self._role_accounts = {arn: account_from_role_arn(arn) for arn in self.role_arns}
        self._session = session if session is not None else boto3.Session()
        # Also for a session passed in (its other clients get the same instants, in UTC). boto3
        # has no public accessor for its botocore session.
        _lean_parsing(self._session._session)
        self._max_workers = max(1, max_workers)
        self._config = Config(
            retries=_retries(retry_mode, max_attempts),
            connect_timeout=5,
            read_timeout=30,
        )
        # For calls that must not be sent twice (RebuildWorkspaces): one attempt, no retry.
        self._once = self._config.merge(Config(retries={"total_max_attempts": 1}))
        # boto3 sessions are not thread-safe, clients are: every client is built under this lock.
        self._lock = threading.Lock()
        self._identity_lock = threading.Lock()
        self._base_account: str | None = None
        self._clients: dict[tuple[str, str, bool], Any] = {}
        self._role_sessions: dict[str, boto3.Session] = {}

    # -- targets and clients -------------------------------------------------------------

    def prepare(self) -> None:
        """Load what the WorkSpaces clients are made of (botocore's service model, endpoint
        rules, client class) now, without calling AWS or looking for credentials, rather than
        in the first scan: a long-running process can then keep them out of its garbage
        collections (bot/runtime.py ``settle_heap``)."""
        with self._lock:
            self._session.client(
                "workspaces",
                region_name=self.regions[0],
                config=self._config,
                aws_access_key_id="prepare-only",
                aws_secret_access_key="prepare-only",  # noqa: S106 (no call is made with it)
            )

    def base_account_id(self) -> str:
        """The account of the base credentials (STS GetCallerIdentity, asked once)."""
        with self._identity_lock:
            if self._base_account is None:
                region = self.regions[0]
                sts = self._build_client("sts", region, self._session)
                identity = _call("GetCallerIdentity", region, sts.get_caller_identity)
                self._base_account = str(identity["Account"])
            return self._base_account

    def targets(self) -> list[Target]:
        """Base account x regions, then each role's account x regions (first one wins)."""
        accounts: dict[str, str | None] = {self.base_account_id(): None}
        for arn, account in self._role_accounts.items():
            accounts.setdefault(account, arn)
        return [
            Target(account_id=account, region=region, role_arn=arn)
            for account, arn in accounts.items()
            for region in self.regions
        ]

    def _role_for(self, account_id: str) -> str | None:
        if account_id == self.base_account_id():
            return None
        for arn, account in self._role_accounts.items():
            if account == account_id:
                return arn
        raise ConfigError(
            f"Account {account_id} is neither wsimg's own account nor one of WSIMG_ROLE_ARNS."
        )

    def _build_client(self, service: str, region: str, session: boto3.Session) -> Any:
        with self._lock:
            return session.client(service, region_name=region, config=self._config)

    def client(self, account_id: str, region: str, *, retries: bool = True) -> Any:
        """The WorkSpaces client of one account in one region (bot/aws/rollout.py's calls);
        ``retries=False``: one that sends each call once, never retrying it."""
        return self._client(account_id, region, retries=retries)

    def _client(self, account_id: str, region: str, *, retries: bool = True) -> Any:
        role_arn = self._role_for(account_id)
        key = (account_id, region, retries)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                session = self._session if role_arn is None else self._role_session(role_arn)
                config = self._config if retries else self._once
                client = session.client("workspaces", region_name=region, config=config)
                self._clients[key] = client
            return client

    def _role_session(self, role_arn: str) -> boto3.Session:
        """A session whose credentials come from AssumeRole and renew themselves.

        botocore refreshes them 15 minutes before they expire (and insists 10 minutes before),
        calling ``refresh`` again. Called with ``self._lock`` held.
        """
        session = self._role_sessions.get(role_arn)
        if session is not None:
            return session
        sts_region = self.regions[0]
        sts = self._session.client("sts", region_name=sts_region, config=self._config)

        def refresh() -> dict[str, str]:
            response = _call(
                "AssumeRole",
                sts_region,
                lambda: sts.assume_role(
                    RoleArn=role_arn,
                    RoleSessionName=ROLE_SESSION_NAME,
                    DurationSeconds=ROLE_SESSION_SECONDS,
                ),
            )
            creds = response["Credentials"]
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].isoformat(),
            }

        credentials = DeferredRefreshableCredentials(refresh_using=refresh, method="assume-role")
        base_profile = self._session.profile_name
        core = botocore.session.Session(
            profile=base_profile if base_profile in self._session.available_profiles else None
        )
        core.register_component(
            "credential_provider", CredentialResolver([_FixedProvider(credentials)])
        )
        _lean_parsing(core)
        session = boto3.Session(botocore_session=core)
        self._role_sessions[role_arn] = session
        return session

    # -- calls ------------------------------------------------------------------------------

    def _pages(self, target: Target, **params: Any) -> Iterable[dict[str, Any]]:
        """DescribeWorkspaceImages pages, through botocore's own paginator (NextToken to the
        end); each page's failure leaves as an AwsError like any other call's."""
        client = self._client(target.account_id, target.region)
        pages = iter(client.get_paginator("describe_workspace_images").paginate(**params))
        while True:
            page: dict[str, Any] | None = _call(
                "DescribeWorkspaceImages", target.region, lambda: next(pages, None)
            )
            if page is None:
                return
            yield page

    def _owned_images(
        self, target: Target, seen: Callable[[list[Image]], None] = lambda page: None
    ) -> list[Image]:
        images: list[Image] = []
        for page in self._pages(target, ImageType="OWNED", MaxResults=PAGE_SIZE):
            items = [
                _image_from_api(item, account_id=target.account_id, region=target.region)
                for item in page.get("Images", [])
            ]
            images.extend(items)
            seen(items)
        return images

    def list_images(
        self,
        *,
        region: str | None = None,
        progress: Callable[[ScanProgress], None] | None = None,
        pages: Callable[[list[Image]], None] | None = None,
    ) -> Listing:
        """The OWNED images of every target, all targets at once.

        A target that fails becomes a TargetFailure and the others are still returned. Raises
        AwsError only when the base account itself cannot be identified (nothing works then).
        ``progress`` hears how far it has come: before the first call, after each page and
        after each target, from the threads that list them, one call at a time (so ``done``
        and ``images`` never go back). ``pages`` is handed each page's images as it comes,
        from the thread that listed it (several at once), before the target is done.
        """
        if region is not None and region not in self.regions:
            raise ConfigError(
                f"wsimg does not watch region {region}; it watches {', '.join(self.regions)}."
            )
        targets = [t for t in self.targets() if region is None or t.region == region]
        images: list[Image] = []
        failures: list[TargetFailure] = []
        accounts = len({t.account_id for t in targets})
        done = seen = 0
        counting = threading.Lock()

        def tell(*, targets_done: int = 0, images_seen: int = 0) -> None:
            nonlocal done, seen
            if progress is None:
                return
            # Under the lock, so that whoever watches sees the counts in order.
            with counting:
                done += targets_done
                seen += images_seen
                progress(ScanProgress(done, len(targets), accounts, seen))

        def heard(page: list[Image]) -> None:
            if pages is not None:
                pages(page)
            tell(images_seen=len(page))

        def one(target: Target) -> list[Image] | AwsError:
            try:
                return self._owned_images(target, heard)
            except AwsError as exc:
                return exc
            finally:
                tell(targets_done=1)

        tell()
        with ThreadPoolExecutor(
            max_workers=min(self._max_workers, len(targets)), thread_name_prefix="wsimg-aws"
        ) as pool:
            for target, result in zip(targets, pool.map(one, targets), strict=True):
                if isinstance(result, AwsError):
                    failures.append(TargetFailure(target=target, error=result))
                else:
                    images.extend(result)
        images.sort(key=lambda i: (i.account_id, i.region, i.name, i.image_id))
        return Listing(images=images, failures=failures)

    def describe_images(self, *, account_id: str, region: str, image_ids: list[str]) -> list[Image]:
        """The images with these IDs (absent ones are simply missing), 25 IDs per call."""
        ids = list(dict.fromkeys(image_ids))
        target = Target(account_id=account_id, region=region)
        images: list[Image] = []
        for start in range(0, len(ids), PAGE_SIZE):
            batch = ids[start : start + PAGE_SIZE]
            for page in self._pages(target, ImageIds=batch):
                images.extend(
                    _image_from_api(item, account_id=account_id, region=region)
                    for item in page.get("Images", [])
                )
        return images

    def find_owned_image_by_name(self, *, account_id: str, region: str, name: str) -> Image | None:
        """The owned image called ``name``, or None (used to reconcile after a crash)."""
        target = Target(account_id=account_id, region=region)
        for page in self._pages(target, ImageType="OWNED", MaxResults=PAGE_SIZE):
            for item in page.get("Images", []):
                if item.get("Name") == name:
                    return _image_from_api(item, account_id=account_id, region=region)
        return None

    def create_updated_image(
        self,
        *,
        account_id: str,
        region: str,
        source_image_id: str,
        name: str,
        description: str,
        tags: dict[str, str],
    ) -> str:
        """Start CreateUpdatedWorkspaceImage; returns the new image's ID (it starts PENDING)."""
        client = self._client(account_id, region)
        params: dict[str, Any] = {
            "Name": name,
            "Description": description,
            "SourceImageId": source_image_id,
        }
        if tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
        response = _call(
            "CreateUpdatedWorkspaceImage",
            region,
            lambda: client.create_updated_workspace_image(**params),
        )
        return str(response["ImageId"])
