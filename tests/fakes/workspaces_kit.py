"""Helpers for the WorkSpaces simulator's tests."""

from __future__ import annotations

import urllib.error
import urllib.request

import botocore.exceptions
import pytest

SIGNED = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/workspaces/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def error_code(exc_info: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return exc_info.value.response["Error"]["Code"]


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (local simulator URL)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (local simulator URL)
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
