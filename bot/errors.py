"""The errors every layer shares.

Every error wsimg shows a person is a ``WsimgError`` whose ``user_message`` says what happened
and what to do next. AWS failures arrive as botocore exceptions; bot/aws/errors.py turns them
into ``AwsError`` so that no other module needs to know botocore's exception types.
"""

from __future__ import annotations


class WsimgError(Exception):
    """An error whose ``user_message`` can be shown to a person as it is (plain text); the
    Slack side may render some refusals richer (mentions), from the data they carry."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class ConfigError(WsimgError):
    """wsimg is configured wrongly (an environment variable, the database schema...)."""


class AwsError(WsimgError):
    """An AWS call failed.

    ``code`` is AWS's error code without the ``Exception`` suffix (``ResourceLimitExceeded``,
    ``Throttling``), or the botocore exception class name for failures that never reached an
    AWS answer (``EndpointConnectionError``, ``NoCredentialsError``).
    """

    def __init__(
        self,
        *,
        code: str,
        aws_message: str,
        action: str,
        region: str,
        user_message: str,
    ) -> None:
        super().__init__(user_message)
        self.code = code
        self.aws_message = aws_message
        self.action = action
        self.region = region

    @property
    def throttled(self) -> bool:
        return self.code in THROTTLING_CODES

    def __repr__(self) -> str:
        return (
            f"AwsError(code={self.code!r}, action={self.action!r}, region={self.region!r}, "
            f"aws_message={self.aws_message!r})"
        )


# Codes as they arrive (with and without the suffix) and after normalisation.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "Throttled",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "RequestLimitExceeded",
        "TooManyRequests",
        "TooManyRequestsException",
        "SlowDown",
    }
)
