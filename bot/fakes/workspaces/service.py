"""The AWS side of the simulator: one HTTP request in, one answer out. WorkSpaces operations
(checked against botocore's model first) and the STS actions boto3 uses for other accounts;
the region comes from the SigV4 credential scope, the account from the access key."""

from __future__ import annotations

import json
import re
import string
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from botocore.model import OperationNotFoundError

from bot.fakes.workspaces.fleet import FleetOperations
from bot.fakes.workspaces.model import validate, validation_message
from bot.fakes.workspaces.protocol import (
    JSON_CONTENT_TYPE,
    TARGET_PREFIX,
    SimulatorError,
    json_error,
    json_response,
    sts_error,
    sts_response,
)
from bot.fakes.workspaces.sharing import SharingOperations
from bot.fakes.workspaces.store import DEFAULT_ACCOUNT, MAX_TAGS, Call, IssuedKey, StoredImage

IMPLEMENTED = (
    "DescribeWorkspaceImages",
    "CreateUpdatedWorkspaceImage",
    "CopyWorkspaceImage",
    "DeleteWorkspaceImage",
    "DescribeWorkspaceImagePermissions",
    "UpdateWorkspaceImagePermission",
    "CreateTags",
    "DescribeTags",
    "DescribeWorkspaceBundles",
    "UpdateWorkspaceBundle",
    "DescribeWorkspaces",
    "RebuildWorkspaces",
    "DescribeWorkspacesConnectionStatus",
    "DescribeWorkspaceSnapshots",
)
STS_OPERATIONS = ("AssumeRole", "GetCallerIdentity")

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(?P<account>\d{12}):role/(?P<name>[\w+=,.@/-]+)$")
_SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
_CREDENTIAL_SCOPE = re.compile(
    r"Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/"
)
_SECRET_ALPHABET = string.ascii_letters + string.digits


