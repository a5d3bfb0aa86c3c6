"""Settings: every environment variable wsimg reads, in one typed class.

Secrets are ``SecretStr`` so that a settings object printed or logged by accident shows
``**********`` instead of a token.
"""

from __future__ import annotations

import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError

CommaList = Annotated[list[str], NoDecode]

_APPROVER_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_TEAM_ID = re.compile(r"^[TE][A-Z0-9]{2,31}$")
_VARIABLES = {
    "approvers": "WSIMG_APPROVERS",
    "requesters": "WSIMG_REQUESTERS",
    "digest_managers": "WSIMG_DIGEST_MANAGERS",
}


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    slack_bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field("https://slack.com/api/", validation_alias="SLACK_API_URL")
    database_url: str = Field("sqlite:///wsimg.db", validation_alias="DATABASE_URL")
    regions: CommaList = Field(
        default_factory=list,
        validation_alias=AliasChoices("WSIMG_REGIONS", "AWS_REGION", "AWS_DEFAULT_REGION"),
    )
    role_arns: CommaList = Field(default_factory=list, validation_alias="WSIMG_ROLE_ARNS")
    approvers: CommaList = Field(default_factory=list, validation_alias="WSIMG_APPROVERS")
    requesters: CommaList = Field(default_factory=list, validation_alias="WSIMG_REQUESTERS")
    # Who may subscribe, unsubscribe and post a digest now (approvers always may).
    digest_managers: CommaList = Field(
        default_factory=list, validation_alias="WSIMG_DIGEST_MANAGERS"
    )
    # A subscription made from Slack fires at most this often (WSIMG_DIGEST_CRON is not limited).
    min_digest_minutes: int = Field(
        60, ge=1, le=24 * 60, validation_alias="WSIMG_MIN_DIGEST_MINUTES"
    )
    # The workspaces (T…) and Enterprise Grid orgs (E…) served; empty: the bot token's own.
    team_ids: CommaList = Field(default_factory=list, validation_alias="WSIMG_TEAM_IDS")
    four_eyes: bool = Field(False, validation_alias="WSIMG_FOUR_EYES")
    approval_ttl_hours: int = Field(
        24, ge=1, le=24 * 30, validation_alias="WSIMG_APPROVAL_TTL_HOURS"
    )
    digest_channel: str | None = Field(None, validation_alias="WSIMG_DIGEST_CHANNEL")
    digest_cron: str = Field("0 9 * * *", validation_alias="WSIMG_DIGEST_CRON")
    timezone: str = Field("UTC", validation_alias="WSIMG_TIMEZONE")
    poll_seconds: int = Field(300, ge=1, validation_alias="WSIMG_POLL_SECONDS")
    scheduler: bool = Field(True, validation_alias="WSIMG_SCHEDULER")
    port: int = Field(3000, ge=0, le=65535, validation_alias="PORT")

    @field_validator(
        "regions",
        "role_arns",
        "approvers",
        "requesters",
        "digest_managers",
        "team_ids",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split(value)

    @field_validator("approvers", "requesters", "digest_managers")
    @classmethod
    def _slack_ids(cls, value: list[str], info: ValidationInfo) -> list[str]:
        bad = [item for item in value if not _APPROVER_ID.fullmatch(item)]
        if bad:
            name = _VARIABLES[str(info.field_name)]
            raise ValueError(
                f"{name} takes Slack user IDs (U…/W…) and user-group IDs (S…); not {', '.join(bad)}"
            )
        return value

    @field_validator("team_ids")
    @classmethod
    def _team_ids(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if not _TEAM_ID.fullmatch(item)]
        if bad:
            raise ValueError(
                "WSIMG_TEAM_IDS takes Slack workspace IDs (T…) and Enterprise Grid org IDs "
                f"(E…); not {', '.join(bad)}"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"WSIMG_TIMEZONE {value!r} is not an IANA time zone") from exc
        return value

    @model_validator(mode="after")
    def _api_url_slash(self) -> Settings:
        if not self.slack_api_url.endswith("/"):
            self.slack_api_url += "/"
        return self

    @property
    def approver_users(self) -> set[str]:
        return {a for a in self.approvers if a[0] in "UW"}

    @property
    def approver_groups(self) -> list[str]:
        return [a for a in self.approvers if a[0] == "S"]


def load_settings(**overrides: object) -> Settings:
    """Read the environment; a bad value becomes a ConfigError naming the variable."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"Configuration error: {problems}") from exc


def require(secret: SecretStr | None, name: str) -> str:
    if secret is None or not secret.get_secret_value():
        raise ConfigError(f"{name} is not set; it is required for this command.")
    return secret.get_secret_value()
