"""A message from ``pulseletter demo`` passes the bulk-sender header checklist, and one signed
with DKIM (key made here, public key served by a local dnsfunc) verifies with dkim.verify."""

from __future__ import annotations

import base64
import shutil
import sqlite3
import subprocess
from email.utils import parsedate_to_datetime
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner

from dispatch_support import parse
from pulseletter.cli import cli
from pulseletter.mail.dkim import DkimSigner
from pulseletter.mail.message import MessageHeaders, build_message


def checklist(raw: bytes, *, token: str | None = None) -> None:
    """Gmail/Yahoo bulk-sender rules, and RFC 5322/2045 well-formedness."""
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii()
    msg = parse(raw)
    for name in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "List-Id"):
        assert len(msg.get_all(name) or []) == 1, f"exactly one {name}"
    sender = msg["From"].addresses
    assert len(sender) == 1 and sender[0].display_name and "@" in sender[0].addr_spec
    assert len(msg["To"].addresses) == 1
    assert parsedate_to_datetime(str(msg["Date"])).tzinfo is not None
    assert str(msg["Message-ID"]).startswith("<") and "@" in str(msg["Message-ID"])
    assert str(msg["MIME-Version"]) == "1.0"
    unsubscribe = str(msg["List-Unsubscribe"])
    assert unsubscribe.startswith("<http") and "/unsubscribe/" in unsubscribe
    if token is not None:
        assert f"/unsubscribe/{token}>" in unsubscribe
    assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]  # text first
    for part in parts:
        assert str(part["Content-Transfer-Encoding"]) == "quoted-printable"
        assert part.get_content_charset() == "utf-8"
        assert "/unsubscribe/" in part.get_content()  # a visible unsubscribe link too


def run_demo(tmp_path: Path) -> Path:
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--subscribers", "3"])
    assert result.exit_code == 0, result.output
    return out


def test_every_demo_message_passes_the_bulk_sender_checklist(tmp_path: Path) -> None:
    out = run_demo(tmp_path)
    db = sqlite3.connect(out / "subscribers.db")
    stored = dict(db.execute("SELECT email, message_id FROM deliveries").fetchall())
    tokens = dict(db.execute("SELECT email, token FROM subscribers").fetchall())
    db.close()
    received = sorted((out / "received").glob("*.eml"))
    assert len(received) == 3
    for path in received:
        raw = path.read_bytes()
        msg = parse(raw)
        to = msg["To"].addresses[0].addr_spec
        checklist(raw, token=tokens[to])
        assert str(msg["Message-ID"]) == stored[to]  # generated once, stored, sent


def make_key(tmp_path: Path) -> tuple[bytes, bytes]:
    """A fresh 2048-bit RSA key (PKCS#1 PEM) and its public key as DNS would publish it."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to generate a DKIM test key")
    key = tmp_path / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(key), "2048"],
        check=True,
        capture_output=True,
    )
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key.read_bytes(), b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def dns_for(record: bytes, name: bytes) -> object:
    def dnsfunc(query: bytes, timeout: int = 5) -> bytes | None:
        return record if query == name else None

    return dnsfunc


def test_a_dkim_signed_test_copy_of_the_demo_issue_verifies(tmp_path: Path) -> None:
    out = run_demo(tmp_path)
    private, public = make_key(tmp_path)
    (out / "dkim.pem").write_bytes(private)
    env = {
        "PULSELETTER_DKIM__DOMAIN": "pulse.example.com",
        "PULSELETTER_DKIM__SELECTOR": "pl2026",
        "PULSELETTER_DKIM__KEY_FILE": "dkim.pem",
        "PULSELETTER_SENDING__FEEDBACK_ID": "w47:weekly:pulse",
    }
    config = ["--config", str(out / "config.toml")]
    result = CliRunner().invoke(
        cli, [*config, "issue", "send", "--test-to", "me@example.org"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "test copy" in result.output and "250" in result.output
    [path] = list((out / "outbox").glob("*.eml"))
    raw = path.read_bytes()
    checklist(raw)
    signature = str(parse(raw)["DKIM-Signature"])
    tags = dict(
        t.strip().split("=", 1) for t in signature.replace("\r\n", "").split(";") if "=" in t
    )
    signed = {h.strip().lower() for h in tags["h"].split(":")}
    assert {"list-unsubscribe", "list-unsubscribe-post", "feedback-id", "from", "to"} <= signed
    assert tags["d"] == "pulse.example.com" and tags["s"] == "pl2026"
    dnsfunc = dns_for(public, b"pl2026._domainkey.pulse.example.com.")
    assert dkim.verify(raw, dnsfunc=dnsfunc)
    # the test copy is not recorded as a delivery to anyone
    db = sqlite3.connect(out / "subscribers.db")
    assert db.execute(
        "SELECT count(*) FROM deliveries WHERE email='me@example.org'"
    ).fetchone() == (0,)
    db.close()
    # and a tampered unsubscribe header breaks the signature
    tampered = raw.replace(b"/unsubscribe/TEST-COPY", b"/unsubscribe/EVIL-COPY", 1)
    assert tampered != raw and not dkim.verify(tampered, dnsfunc=dnsfunc)


def test_the_signer_only_names_headers_present(tmp_path: Path) -> None:
    private, public = make_key(tmp_path)
    headers = MessageHeaders("Pulse", "n@pulse.example.com", "Hi", "Pulse <p.pulse.example.com>")
    raw = build_message(
        headers,
        to_address="a@example.com",
        to_name="Ä",
        text="hello\n",
        html="<p>hello</p>",
        message_id="<1@pulse.example.com>",
        date=parse(b"Date: Mon, 23 Nov 2026 08:00:00 +0000\r\n\r\n")["Date"].datetime,
        unsubscribe_url="https://pulse.example.com/unsubscribe/t",
    )
    signed = DkimSigner("pulse.example.com", "s1", private).sign(raw)
    h_tag = str(parse(signed)["DKIM-Signature"]).replace(" ", "").split("h=")[1].split(";")[0]
    assert "list-unsubscribe" in h_tag and "feedback-id" not in h_tag  # no Feedback-ID here
    assert dkim.verify(signed, dnsfunc=dns_for(public, b"s1._domainkey.pulse.example.com."))
