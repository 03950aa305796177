"""Benchmark: ``subscribers import`` of N generated rows against a bare sqlite3 executemany.

Both runs load the same rows into a freshly migrated SQLite database (same schema, indexes and
pragmas, one transaction per 5,000 rows). The baseline skips everything the importer does on
top: CSV dialect detection, address validation, duplicate and suppression checks, history
events. The baseline runs before and after the import and the faster of the two counts, so
a burst of load on a shared machine cannot flatter the ratio. The import runs in a child
process so its peak memory (max RSS) is its own.

    .venv/bin/python bench/import.py            # 1,000,000 rows
    .venv/bin/python bench/import.py --rows 100000

Targets: import rate >= 0.5x the baseline rate, import peak RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

CHUNK = 5000
DOMAINS = [f"mail{n}.example.com" for n in range(500)] + ["example.org", "Example.NET"]
FIRST = ["Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Dennis", "Barbara"]
LAST = ["Lovelace", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Ritchie"]


def generate(path: Path, rows: int) -> None:
    """Mailchimp-style export: "Email Address","First Name","Last Name"."""
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Email Address", "First Name", "Last Name"])
        for n in range(rows):
            first, last = FIRST[n % len(FIRST)], LAST[n % len(LAST)]
            w.writerow(
                [f"{first.lower()}.{last.lower()}{n}@{DOMAINS[n % len(DOMAINS)]}", first, last]
            )


def fresh_db(path: Path) -> str:
    from pulseletter.db.engine import make_engine
    from pulseletter.db.migrate import upgrade

    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def baseline(db_path: Path, csv_path: Path) -> tuple[int, float]:
    """Bare sqlite3: read the CSV, build each row's tuple, executemany per 5,000 rows."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    sql = (
        "INSERT INTO subscribers (email, email_key, name, status, status_changed_at, "
        "status_reason, source, token, needs_smtputf8, paused_until, bounce_count, attributes, "
        "created_at, confirmed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    started = time.perf_counter()
    n = 0
    with csv_path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        chunk: list[tuple[object, ...]] = []
        for email, first, last in reader:
            local, _, domain = email.rpartition("@")
            normal = f"{local}@{domain.lower()}"
            chunk.append(
                (
                    normal,
                    normal.lower(),
                    f"{first} {last}",
                    "pending",
                    now,
                    "import",
                    "import",
                    secrets.token_urlsafe(24),
                    0,
                    None,
                    0,
                    "{}",
                    now,
                    None,
                )
            )
            if len(chunk) == CHUNK:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(sql, chunk)
                conn.execute("COMMIT")
                n += len(chunk)
                chunk = []
        if chunk:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, chunk)
            conn.execute("COMMIT")
            n += len(chunk)
    elapsed = time.perf_counter() - started
    conn.close()
    return n, elapsed


CHILD = """
import json, resource, sys, time
from pathlib import Path
from pulseletter.config import load_settings
from pulseletter.service.app import App
from pulseletter.service.subscriber_csv import import_csv
settings = load_settings(Path(sys.argv[1]), environ={})
app = App.open(settings)
started = time.perf_counter()
report = import_csv(app, Path(sys.argv[2]), consented=False)
elapsed = time.perf_counter() - started
app.close()
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"imported": report.imported, "rejected": report.rejected, "rows": report.rows,
                  "seconds": elapsed, "peak_rss_mb": rss_kb / 1024}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", help="folder to keep the files in (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        csv_path = work / "subscribers.csv"
        t = time.perf_counter()
        generate(csv_path, args.rows)
        print(
            f"generated {args.rows:,} rows ({csv_path.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - t:.1f} s"
        )

        for old in work.glob("*.db*"):
            old.unlink()

        def run_baseline(label: str) -> float:
            base_db = work / f"baseline-{label}.db"
            fresh_db(base_db)
            n, seconds = baseline(base_db, csv_path)
            print(
                f"baseline ({label}) sqlite3 executemany: {n:,} rows in {seconds:.2f} s "
                f"= {n / seconds:,.0f} rows/s"
            )
            return n / seconds

        before = run_baseline("before")
        import_db = work / "import.db"
        url = fresh_db(import_db)
        config = work / "config.toml"
        config.write_text(f'[database]\nurl = "{url}"\n[security]\nsecret = "bench"\n', "utf-8")
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(config), str(csv_path)],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        rate = result["imported"] / result["seconds"]
        base_rate = max(before, run_baseline("after"))  # the faster baseline: conservative
        print(
            f"pulseletter subscribers import: {result['imported']:,} rows in "
            f"{result['seconds']:.2f} s = {rate:,.0f} rows/s "
            f"(rejected {result['rejected']}), peak RSS {result['peak_rss_mb']:.1f} MB"
        )
        ratio = rate / base_rate
        ok_rate, ok_mem = ratio >= 0.5, result["peak_rss_mb"] < 150
        print(
            f"ratio import/baseline: {ratio:.2f}x "
            f"(target >= 0.5x: {'met' if ok_rate else 'MISSED'})"
        )
        print(
            f"peak memory: {result['peak_rss_mb']:.1f} MB (target < 150 MB: "
            f"{'met' if ok_mem else 'MISSED'})"
        )
        db = sqlite3.connect(import_db)
        stored = db.execute("SELECT count(*) FROM subscribers").fetchone()[0]
        events = db.execute("SELECT count(*) FROM subscriber_events").fetchone()[0]
        db.close()
        print(f"check: {stored:,} subscribers and {events:,} history events stored")
        return 0 if ok_rate and ok_mem and stored == args.rows else 1


if __name__ == "__main__":
    sys.exit(main())