class WorkSpacesService(FleetOperations, SharingOperations):
    """Answers WorkSpaces and STS requests from the store (image operations here, bundles and
    WorkSpaces in ``fleet``, image permissions and copies in ``sharing``)."""

    # -- HTTP entry point --

    def handle(
        self, method: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Answer one HTTP request, ``latency`` seconds after it came (as a far-away AWS would:
        the time the simulator itself takes is part of it). ``headers`` keys must be lower
        case."""
        began = time.monotonic()
        try:
            return self._answer(method, headers, body)
        finally:
            left = self.latency - (time.monotonic() - began)
            if left > 0:
                time.sleep(left)

    def _answer(
        self, method: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        is_form = "x-www-form-urlencoded" in headers.get("content-type", "")
        auth = _CREDENTIAL_SCOPE.search(headers.get("authorization", ""))
        service = auth.group("service") if auth else ("sts" if is_form else "workspaces")
        try:
            if method != "POST":
                raise SimulatorError("InvalidRequest", f"{method} is not supported; use POST.")
            if auth is None:
                raise SimulatorError(
                    "MissingAuthenticationToken",
                    "Missing Authentication Token: the request is not signed (SigV4).",
                    status=403,
                )
            if service == "sts":
                return self._handle_sts(auth, body)
            if service != "workspaces":
                raise SimulatorError(
                    "UnknownService", f"The simulator serves workspaces and sts, not {service}."
                )
            return self._handle_workspaces(auth, headers, body)
        except SimulatorError as err:
            if service == "sts":
                return sts_error(err)
            return json_error(err)

    def _identity(self, auth: re.Match[str]) -> tuple[str, str]:
        key = auth.group("key")
        with self._lock:
            issued = self._keys.get(key)
        if issued is None:
            return DEFAULT_ACCOUNT, f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/wsimg-simulator"
        if issued.expires <= time.time():
            raise SimulatorError(
                "ExpiredTokenException", "The security token included in the request is expired"
            )
        return issued.account_id, issued.arn

    def _before(self, operation: str, params: dict[str, Any], account: str, region: str) -> None:
        """Record the call, then apply the test's hold, denial and injected failure."""
        with self._lock:
            self._calls.append(Call(operation, params, account, region, self._clock()))
            hold = self._holds.get(operation)
        if hold is not None and not hold.released:
            hold._block()

    def _injected(
        self, operation: str, principal: str, params: dict[str, Any], account: str, region: str
    ) -> None:
        service = "sts" if operation in STS_OPERATIONS else "workspaces"
        with self._lock:
            denied = self._is_denied(operation, account, region)
            denied_tags = (
                operation == "CreateUpdatedWorkspaceImage"
                and bool(params.get("Tags"))
                and self._is_denied("CreateTags", account, region)
            )
            queue = self._failures.get(operation, [])
            injected = next((e for e in queue if e.matches(account, region)), None)
            if injected is not None:
                queue.remove(injected)
        if denied or denied_tags:
            action = operation if denied else "CreateTags"
            code = "AccessDenied" if service == "sts" else "AccessDeniedException"
            raise SimulatorError(
                code,
                f"User: {principal} is not authorized to perform: {service}:{action}",
            )
        if injected is not None:
            raise SimulatorError(injected.code, injected.message)

    def _is_denied(self, operation: str, account: str, region: str) -> bool:
        return any(
            op == operation and reg in (None, region) and acc in (None, account)
            for op, reg, acc in self._denied
        )

    # -- WorkSpaces --

    def _handle_workspaces(
        self, auth: re.Match[str], headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        content_type = headers.get("content-type", "")
        target = headers.get("x-amz-target", "")
        if not content_type.startswith(JSON_CONTENT_TYPE) or not target.startswith(TARGET_PREFIX):
            raise SimulatorError(
                "UnsupportedProtocolException",
                "The simulator speaks AWS JSON 1.1 only (Content-Type "
                f"{JSON_CONTENT_TYPE}, X-Amz-Target {TARGET_PREFIX}<Operation>); got "
                f"Content-Type {content_type or 'none'!r}, X-Amz-Target {target or 'none'!r}.",
            )
        operation = target[len(TARGET_PREFIX) :]
        try:
            params = json.loads(body or b"{}")
        except ValueError as exc:
            raise SimulatorError("SerializationException", f"Body is not JSON: {exc}") from exc
        account, principal = self._identity(auth)
        region = auth.group("region")
        try:
            op_model = self._model.operation_model(operation)
        except OperationNotFoundError as exc:
            raise SimulatorError(
                "UnknownOperationException", f"WorkSpaces has no operation {operation}."
            ) from exc
        self._before(operation, params, account, region)
        errors: list[str] = []
        if op_model.input_shape is not None:
            validate(op_model.input_shape, params, "", errors)
        if errors:
            raise SimulatorError("ValidationException", validation_message(errors))
        self._injected(operation, principal, params, account, region)
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise SimulatorError(
                "NotImplementedBySimulatorException",
                f"{operation} is not implemented by the simulator "
                f"(implemented: {', '.join(IMPLEMENTED)}).",
            )
        with self._lock:
            self._settle()
            result = handler(params, account, region)
            lost = self._lost.get(operation, 0) > 0
            if lost:
                self._lost[operation] -= 1
            hold = self._holds_after.get(operation)
        if hold is not None and not hold.released:
            hold._block()
        if lost:
            raise SimulatorError("InternalFailure", "The reply was lost.", status=500)
        return json_response(result)

    def _op_DescribeWorkspaceImages(self, params: dict, account: str, region: str) -> dict:
        ids = params.get("ImageIds")
        image_type = params.get("ImageType")
        owned = [] if image_type == "SHARED" else list(self._bucket(account, region).values())
        shared = [] if image_type == "OWNED" else self._shared_with(account, region)
        selected = [image for image in owned + shared if ids is None or image.image_id in ids]
        limit = params.get("MaxResults", 25)
        page, token = self._page(selected, params, limit, [ids, image_type])
        result: dict[str, Any] = {"Images": [image.to_api() for image in page]}
        if token:
            result["NextToken"] = token
        return result

    def _shared_with(self, account: str, region: str) -> list[StoredImage]:
        """Other accounts' images in the region that are shared with ``account``."""
        return [
            image
            for (owner, reg), bucket in self._images.items()
            if reg == region and owner != account
            for image in bucket.values()
            if account in image.shared_with
        ]

    def _op_CreateUpdatedWorkspaceImage(self, params: dict, account: str, region: str) -> dict:
        bucket = self._bucket(account, region)
        source_id = params["SourceImageId"]
        source = bucket.get(source_id)
        if source is None:
            raise SimulatorError(
                "ResourceNotFoundException", f"The image {source_id} could not be found."
            )
        if source.state != "AVAILABLE":
            raise SimulatorError(
                "InvalidResourceStateException",
                f"The image {source_id} is {source.state}; it must be AVAILABLE.",
            )
        if source.platform != "WINDOWS":
            raise SimulatorError(
                "OperationNotSupportedException",
                f"The image {source_id} runs {source.platform or 'an unknown OS'}; only Windows "
                f"images can be updated with this operation.",
            )
        if not source.update_available:
            raise SimulatorError(
                "OperationNotSupportedException", f"No update is available for {source_id}."
            )
        self._check_room(bucket, params["Name"])
        tags = {tag["Key"]: tag.get("Value", "") for tag in params.get("Tags", [])}
        if len(tags) > MAX_TAGS:
            raise SimulatorError("ResourceLimitExceededException", "Too many tags.")
        new_id = self._new_id()
        failure = self._build_failures.get(source_id)
        bucket[new_id] = StoredImage(
            image_id=new_id,
            account_id=account,
            region=region,
            name=params["Name"],
            description=params["Description"],
            platform=source.platform,
            state="PENDING",
            update_available=False,
            update_description=None,
            created=self._clock(),
            tags=tags,
            ready_at=self._clock() + self.pending_seconds,
            final_state="ERROR" if failure else "AVAILABLE",
            error_code=failure.code if failure else None,
            error_message=failure.message if failure else None,
            error_details=list(failure.details) if failure else [],
            source_image_id=source_id,
        )
        return {"ImageId": new_id}

    def _op_DeleteWorkspaceImage(self, params: dict, account: str, region: str) -> dict:
        bucket = self._bucket(account, region)
        image = bucket.get(params["ImageId"])
        if image is None:
            return {}
        if image.state == "PENDING":
            raise SimulatorError(
                "InvalidResourceStateException",
                f"The image {image.image_id} is PENDING and cannot be deleted yet.",
            )
        for bundle in self._bundles.get((account, region), {}).values():
            if bundle.image_id == image.image_id:
                raise SimulatorError(
                    "ResourceAssociatedException",
                    f"The image {image.image_id} is associated with the bundle "
                    f"{bundle.bundle_id} ({bundle.name}); point the bundle at another image "
                    f"before deleting this one.",
                )
        if image.shared_with:
            raise SimulatorError(
                "ResourceAssociatedException",
                f"The image {image.image_id} is shared with {len(image.shared_with)} "
                f"account(s); stop sharing it before deleting it.",
            )
        del bucket[image.image_id]
        return {}

    def _tagged(self, resource_id: str, account: str, region: str) -> StoredImage:
        image = self._bucket(account, region).get(resource_id)
        if image is None:
            raise SimulatorError(
                "ResourceNotFoundException", f"The resource {resource_id} could not be found."
            )
        return image

    def _op_CreateTags(self, params: dict, account: str, region: str) -> dict:
        image = self._tagged(params["ResourceId"], account, region)
        merged = {**image.tags, **{t["Key"]: t.get("Value", "") for t in params["Tags"]}}
        if len(merged) > MAX_TAGS:
            raise SimulatorError("ResourceLimitExceededException", "Too many tags.")
        image.tags = merged
        return {}

    def _op_DescribeTags(self, params: dict, account: str, region: str) -> dict:
        image = self._tagged(params["ResourceId"], account, region)
        return {"TagList": [{"Key": k, "Value": v} for k, v in image.tags.items()]}

    # -- STS --

    def _handle_sts(self, auth: re.Match[str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        action = form.pop("Action", "")
        form.pop("Version", None)
        if action not in STS_OPERATIONS:
            raise SimulatorError("InvalidAction", f"The simulator's STS has no action {action!r}.")
        account, principal = self._identity(auth)
        self._before(action, form, account, auth.group("region"))
        self._injected(action, principal, form, account, auth.group("region"))
        if action == "GetCallerIdentity":
            result = (
                f"<Arn>{escape(principal)}</Arn><UserId>{escape(auth.group('key'))}</UserId>"
                f"<Account>{account}</Account>"
            )
            return sts_response(action, result)
        return sts_response(action, self._assume_role(form))

    def _assume_role(self, form: dict[str, str]) -> str:
        role_arn = form.get("RoleArn", "")
        session_name = form.get("RoleSessionName", "")
        match = _ROLE_ARN.match(role_arn)
        if not match:
            raise SimulatorError("ValidationError", f"{role_arn!r} is not a valid role ARN.")
        if not _SESSION_NAME.match(session_name):
            raise SimulatorError("ValidationError", f"Invalid RoleSessionName {session_name!r}.")
        try:
            duration = int(form.get("DurationSeconds", "3600"))
        except ValueError as exc:
            raise SimulatorError("ValidationError", "DurationSeconds must be a number.") from exc
        if not 900 <= duration <= 43200:
            raise SimulatorError("ValidationError", "DurationSeconds must be 900-43200.")
        lifetime = min(duration, self.credential_seconds)
        account = match.group("account")
        role_name = match.group("name").rsplit("/", 1)[-1]
        assumed_arn = f"arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"
        with self._lock:
            key = "ASIA" + "".join(
                self._rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)
            )
            secret = "".join(self._rng.choice(_SECRET_ALPHABET) for _ in range(40))
            token = "".join(self._rng.choice(_SECRET_ALPHABET) for _ in range(64))
            expires = time.time() + lifetime
            self._keys[key] = IssuedKey(account_id=account, arn=assumed_arn, expires=expires)
        expiration = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            "<Credentials>"
            f"<AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
            f"<SessionToken>{token}</SessionToken><Expiration>{expiration}</Expiration>"
            "</Credentials>"
            f"<AssumedRoleUser><Arn>{escape(assumed_arn)}</Arn>"
            f"<AssumedRoleId>AROASIMULATOR:{escape(session_name)}</AssumedRoleId></AssumedRoleUser>"
            "<PackedPolicySize>0</PackedPolicySize>"
        )
