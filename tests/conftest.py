"""Shared fixtures: real SQLite files (and PostgreSQL when configured), a fixed clock, a real
SMTP server on 127.0.0.1, and a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from pulseletter.config import Settings, load_settings
from pulseletter.db.migrate import upgrade
from pulseletter.mail.sink import SmtpSink
from pulseletter.mail.transports import MemoryTransport
from pulseletter.service.app import App

PG_URL = os.environ.get("PULSELETTER_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@dataclass
class FixedClock:
    """A clock tests move by hand: no test sleeps for real time."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 23, 8, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def reset_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, and PostgreSQL too when configured."""
    if request.param == "postgresql":
        reset_postgres(PG_URL)
        return PG_URL
    return f"sqlite:///{tmp_path / 'subscribers.db'}"


ConfigWriter = Callable[..., Settings]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + "}"
    return str(value)


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {toml_value(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines), "utf-8")
    return path


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> ConfigWriter:
    """Write a config.toml in tmp_path (database fixture's URL plus overrides) and load it."""

    def make(**sections: dict[str, Any]) -> Settings:
        merged: dict[str, dict[str, Any]] = {
            "database": {"url": database_url},
            "security": {"secret": "test-secret-not-for-production"},
        }
        for name, values in sections.items():
            merged.setdefault(name, {}).update(values)
        return load_settings(write_config(tmp_path / "config.toml", merged), environ={})

    return make


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def memory_transport() -> MemoryTransport:
    return MemoryTransport()


@pytest.fixture
def app(
    make_settings: ConfigWriter, clock: FixedClock, memory_transport: MemoryTransport
) -> Iterator[App]:
    """A migrated database, a fixed clock and an in-memory transport."""
    a = App.open(
        make_settings(), check_schema=False, clock=clock, transport_factory=lambda: memory_transport
    )
    upgrade(a.db.engine)
    yield a
    a.close()


@pytest.fixture
def smtp_sink(tmp_path: Path) -> Iterator[SmtpSink]:
    """A real aiosmtpd server on 127.0.0.1 that keeps every message it receives."""
    with SmtpSink(tmp_path / "received") as sink:
        yield sink


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
