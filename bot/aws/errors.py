"""The translation of AWS errors into sentences a Slack user can act on.

``aws_error_from_client_error`` and ``aws_error_from_botocore_error`` turn botocore's
exceptions into ``AwsError`` (bot/errors.py) so that no other module needs to know botocore's
exception types or AWS's error codes.
"""

from __future__ import annotations

import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from bot.errors import THROTTLING_CODES, AwsError

_BAD_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClient",
        "InvalidClientTokenId",
        "ExpiredToken",
        "InvalidSignature",
        "SignatureDoesNotMatch",
        "AuthFailure",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "InvalidAccessKeyId",
    }
)

_SERVER_CODES = frozenset(
    {"InternalFailure", "InternalError", "InternalServerError", "ServiceUnavailable"}
)

_STS_ACTIONS = frozenset({"AssumeRole", "GetCallerIdentity"})

# Actions whose AccessDenied can also come from a permission other than the action itself.
_EXTRA_PERMISSIONS = {
    "CreateUpdatedWorkspaceImage": "workspaces:CreateTags (needed because wsimg tags the image)",
}

_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_SIGNED_QUERY = re.compile(
    r"(?P<name>X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|"
    r"AWSAccessKeyId|SessionToken)=[^&\s\"']+",
    re.IGNORECASE,
)
# The shape of a secret access key: 40 base64 characters standing alone.
_SECRET_SHAPED = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def redact(text: str) -> str:
    """Remove anything that may be a secret from a message before it is shown or logged."""
    text = _URL_USERINFO.sub(r"\g<scheme>***@", text)
    text = _SIGNED_QUERY.sub(r"\g<name>=***", text)
    return _SECRET_SHAPED.sub("***", text)


def normalize_code(code: str) -> str:
    """``ResourceLimitExceededException`` -> ``ResourceLimitExceeded``; others unchanged."""
    if code.endswith("Exception") and len(code) > len("Exception"):
        return code[: -len("Exception")]
    return code


def _clause(message: str) -> str:
    """An AWS message ready to be embedded in our sentence (no trailing period)."""
    message = " ".join(message.split()).rstrip(".")
    return message or "no details given"


def _permission(action: str) -> str:
    service = "sts" if action in _STS_ACTIONS else "workspaces"
    return f"{service}:{action}"


def _client_error_sentence(
    code: str, message: str, action: str, region: str, reason: str = ""
) -> str:
    said = _clause(message)
    if code in THROTTLING_CODES:
        return (
            f"AWS is throttling WorkSpaces requests in {region}; wsimg retried {action} and "
            f"gave up. Try again in a few minutes."
        )
    if code == "ResourceLimitExceeded":
        return (
            f"The account has reached its WorkSpaces image quota in {region} (40 images per "
            f"region by default). Delete images you no longer use, or request a quota "
            f"increase in Service Quotas, then try again. AWS said: {said}."
        )
    if code == "ResourceAlreadyExists":
        return (
            f"An image with this name already exists in {region}. If wsimg created it, the "
            f"update is already under way; otherwise rename or delete that image and try "
            f"again. AWS said: {said}."
        )
    if code == "ResourceNotFound":
        return (
            f"The image no longer exists in {region}; it may have been deleted. Run "
            f"`/wsimg updates` again to see the current images. AWS said: {said}."
        )
    if code == "OperationNotSupported":
        return (
            f"WorkSpaces cannot update this image through the API: only some Windows images "
            f"can be updated this way, and Linux images cannot. Update it by hand (launch a "
            f"WorkSpace from it, install the updates, create a new image). AWS said: {said}"
            + (f" (reason: {_clause(reason)})." if reason.strip() else ".")
        )
    if code == "InvalidResourceState":
        return (
            f"The image in {region} is not in a state that allows {action}; it must be "
            f"AVAILABLE. Try again later, when its current operation has finished. "
            f"AWS said: {said}."
        )
    if code == "ResourceAssociated":
        return (
            f"The image in {region} is still used by a bundle or shared with another "
            f"account. Point the bundle at another image or unshare it first. AWS said: {said}."
        )
    if code in ("AccessDenied", "UnauthorizedOperation"):
        needed = _permission(action)
        extra = _EXTRA_PERMISSIONS.get(action)
        also = f" and {extra}" if extra else ""
        return (
            f"wsimg's AWS identity may not call {action} in {region}. Grant {needed}{also} "
            f"in its IAM policy. AWS said: {said}."
        )
    if code in ("InvalidParameterValues", "Validation", "InvalidParameterValue"):
        return (
            f"AWS rejected the parameters of {action} in {region}: {said}. This is most "
            f"likely a wsimg bug; please report it with this message."
        )
    if code in _BAD_CREDENTIAL_CODES:
        return (
            f"AWS rejected wsimg's credentials in {region} ({code}). Check the AWS "
            f"credentials or role wsimg runs with. AWS said: {said}."
        )
    if code in _SERVER_CODES:
        return (
            f"AWS had an internal error while running {action} in {region}. Try again in a "
            f"few minutes. AWS said: {said}."
        )
    return f"AWS answered {action} in {region} with {code}: {said}."


