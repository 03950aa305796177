"""CSV import and export of subscribers: streaming, batched, with a rejects file.

Import never changes an existing row (suppression holds, re-runs add nothing twice), reports
every row it did not import with its line number and reason, and imports as ``pending`` with
rate-limited confirmation mails unless the operator states the list is ``consented``.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from sqlalchemy import exists, select

from pulseletter.db.models import Subscriber, SubscriberEvent
from pulseletter.errors import SubscriberError
from pulseletter.service import web_actions
from pulseletter.service.app import App
from pulseletter.service.subscribers import SubscriberFilter, iter_subscribers
from pulseletter.subscribers.addresses import AddressChecker
from pulseletter.subscribers.bulk import BatchImporter, batched
from pulseletter.subscribers.csv_format import (
    EXPORT_COLUMNS,
    SAMPLE_BYTES,
    CsvLayout,
    ImportRow,
    Rejected,
    detect_layout,
    read_rows,
)

log = logging.getLogger(__name__)
Progress = Callable[[int], None]  # called with bytes (import) or rows (export) done so far


@dataclass
class ImportReport:
    path: Path
    layout: CsvLayout
    rows: int = 0
    imported: int = 0
    rejected: int = 0
    rejects_path: Path | None = None
    confirmations_sent: int = 0
    run: str = ""
    reasons: dict[str, int] = field(default_factory=dict)


def import_csv(
    app: App,
    path: Path,
    *,
    consented: bool = False,
    rejects_path: Path | None = None,
    encoding: str = "utf-8",
    batch_size: int = 5000,
    on_reject: Callable[[Rejected], None] | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``path``; every row not imported goes to ``on_reject`` and the rejects file."""
    try:
        with path.open("rb") as f:
            sample = f.read(SAMPLE_BYTES).decode(encoding, errors="replace")
    except OSError as exc:
        raise SubscriberError(f"cannot read {path}: {exc.strerror}") from None
    except LookupError:
        raise SubscriberError(f"unknown encoding {encoding!r}") from None
    layout = detect_layout(sample.lstrip("\ufeff"), str(path))
    report = ImportReport(path, layout)
    checker = AddressChecker(check_deliverability=app.settings.subscribers.check_deliverability)
    importer = BatchImporter(
        app.db, now=app.clock(), consented=consented, source="import", detail=path.name
    )
    report.run = importer.run
    rejects_path = rejects_path or path.with_name(path.name + ".rejects.csv")
    rejects_file: IO[str] | None = None
    writer = None
    try:
        position = [0]
        stream = read_rows(path, layout, checker, encoding, position)
        for batch in batched(stream, batch_size):
            good = [r for r in batch if isinstance(r, ImportRow)]
            bad = [r for r in batch if isinstance(r, Rejected)]
            result = importer.add(good)
            report.rows += len(batch)
            report.imported += result.inserted
            for rejected in sorted(bad + result.rejected, key=lambda r: r.line):
                if writer is None:
                    rejects_file = rejects_path.open(
                        "w", encoding="utf-8", errors="surrogateescape", newline=""
                    )
                    writer = csv.writer(rejects_file)
                    writer.writerow(["line", "reason", "fields"])
                writer.writerow([rejected.line, rejected.reason, *rejected.fields])
                report.rejected += 1
                kind = rejected.reason.split(":")[0].split("(")[0].strip()
                report.reasons[kind] = report.reasons.get(kind, 0) + 1
                if on_reject is not None:
                    on_reject(rejected)
            if progress is not None:
                progress(position[0])
        if progress is not None:
            progress(path.stat().st_size)
    finally:
        if rejects_file is not None:
            rejects_file.close()
    report.rejects_path = rejects_path if report.rejected else None
    if report.rejected == 0:
        rejects_path.unlink(missing_ok=True)  # no stale rejects from an earlier run
    return report


def send_pending_confirmations(
    app: App,
    run: str | None = None,
    *,
    rate_per_second: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress | None = None,
) -> int:
    """Mail a confirmation to each pending subscriber of one import ``run`` (or, with None, to
    every pending subscriber never sent one), paced at ``rate_per_second``."""
    rate = app.settings.subscribers.confirmation_rate_per_second
    rate = rate if rate_per_second is None else rate_per_second
    sent = done = 0
    last_id = 0
    while True:
        with app.db.reading() as session:
            ids = list(
                session.scalars(
                    select(Subscriber.id)
                    .where(
                        _never_sent if run is None else Subscriber.status_reason == run,
                        Subscriber.status == "pending",
                        Subscriber.id > last_id,
                    )
                    .order_by(Subscriber.id)
                    .limit(500)
                )
            )
        if not ids:
            return sent
        for subscriber_id in ids:
            started = time.monotonic()
            if web_actions.send_confirmation(app, subscriber_id):
                sent += 1
                if rate > 0:
                    sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
            done += 1
            if progress is not None:
                progress(done)
        last_id = ids[-1]


_never_sent = ~exists().where(
    SubscriberEvent.subscriber_id == Subscriber.id,
    SubscriberEvent.kind == web_actions.CONFIRMATION_SENT,
)


def export_csv(
    app: App, out: IO[str], where: SubscriberFilter, progress: Progress | None = None
) -> int:
    """Write the selected subscribers in pulseletter's own format (re-importable)."""
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    n = 0
    for s in iter_subscribers(app, where):
        writer.writerow(
            [
                s.email,
                s.name,
                s.status,
                s.status_reason,
                s.source,
                _iso(s.created_at),
                _iso(s.status_changed_at),
                _iso(s.confirmed_at),
                _iso(s.paused_until),
                "true" if s.needs_smtputf8 else "false",
                json.dumps(s.attributes or {}, ensure_ascii=False, separators=(",", ":")),
            ]
        )
        n += 1
        if progress is not None and n % 1000 == 0:
            progress(n)
    if progress is not None:
        progress(n)
    return n


def _iso(at: datetime | None) -> str:
    return at.isoformat().replace("+00:00", "Z") if at else ""
