"""Typed settings, read from ``SENTRA_*`` environment variables and an optional TOML file.

Settings are built lazily by :func:`get_settings` (never at import time) and validated once;
every wrong value is reported with the variable that holds it and what is expected.

The config file is named by ``SENTRA_CONFIG`` (a TOML file whose keys are the field names
below, without the prefix); environment variables override it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_DATABASE_URL = "sqlite:///sentra.db"
"""The embedded store: a SQLite file in the working directory, so no server is needed."""

ENV_PREFIX = "SENTRA_"


class ConfigError(ValueError):
    """Raised when the configuration is invalid; the message names every wrong variable."""


class Settings(BaseSettings):
    """Everything an operator can configure."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    window_days: float = Field(7.0, gt=0, description="length of a run's window, in days")
    block_threshold: float = Field(0.80, ge=0, le=1)
    review_threshold: float = Field(0.50, ge=0, le=1)
    decision_expiry_days: float = Field(
        30.0, gt=0, description="an unscored account's last decision is dropped after this"
    )
    rejects_path: str = Field(
        "sentra_rejects.jsonl", description="default reject file of `ingest` (--rejects)"
    )
    ingest_chunk_rows: int = Field(50_000, ge=1_000, le=2_000_000)

    # HTTP API
    api_keys: str = Field("", description="comma-separated KEY:SCOPES, KEY may be sha256:<hex>")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    refresh_seconds: float = Field(5.0, gt=0, le=10)
    gateway_account_header: str = "X-Account-Id"

    # Scheduler
    run_interval_minutes: float = Field(60.0, gt=0)
    run_cron: str | None = None
    export_interval_minutes: float = Field(15.0, gt=0)
    export_cron: str | None = None
    export_path: str = "banlist.csv"
    export_format: Literal["csv", "json"] = "csv"
    export_min_decision: Literal["block", "review"] = "block"
    export_webhook_url: str | None = None
    retention_runs: int = Field(20, ge=1)

    # Reading gateway / billing tables in place
    source_requests_table: str | None = None
    source_accounts_table: str | None = None
    source_requests_columns: dict[str, str] = Field(default_factory=dict)
    source_accounts_columns: dict[str, str] = Field(default_factory=dict)
    source_watermark_column: str = "ts"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(f"{ENV_PREFIX}CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
            raise ValueError(
                "expected sqlite:///path.db or postgresql://user@host/db "
                f"(postgresql+psycopg:// also accepted), found {value.split(':', 1)[0]!r}"
            )
        return value

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Settings:
        if self.review_threshold > self.block_threshold:
            raise ValueError(
                f"review_threshold ({self.review_threshold}) must not exceed "
                f"block_threshold ({self.block_threshold})"
            )
        return self


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "settings"
        variable = f"{ENV_PREFIX}{field.upper()}" if item["loc"] else "configuration"
        lines.append(f"{variable}: {item['msg']} (got {item.get('input')!r})")
    return "invalid configuration: " + "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build and validate settings, raising :class:`ConfigError` with a readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use."""
    return load_settings()
