"""``pulseletter demo``: the whole path on embedded defaults, into one folder.

Sample content is copied with its dates shifted by whole weeks so that its newest week is the
last complete week: the issue the demo sends is "last week's", as a Monday send would be.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pulseletter.config import load_settings
from pulseletter.content.markdown_folder import parse_time, split_front_matter
from pulseletter.content.week import last_complete_week, week_containing
from pulseletter.db.migrate import upgrade
from pulseletter.mail.sink import SmtpSink
from pulseletter.mail.transports import SmtpTransport
from pulseletter.service.app import App, Clock, system_clock
from pulseletter.service.content import ingest
from pulseletter.service.issues import prepare_issue, resolve_week
from pulseletter.service.preview import sample_recipient, write_preview_files
from pulseletter.service.sending import SendOutcome, send_issue
from pulseletter.service.subscribers import add_demo_subscribers

SAMPLE_CONTENT = Path(__file__).resolve().parent.parent / "sample_content"
DEMO_FILES = (
    "config.toml",
    "secret.key",
    "issue.html",
    "issue.txt",
    "issue.eml",
    "lint.txt",
    "subscribers.db",
    "subscribers.db-wal",
    "subscribers.db-shm",
)
DEMO_DIRS = ("content", "received", "outbox")
PUBLISHED = re.compile(r"^published:\s*(\S+)\s*$", re.MULTILINE)

DEMO_CONFIG = """\
# Written by `pulseletter demo`. Every command works on the demo data with
#   pulseletter --config {out}/config.toml COMMAND
# Sending from here never leaves the machine: the transport writes .eml files to outbox/.

[newsletter]
name = "The Weekly Pulse"
from_name = "The Weekly Pulse"
from_address = "newsletter@pulse.example.com"
postal_address = "The Weekly Pulse, 1 Example Street, Exampletown"

[database]
url = "sqlite:///subscribers.db"

[content]
dir = "content"

[transport]
kind = "file"
file_dir = "outbox"

[web]
base_url = "http://127.0.0.1:8025"

[security]
secret_file = "secret.key"

[schedule]
timezone = "UTC"
send = "mon 08:00"
"""


@dataclass(frozen=True)
class DemoResult:
    out: Path
    title: str
    issue_key: str
    recipients: int
    outcome: SendOutcome
    seconds: float
    received: int


def clean(out: Path) -> None:
    """Remove only what a previous demo wrote, so ``--out .`` can never wipe a project."""
    for name in DEMO_FILES:
        (out / name).unlink(missing_ok=True)
    for name in DEMO_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)


def copy_sample_content(dest: Path, now: datetime, tz_name: str = "UTC") -> timedelta:
    """Copy the sample folder, shifting every ``published:`` by the same whole number of weeks."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(tz_name)
    files = sorted(SAMPLE_CONTENT.rglob("*.md"))
    newest = max(
        parse_time(split_front_matter(f.read_text("utf-8"), f)[0]["published"], str(f))
        for f in files
        if "articles" in f.parts
    )
    shift = last_complete_week(now, tz).start - week_containing(newest, tz).start
    for src in files:
        target = dest / src.relative_to(SAMPLE_CONTENT)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = PUBLISHED.sub(lambda m: _shifted(m, shift), src.read_text("utf-8"))
        target.write_text(text, "utf-8")
    return shift


def _shifted(match: re.Match[str], shift: timedelta) -> str:
    return "published: " + (parse_time(match.group(1), "sample content") + shift).isoformat()


def run_demo(out: Path, subscribers: int = 25, clock: Clock = system_clock) -> DemoResult:
    started = time.perf_counter()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    clean(out)
    (out / "config.toml").write_text(DEMO_CONFIG.format(out=out), "utf-8")
    (out / "secret.key").write_text(secrets.token_urlsafe(32) + "\n", "utf-8")
    (out / "secret.key").chmod(0o600)
    settings = load_settings(out / "config.toml", environ={})
    copy_sample_content(settings.path(settings.content.dir), clock(), settings.schedule.timezone)
    app = App.open(settings, check_schema=False, clock=clock)
    try:
        upgrade(app.db.engine)
        ingest(app, [settings.path(settings.content.dir)])
        add_demo_subscribers(app, subscribers)
        issue = prepare_issue(app, resolve_week(app, None))
        write_preview_files(app, issue, out, sample_recipient(app, issue.key))
        with SmtpSink(out / "received") as sink:
            app.transport_factory = lambda: SmtpTransport(
                sink.host, sink.port, security="none", local_hostname="localhost", timeout=10
            )
            outcome = send_issue(app, issue.key)
            received = len(sink.messages)
    finally:
        app.close()
    return DemoResult(
        out, issue.subject, issue.key, subscribers, outcome, time.perf_counter() - started, received
    )