def aws_error_from_client_error(exc: ClientError, *, action: str, region: str) -> AwsError:
    """Turn an error answered by AWS into an ``AwsError`` with an actionable sentence."""
    response = exc.response if isinstance(exc.response, dict) else {}
    error = response.get("Error", {})
    raw_code = str(error.get("Code") or "Unknown")
    code = normalize_code(raw_code)
    message = redact(str(error.get("Message") or ""))
    # The members an error shape models beyond Code and Message (OperationNotSupported's
    # `reason`) are parsed into the top level of the response, next to "Error" (botocore's
    # Endpoint._add_modeled_error_fields).
    reason = redact(str(response.get("reason") or ""))
    return AwsError(
        code=code,
        aws_message=message,
        action=action,
        region=region,
        user_message=_client_error_sentence(code, message, action, region, reason),
    )


def aws_error_from_botocore_error(exc: BotoCoreError, *, action: str, region: str) -> AwsError:
    """Turn a failure that never got an AWS answer (network, credentials) into an ``AwsError``."""
    detail = redact(str(exc))
    said = _clause(detail)
    if isinstance(exc, NoCredentialsError):
        sentence = (
            "No AWS credentials are configured for wsimg. Set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run it with an IAM role."
        )
    elif isinstance(exc, PartialCredentialsError):
        sentence = f"wsimg's AWS credentials are incomplete: {said}. Set the missing value."
    elif isinstance(exc, (SSOError, TokenRetrievalError, UnauthorizedSSOTokenError)):
        sentence = (
            f"wsimg's AWS SSO session is missing or expired: {said}. Log in again "
            f"(`aws sso login`) or use other credentials."
        )
    elif isinstance(exc, CredentialRetrievalError):
        sentence = f"wsimg could not get AWS credentials: {said}. Check its AWS configuration."
    elif isinstance(exc, NoRegionError):
        sentence = "No AWS region is configured for wsimg. Set WSIMG_REGIONS or AWS_REGION."
    elif isinstance(
        exc,
        (
            EndpointConnectionError,
            ConnectTimeoutError,
            ReadTimeoutError,
            ConnectionClosedError,
            ProxyConnectionError,
        ),
    ):
        sentence = (
            f"wsimg could not reach AWS in {region}: {said}. Check the network, the proxy "
            f"settings and the region name, then try again."
        )
    elif isinstance(exc, ParamValidationError):
        sentence = (
            f"wsimg built an invalid {action} request: {said}. This is a wsimg bug; please "
            f"report it with this message."
        )
    else:
        sentence = f"The AWS call {action} in {region} failed: {said}."
    return AwsError(
        code=type(exc).__name__,
        aws_message=detail,
        action=action,
        region=region,
        user_message=sentence,
    )
