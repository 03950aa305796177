"""The wiring: settings, database, clock and transport, swappable in tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pulseletter.config import Settings
from pulseletter.db import Database, open_database
from pulseletter.mail.transports import Transport

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    db: Database
    clock: Clock = system_clock
    transport_factory: Callable[[], Transport] | None = field(default=None)

    @classmethod
    def open(cls, settings: Settings, *, check_schema: bool = True, **kwargs: object) -> App:
        return cls(settings, open_database(settings, check_schema=check_schema), **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        self.db.dispose()
