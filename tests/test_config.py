from __future__ import annotations

import pytest

from sentra_graph.config import DEFAULT_DATABASE_URL, ConfigError, load_settings


def test_defaults_use_the_embedded_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRA_DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.window_days == 7
    assert settings.refresh_seconds <= 10


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRA_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("SENTRA_BLOCK_THRESHOLD", "0.9")
    settings = load_settings()
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.block_threshold == 0.9


def test_wrong_values_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRA_WINDOW_DAYS", "-3")
    monkeypatch.setenv("SENTRA_DATABASE_URL", "mysql://x")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "SENTRA_WINDOW_DAYS" in message
    assert "SENTRA_DATABASE_URL" in message


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match="review_threshold"):
        load_settings(block_threshold=0.4, review_threshold=0.6)


def test_config_file_is_read_and_env_wins(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "sentra.toml"
    config.write_text('window_days = 3\nexport_format = "json"\n')
    monkeypatch.setenv("SENTRA_CONFIG", str(config))
    monkeypatch.setenv("SENTRA_WINDOW_DAYS", "2")
    settings = load_settings()
    assert settings.export_format == "json"
    assert settings.window_days == 2
