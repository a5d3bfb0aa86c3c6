"""OperationNotSupported's `reason`: read where botocore puts it, said in the sentence.

The simulator cannot send a `reason`, so a real WorkSpaces client is answered in-process
(before-send) and botocore's own parser and endpoint build the ClientError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from bot.aws.errors import aws_error_from_client_error


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self.data


def _answered(body: dict[str, Any], status: int = 400) -> ClientError:
    """The ClientError a real WorkSpaces client raises when AWS answers with ``body``: the
    request never leaves the process, botocore's parser and endpoint build the exception."""
    client = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="not-a-secret",
        region_name="us-east-1",
    ).client("workspaces")

    def answer(request: Any, **kwargs: Any) -> AWSResponse:
        return AWSResponse(
            request.url,
            status,
            {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "req-1"},
            _Body(json.dumps(body).encode()),
        )

    client.meta.events.register("before-send.workspaces.*", answer)
    with pytest.raises(ClientError) as caught:
        client.create_updated_workspace_image(
            Name="n", Description="d", SourceImageId="wsi-123456789"
        )
    return caught.value


def test_operation_not_supported_says_the_reason_aws_gave() -> None:
    exc = _answered(
        {
            "__type": "com.amazonaws.workspaces#OperationNotSupportedException",
            "message": "The operation is not supported.",
            "reason": "UNSUPPORTED_IMAGE_PLATFORM",
        }
    )
    assert exc.response.get("reason") == "UNSUPPORTED_IMAGE_PLATFORM"  # where botocore puts it

    error = aws_error_from_client_error(
        exc, action="CreateUpdatedWorkspaceImage", region="us-east-1"
    )

    assert error.code == "OperationNotSupported"
    assert "by hand" in error.user_message
    assert error.user_message.endswith(
        "AWS said: The operation is not supported (reason: UNSUPPORTED_IMAGE_PLATFORM)."
    )


def test_operation_not_supported_without_a_reason_ends_with_the_message() -> None:
    exc = _answered(
        {"__type": "OperationNotSupportedException", "message": "The operation is not supported."}
    )
    error = aws_error_from_client_error(
        exc, action="CreateUpdatedWorkspaceImage", region="us-east-1"
    )
    assert error.user_message.endswith("AWS said: The operation is not supported.")
    assert "reason" not in error.user_message
