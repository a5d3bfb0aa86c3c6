"""Settings: every environment variable wsimg reads, in one typed class.

Secrets are ``SecretStr`` so that a settings object printed or logged by accident shows
``**********`` instead of a token.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from typing import Annotated, Any, Literal
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
# Where the regions come from, first found wins (pydantic-settings reads AliasChoices in order).
_REGION_VARIABLES = ("WSIMG_REGIONS", "AWS_REGION", "AWS_DEFAULT_REGION")
# botocore's own pattern for a region name (botocore.utils.validate_region_name).
_REGION_SHAPE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?$")
_DATABASE_EXAMPLES = "sqlite:///path/to/wsimg.db or postgresql://user:password@host:5432/dbname"
_CRON_MAX = 128  # the column that stores a subscription's cron (bot/domain/digests.py CRON_MAX)
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _regions_variable() -> str:
    """The variable the regions were read from, to name it in an error."""
    return next((name for name in _REGION_VARIABLES if os.environ.get(name)), "WSIMG_REGIONS")


def log_level(default: int) -> tuple[int, bool]:
    """LOG_LEVEL as a logging level, and whether it was set (``default`` when it is not)."""
    value = os.environ.get("LOG_LEVEL", "").strip()
    if not value:
        return default, False
    if value.upper() not in _LOG_LEVELS:
        raise ConfigError(
            f"Configuration error: LOG_LEVEL {value[:20]!r} is not a log level: set it to one "
            f"of {', '.join(_LOG_LEVELS)}, or unset it."
        )
    return logging.getLevelNamesMapping()[value.upper()], True


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
    # A rollout rebuilds at most this many WorkSpaces at once, each idle at least this long.
    rebuild_batch: int = Field(10, ge=1, le=100, validation_alias="WSIMG_REBUILD_BATCH")
    rebuild_idle_hours: int = Field(
        8, ge=0, le=24 * 30, validation_alias="WSIMG_REBUILD_IDLE_HOURS"
    )
    # At most this many updates build at once (submitting or PENDING); more approved wait.
    max_concurrent_updates: int = Field(
        10, ge=1, le=500, validation_alias="WSIMG_MAX_CONCURRENT_UPDATES"
    )
    # Images per account and region (the WorkSpaces default quota): shown against the count.
    image_quota: int = Field(40, ge=1, le=10_000, validation_alias="WSIMG_IMAGE_QUOTA")
    digest_channel: str | None = Field(None, validation_alias="WSIMG_DIGEST_CHANNEL")
    digest_cron: str = Field("0 9 * * *", validation_alias="WSIMG_DIGEST_CRON")
    timezone: str = Field("UTC", validation_alias="WSIMG_TIMEZONE")
    poll_seconds: int = Field(300, ge=1, validation_alias="WSIMG_POLL_SECONDS")
    # How old the shared fleet scan may be before a listing scans again (0: every listing).
    scan_seconds: int = Field(900, ge=0, le=24 * 3600, validation_alias="WSIMG_SCAN_SECONDS")
    scheduler: bool = Field(True, validation_alias="WSIMG_SCHEDULER")
    port: int = Field(3000, ge=0, le=65535, validation_alias="PORT")
    # Read by botocore itself (bot/aws/gateway.py lets them win over its standard/5 default);
    # checked here so that a bad value stops the process with its name, not a traceback.
    aws_retry_mode: Literal["standard", "adaptive", "legacy"] | None = Field(
        None, validation_alias="AWS_RETRY_MODE"
    )
    aws_max_attempts: int | None = Field(None, ge=1, validation_alias="AWS_MAX_ATTEMPTS")

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

    @field_validator("slack_app_token", mode="before")
    @classmethod
    def _empty_app_token_is_unset(cls, value: object) -> object:
        # SLACK_APP_TOKEN= (empty) must not switch to Socket Mode with no token.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("slack_app_token")
    @classmethod
    def _app_level_token(cls, value: SecretStr | None) -> SecretStr | None:
        # Its value is never shown: it may be another secret pasted in the wrong place.
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError(
                "SLACK_APP_TOKEN is not an app-level token (those start with xapp-): create "
                "one with the connections:write scope on the app's Basic Information page "
                "(App-Level Tokens), or unset SLACK_APP_TOKEN to serve over HTTP"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        # The URL itself is never shown: it may carry a password.
        try:
            url = make_url(value)
        except (ArgumentError, ValueError) as exc:
            raise ValueError(
                f"DATABASE_URL is not a database URL: write it as {_DATABASE_EXAMPLES}"
            ) from exc
        backend = url.drivername.split("+", 1)[0]
        if backend not in ("sqlite", "postgresql", "postgres"):
            shown = backend if re.fullmatch(r"[a-z0-9_]{1,20}", backend) else "another"
            raise ValueError(
                f"DATABASE_URL names a {shown} database; wsimg runs on SQLite or PostgreSQL: "
                f"write it as {_DATABASE_EXAMPLES}"
            )
        return value

    @field_validator("regions")
    @classmethod
    def _workspaces_regions(cls, value: list[str]) -> list[str]:
        from bot.aws.regions import workspaces_regions  # botocore is only read there

        known = workspaces_regions()
        for region in value:
            if region in known:
                continue
            name = _regions_variable()
            shown = repr(region[:40])
            guess = difflib.get_close_matches(region.lower(), known, n=1, cutoff=0.6)
            hint = (
                f"did you mean {guess[0]}?" if guess else f"WorkSpaces regions: {', '.join(known)}"
            )
            if not _REGION_SHAPE.fullmatch(region):
                raise ValueError(f"{name} takes region names like us-east-1; not {shown}: {hint}")
            raise ValueError(
                f"{name}: {shown} is not a region where Amazon WorkSpaces is offered (per the "
                f"endpoint data of the installed botocore): {hint}"
            )
        return value

    @field_validator("digest_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        # The parser the digests use (bot/domain/digests.py Schedule.trigger); imported here alone,
        # bot/domain/digests.py pulls in the whole domain.
        from apscheduler.triggers.cron import CronTrigger

        cron = " ".join(value.split())
        how = "5 fields: minute hour day-of-month month day-of-week, e.g. `0 9 * * 1-5`"
        if len(cron) > _CRON_MAX:
            raise ValueError(f"WSIMG_DIGEST_CRON is longer than {_CRON_MAX} characters ({how})")
        try:
            CronTrigger.from_crontab(cron, timezone=ZoneInfo("UTC"))
        except ValueError as exc:
            raise ValueError(
                f"WSIMG_DIGEST_CRON {cron[:40]!r} is not a cron schedule ({how}): {exc}"
            ) from exc
        return cron

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


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; a bad value becomes a ConfigError naming the variable."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise ConfigError(f"Configuration error: {problems}") from exc


def _problem(err: Any) -> str:
    """One pydantic error as ``VARIABLE: what is wrong``, the variable named once."""
    message = str(err["msg"]).removeprefix("Value error, ")
    variable = ".".join(str(part) for part in err["loc"])
    return message if message.startswith(_variable_names()) else f"{variable}: {message}"


def _variable_names() -> tuple[str, ...]:
    names: list[str] = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.append(alias)
        elif isinstance(alias, AliasChoices):
            names.extend(str(choice) for choice in alias.choices)
    return tuple(names)


def require(secret: SecretStr | None, name: str) -> str:
    if secret is None or not secret.get_secret_value():
        raise ConfigError(f"{name} is not set; it is required for this command.")
    return secret.get_secret_value()
