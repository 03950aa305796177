"""The engine, with SQLite pragmas on every connection and BEGIN IMMEDIATE for writers.

WAL lets the web app read while the sender writes; ``busy_timeout`` makes a second writer wait
instead of failing; ``BEGIN IMMEDIATE`` takes the write lock up front so two writers never
deadlock upgrading a read lock (the classic SQLITE_BUSY in the middle of a transaction).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from pulseletter.config import Settings

IMMEDIATE = "pulseletter_immediate"


def make_engine(url: str, busy_timeout_ms: int = 5000) -> Engine:
    """Build an engine; on SQLite, install the pragmas and explicit transaction control."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (pysqlite quirk)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """An engine and two ways to use it: ``reading()`` and ``writing()`` (one transaction each)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(
            engine.execution_options(**{IMMEDIATE: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any exception."""
        with self._write() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(settings: Settings, *, check_schema: bool = True) -> Database:
    """Open the configured database; refuse (SchemaOutOfDate) if migrations are pending."""
    from pulseletter.db.migrate import ensure_current

    db = Database(make_engine(settings.database_url, settings.database.busy_timeout_ms))
    if check_schema:
        try:
            ensure_current(db.engine)
        except Exception:
            db.dispose()
            raise
    return db
