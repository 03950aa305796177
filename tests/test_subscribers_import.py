"""CSV import and export: layouts, broken rows with line numbers, suppression, re-runs,
confirmations, and a round trip through our own export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import FixedClock
from pulseletter.cli import cli
from pulseletter.errors import SubscriberError
from pulseletter.mail.transports import MemoryTransport
from pulseletter.service import subscriber_csv
from pulseletter.service import subscribers as svc
from pulseletter.service.app import App
from pulseletter.service.subscribers import SubscriberFilter
from pulseletter.subscribers import bulk

BROKEN = (
    b'"Email Address","First Name","Last Name"\r\n'
    b"ada@example.com,Ada,Lovelace\r\n"  # 2 good
    b"not-an-address,Bad,Row\r\n"  # 3 bad address
    b"ADA@Example.com,Ada,Again\r\n"  # 4 duplicate of line 2
    b"left@example.com,Left,Before\r\n"  # 5 suppressed (unsubscribed before)
    b"erased@example.com,Gone,Person\r\n"  # 6 erased on request
    b"caf\xe9@example.com,Latin,One\r\n"  # 7 not UTF-8
    b"grace@example.org,Grace,Hopper,extra,columns\r\n"  # 8 extra columns
    b"\r\n"  # 9 blank: not a row
    b'"eve@example.com","Eve\nNewline",X\r\n'  # 10-11 a line break in the name
    b"linus@example.net,Linus,Torvalds\r\n"  # 12 good
)


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def rejects(path: Path) -> list[tuple[int, str]]:
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["line", "reason", "fields"]
    return [(int(r[0]), r[1]) for r in rows[1:]]


def test_broken_rows_are_each_reported_with_their_line(app: App, tmp_path: Path) -> None:
    svc.add(app, "left@example.com", status="active")
    svc.unsubscribe(app, "left@example.com")
    svc.add(app, "erased@example.com", status="active")
    svc.delete(app, "erased@example.com", erase=True)
    path = write(tmp_path, "broken.csv", BROKEN)
    seen = []
    report = subscriber_csv.import_csv(app, path, consented=True, on_reject=seen.append)
    assert report.layout.kind == "mailchimp"
    assert report.imported == 2 and report.rejected == 7
    assert {s.email for s in svc.list_subscribers(app, "active")} == {
        "ada@example.com",
        "linus@example.net",
    }
    listed = rejects(path.with_name("broken.csv.rejects.csv"))
    assert [line for line, _ in listed] == [3, 4, 5, 6, 7, 8, 11]
    reasons = dict(listed)
    assert "not a valid address" in reasons[3]
    assert reasons[4] == "duplicate of line 2"
    assert reasons[5] == "suppressed (unsubscribed): left unchanged"
    assert "erased on request" in reasons[6]
    assert "encoding" in reasons[7]
    assert "5 fields where the header has 3" in reasons[8]
    assert "line break" in reasons[11]
    assert [r.line for r in seen] == [3, 4, 5, 6, 7, 8, 11]
    assert svc.find(app, "left@example.com").status == "unsubscribed"  # never re-activated
    assert svc.find(app, "ada@example.com").name == "Ada Lovelace"


def test_the_cli_prints_every_rejected_row_and_writes_the_rejects_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    assert runner.invoke(cli, ["init", str(tmp_path / "site")]).exit_code == 0
    config = ["--config", str(tmp_path / "site" / "config.toml")]
    path = write(tmp_path, "list.csv", BROKEN)
    out = tmp_path / "bad.csv"
    result = runner.invoke(
        cli, [*config, "subscribers", "import", str(path), "--consented", "--rejects", str(out)]
    )
    assert result.exit_code == 0, result.output
    for line in (3, 4, 7, 8, 11):
        assert f"{path}:{line}: " in result.output
    assert "imported 4, not imported 5" in result.output
    assert f"rejected rows written to {out}" in result.output
    assert len(rejects(out)) == 5
    again = runner.invoke(cli, [*config, "subscribers", "import", str(path), "--quiet"])
    assert "imported 0" in again.output and "already a subscriber" in again.output


def test_rerunning_an_interrupted_import_adds_nothing_twice(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ["email,name"] + [f"r{n}@example.com,R{n}" for n in range(10)]
    path = write(tmp_path, "ten.csv", "\n".join(lines) + "\n")
    real_add = bulk.BatchImporter.add
    calls = {"n": 0}

    def crash_on_third_batch(self: bulk.BatchImporter, rows: list) -> bulk.BatchResult:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_add(self, rows)

    monkeypatch.setattr(bulk.BatchImporter, "add", crash_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        subscriber_csv.import_csv(app, path, consented=True, batch_size=3)
    assert len(svc.list_subscribers(app)) == 6  # two whole batches committed, nothing half
    monkeypatch.setattr(bulk.BatchImporter, "add", real_add)
    report = subscriber_csv.import_csv(app, path, consented=True, batch_size=3)
    assert report.imported == 4 and report.rejected == 6
    assert sorted(s.email for s in svc.list_subscribers(app)) == sorted(
        f"r{n}@example.com" for n in range(10)
    )


def test_pending_imports_get_paced_confirmations(
    app: App, tmp_path: Path, memory_transport: MemoryTransport
) -> None:
    path = write(tmp_path, "p.csv", "a@example.com\nb@example.com\nc@example.com\n")
    report = subscriber_csv.import_csv(app, path)
    assert report.layout.kind == "plain" and not report.layout.has_header
    assert {s.status for s in svc.list_subscribers(app)} == {"pending"}
    pauses: list[float] = []
    sent = subscriber_csv.send_pending_confirmations(app, report.run, sleep=pauses.append)
    assert sent == 3 and sorted(to for _, to, _ in memory_transport.sent) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]
    assert len(pauses) == 3 and all(0 <= p <= 0.2 for p in pauses)  # 5 per second
    assert subscriber_csv.send_pending_confirmations(app, sleep=pauses.append) == 0


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("semicolon.csv", "E-mail;Name\nsemi@example.com;Semi Colon\n", "plain"),
        ("tabs.tsv", "email\tname\ntab@example.com\tTab Person\n", "plain"),
        (
            "bom.csv",
            "\ufeffEmail Address,First Name,Last Name\nbom@example.com,B,OM\n",
            "mailchimp",
        ),
        (
            "listmonk.csv",
            'email,name,attributes\nlm@example.com,List Monk,"{""city"": ""Oslo""}"\n'
            "lm2@example.com,Bad Attrs,[1]\n",
            "listmonk",
        ),
    ],
)
def test_layouts_are_detected(app: App, tmp_path: Path, name: str, data: str, kind: str) -> None:
    report = subscriber_csv.import_csv(app, write(tmp_path, name, data), consented=True)
    assert report.layout.kind == kind and report.imported == 1
    sub = svc.list_subscribers(app)[0]
    assert sub.name in ("Semi Colon", "Tab Person", "B OM", "List Monk")
    if kind == "listmonk":
        assert sub.attributes == {"city": "Oslo"} and report.rejected == 1


def test_a_file_without_an_email_column_is_refused(app: App, tmp_path: Path) -> None:
    path = write(tmp_path, "what.csv", "id,phone\n1,555\n")
    with pytest.raises(SubscriberError, match=r"what\.csv: line 1: no email column"):
        subscriber_csv.import_csv(app, path)


def test_export_round_trip_carries_status_preferences_and_suppression(
    app: App, tmp_path: Path, clock: FixedClock
) -> None:
    from pulseletter.service import web_actions

    a = svc.add(app, "act@example.com", name="Act, Ive", status="active")
    svc.add(app, "left@example.com", status="active")
    svc.unsubscribe(app, "left@example.com")
    svc.add(app, "pend@example.com")
    web_actions.update_preferences(app, a.token, name="Act, Ive", pause_weeks=3, unsubscribe=False)
    out = io.StringIO()
    assert subscriber_csv.export_csv(app, out, SubscriberFilter()) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    by_email = {r["email"]: r for r in rows}
    assert by_email["act@example.com"]["paused_until"].startswith("2026-12-14")
    assert by_email["left@example.com"]["status"] == "unsubscribed"
    assert by_email["pend@example.com"]["source"] == "cli"
    assert json.loads(by_email["act@example.com"]["attributes"]) == {}
    assert by_email["act@example.com"]["created_at"].endswith("Z")

    for s in svc.list_subscribers(app):
        svc.delete(app, s.email, erase=True)
    path = write(tmp_path, "export.csv", out.getvalue())
    with app.db.writing() as session:  # a fresh list elsewhere: no suppressions yet
        from sqlalchemy import delete

        from pulseletter.db.models import Suppression

        session.execute(delete(Suppression))
    report = subscriber_csv.import_csv(app, path)
    assert report.layout.kind == "pulseletter" and report.imported == 3
    status = {s.email: s.status for s in svc.list_subscribers(app)}
    assert status == {
        "act@example.com": "pending",  # consent is not carried over without --consented
        "left@example.com": "unsubscribed",  # the suppression is
        "pend@example.com": "pending",
    }
    assert svc.find(app, "act@example.com").name == "Act, Ive"


def test_cli_export_writes_a_file_with_filters(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(cli, ["init", str(tmp_path / "site")]).exit_code == 0
    config = ["--config", str(tmp_path / "site" / "config.toml")]
    for address in ("x@example.com", "y@example.com"):
        runner.invoke(cli, [*config, "subscribers", "add", address, "--consented"])
    runner.invoke(cli, [*config, "subscribers", "unsubscribe", "y@example.com"])
    target = tmp_path / "out.csv"
    result = runner.invoke(
        cli, [*config, "subscribers", "export", str(target), "--status", "unsubscribed"]
    )
    assert result.exit_code == 0 and "exported 1" in result.output
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert [r["email"] for r in rows] == ["y@example.com"]
    assert rows[0]["status_reason"] == "cli"
