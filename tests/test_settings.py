"""Settings: the secret key rules and database URL handling."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kernel.database_url import to_async_url, with_database
from kernel.settings import ConfigurationError, Settings, load_or_create_secret_key


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, DESKPILOT_HOME=tmp_path / "home", **values)  # type: ignore[call-arg]


def test_embedded_mode_generates_a_private_key_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    key = settings.resolve_secret_key()
    path = tmp_path / "home" / "secret_key"
    assert len(key) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _settings(tmp_path).resolve_secret_key() == key


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: load_or_create_secret_key(tmp_path), range(16)))
    assert len(keys) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]


def test_explicit_key_wins(tmp_path: Path) -> None:
    assert _settings(tmp_path, DESKPILOT_SECRET_KEY="given").resolve_secret_key() == "given"
    assert not (tmp_path / "home" / "secret_key").exists()


def test_external_database_requires_a_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path, DATABASE_URL="postgresql://db.internal/deskpilot")
    assert not settings.embedded_database
    with pytest.raises(ConfigurationError, match="DESKPILOT_SECRET_KEY is not set"):
        settings.resolve_secret_key()


def test_environment_variables_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESKPILOT_API_PORT", "9123")
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h/db")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.api_port == 9123
    assert settings.database_url == "postgres://u:p@h/db"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5433/db", "postgresql+asyncpg://u:p@h:5433/db"),
        ("postgresql://u@h/db?sslmode=require", "postgresql+asyncpg://u@h/db?ssl=require"),
        ("postgresql+psycopg://u@h/db", "postgresql+asyncpg://u@h/db"),
        (
            "postgresql://postgres:@/db?host=/tmp/sock",
            "postgresql+asyncpg://postgres:@/db?host=%2Ftmp%2Fsock",
        ),
    ],
)
def test_urls_are_normalised_for_asyncpg(given: str, expected: str) -> None:
    assert to_async_url(given).render_as_string(hide_password=False) == expected


def test_non_postgres_urls_are_refused() -> None:
    with pytest.raises(ValueError, match="PostgreSQL"):
        to_async_url("mysql://u@h/db")
    with pytest.raises(ValueError, match="sslmode"):
        to_async_url("postgresql://u@h/db?sslmode=sometimes")


def test_with_database_keeps_the_server() -> None:
    assert (
        with_database("postgresql://u:p@h:1/a?host=/s", "b") == "postgresql://u:p@h:1/b?host=%2Fs"
    )


def test_env_example_documents_every_setting(repo_root: Path) -> None:
    documented = set()
    for line in (repo_root / ".env.example").read_text().splitlines():
        name = line.lstrip("# ").split("=", 1)[0]
        if "=" in line and name.isupper():
            documented.add(name)
    variables = {field.validation_alias for field in Settings.model_fields.values()}
    assert variables - documented == set()


def test_defaults_ignore_unrelated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only documented names count: $HOME is not DESKPILOT_HOME, $API_PORT is not the port."""
    for name in ("DESKPILOT_HOME", "DESKPILOT_API_PORT", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/somewhere/else")
    monkeypatch.setenv("API_PORT", "1")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.home == Path(".deskpilot")
    assert settings.api_port == 8000
    assert settings.embedded_database
