"""Database: migrations from empty, pragmas, aware datetimes, refusing old schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select, text

from pulseletter.db.engine import Database, make_engine, open_database
from pulseletter.db.migrate import current_revision, head_revision, upgrade
from pulseletter.db.models import Article
from pulseletter.errors import SchemaOutOfDate

TABLES = {
    "subscribers",
    "subscriber_events",
    "suppressions",
    "articles",
    "insights",
    "issues",
    "deliveries",
    "service_leases",
    "job_runs",
}


def test_migrate_up_from_empty(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    before, after = upgrade(engine)
    assert before is None and after == head_revision()
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert upgrade(engine) == (after, after)  # a second upgrade is a no-op
    engine.dispose()


def test_commands_refuse_an_unmigrated_database(make_settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SchemaOutOfDate, match="pulseletter db upgrade"):
        open_database(make_settings())


def test_sqlite_connections_get_wal_busy_timeout_and_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}", busy_timeout_ms=1234)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_times_come_back_aware_in_utc(app) -> None:  # type: ignore[no-untyped-def]
    paris = timezone(timedelta(hours=1))
    with app.db.writing() as session:
        session.add(
            Article(
                url="https://x.example/a",
                title="A",
                published_at=datetime(2026, 11, 20, 9, 0, tzinfo=paris),
            )
        )
    with app.db.reading() as session:
        article = session.scalars(select(Article)).one()
    assert article.published_at == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    assert article.published_at.tzinfo is UTC


def test_naive_times_are_refused(app) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception, match="naive datetime"), app.db.writing() as session:
        session.add(
            Article(url="https://x.example/b", title="B", published_at=datetime(2026, 11, 20, 9, 0))
        )


def test_a_failed_write_leaves_nothing_behind(app) -> None:  # type: ignore[no-untyped-def]
    db: Database = app.db
    with pytest.raises(RuntimeError), db.writing() as session:
        session.add(
            Article(
                url="https://x.example/c",
                title="C",
                published_at=datetime(2026, 11, 20, tzinfo=UTC),
            )
        )
        session.flush()
        raise RuntimeError("boom")
    with db.reading() as session:
        assert session.scalar(text("SELECT count(*) FROM articles")) == 0
