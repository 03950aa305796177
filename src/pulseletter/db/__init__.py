"""Database access: engine with SQLite pragmas, typed models, and Alembic migrations."""

from pulseletter.db.engine import Database, open_database

__all__ = ["Database", "open_database"]
