"""Benchmark: send an issue of about 40 KB to 20,000 and 100,000 generated subscribers
through the real code path (fan-out, ledger, fast MIME path, SMTP), against two baselines
measured in the same run on the same responder:

  (a) naive: an EmailMessage built per recipient, sent with smtplib on one reused connection;
  (b) raw:   pre-built bytes replayed, one SMTP round trip per message, on one connection
             (the practical ceiling of a Python client).

Each measurement runs in a fresh subprocess so its CPU time and peak RSS are its own.

    python bench/send.py                        # 20,000 and 100,000
    python bench/send.py --sizes 2000 --naive 300   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from smtp_responder import ResponderProcess

KEY = "2026-W47"


def issue_bodies(target_kb: int = 40) -> tuple[str, str]:
    """An issue whose message is about ``target_kb`` KB: HTML with links, and a text twin."""
    from pulseletter.compose.render import placeholder

    story = (
        '<tr><td style="padding:16px 24px;font-family:Helvetica,Arial,sans-serif;color:#1b1b1b">'
        '<h2 style="margin:0 0 8px;font-size:20px">Grid batteries outgrow the pilot stage</h2>'
        '<p style="margin:0 0 12px;line-height:1.5">Utilities that tested four-hour storage '
        "are now ordering it by the gigawatt-hour, and the price curve keeps bending. "
        "What changed is less the chemistry than the contracts around it.</p>"
        '<p><a href="https://pulse.example.com/a/grid-batteries" style="color:#e4572e">'
        "Read more</a>"
        "</p></td></tr>\n"
    )
    head = f"<!doctype html><html><body><p>Hello {placeholder('name')},</p><table>\n"
    foot = (
        f'</table><p><a href="{placeholder("web_url")}">View in a browser</a> | '
        f'<a href="{placeholder("preferences_url")}">Preferences</a> | '
        f'<a href="{placeholder("unsubscribe_url")}">Unsubscribe</a></p></body></html>\n'
    )
    html = head + story * (target_kb * 1024 * 85 // 100 // len(story)) + foot
    text_story = (
        "GRID BATTERIES OUTGROW THE PILOT STAGE\nUtilities that tested four-hour storage are "
        "now ordering it by the gigawatt-hour.\nhttps://pulse.example.com/a/grid-batteries\n\n"
    )
    text = (
        f"Hello {placeholder('name')},\n\n"
        + text_story * (target_kb * 1024 * 15 // 100 // len(text_story))
        + f"Web: {placeholder('web_url')}\nUnsubscribe: {placeholder('unsubscribe_url')}\n"
    )
    return html, text


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# -- workers (each in its own process) ------------------------------------------------------


def worker_pulseletter(n: int, port: int, connections: int) -> dict[str, float]:
    from sqlalchemy import insert

    from pulseletter.config import load_settings
    from pulseletter.db.migrate import upgrade
    from pulseletter.db.models import Issue, Subscriber
    from pulseletter.service.app import App
    from pulseletter.service.sending import send_issue

    folder = Path(tempfile.mkdtemp(prefix="pl-bench-"))
    (folder / "config.toml").write_text(
        f"""
[database]
url = "sqlite:///{folder / "bench.db"}"
[transport]
kind = "smtp"
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
[sending]
connections = {connections}
messages_per_connection = 1000
batch_size = 500
[security]
secret = "bench"
""",
        "utf-8",
    )
    app = App.open(load_settings(folder / "config.toml", environ={}), check_schema=False)
    upgrade(app.db.engine)
    now = datetime.now(UTC) - timedelta(minutes=1)
    html, text = issue_bodies()
    with app.db.writing() as session:
        session.add(
            Issue(
                key=KEY,
                number=1,
                week_start=now,
                week_end=now,
                state="ready",
                subject="The Weekly Pulse #1: Grid batteries outgrow the pilot stage",
                html=html,
                text=text,
                content={"stories": [1]},
            )
        )
    chunk = 5000
    for start in range(0, n, chunk):
        rows = [
            {
                "email": f"reader{i:06d}@example.com",
                "email_key": f"reader{i:06d}@example.com",
                "name": f"Reader Number {i}",
                "status": "active",
                "status_changed_at": now,
                "token": f"tok{i:06d}" + "x" * 24,
                "created_at": now,
                "attributes": {},
            }
            for i in range(start, min(n, start + chunk))
        ]
        with app.db.writing() as session:
            session.execute(insert(Subscriber), rows)
    del rows
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    outcome = send_issue(app, KEY)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    assert outcome.state == "sent", outcome
    assert outcome.counts == {"sent": n}, outcome.counts
    size = 0
    app.close()
    shutil.rmtree(folder, ignore_errors=True)  # the 100k database is about 50 MB
    return {"messages": n, "seconds": seconds, "cpu": cpu, "rss_mb": rss_mb(), "bytes": size}


def worker_naive(n: int, port: int) -> dict[str, float]:
    from pulseletter.compose.render import CompiledIssue, Recipient, personalise
    from pulseletter.mail.message import MessageHeaders, build_message, new_message_id

    html, text = issue_bodies()
    compiled = CompiledIssue("s", "", html, text)
    headers = MessageHeaders(
        "The Weekly Pulse",
        "newsletter@pulse.example.com",
        "The Weekly Pulse #1: Grid batteries outgrow the pilot stage",
        "The Weekly Pulse <weekly.pulse.example.com>",
    )
    conn = smtplib.SMTP("127.0.0.1", port, local_hostname="localhost")
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    size = 0
    for i in range(n):
        base = f"https://pulse.example.com/x/tok{i:06d}"
        recipient = Recipient(base + "/u", base + "/p", base + "/w", f"Reader Number {i}")
        html_i, text_i = personalise(compiled, recipient)
        data = build_message(
            headers,
            to_address=f"reader{i:06d}@example.com",
            to_name=recipient.name,
            text=text_i,
            html=html_i,
            message_id=new_message_id(headers.from_address),
            date=datetime.now(UTC),
            unsubscribe_url=recipient.unsubscribe_url,
        )
        size = len(data)
        conn.sendmail(headers.from_address, [f"reader{i:06d}@example.com"], data)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    conn.quit()
    return {"messages": n, "seconds": seconds, "cpu": cpu, "rss_mb": rss_mb(), "bytes": size}


def worker_raw(n: int, port: int) -> dict[str, float]:
    import socket

    from pulseletter.mail.fastpath import MessageTemplate
    from pulseletter.mail.message import MessageHeaders
    from pulseletter.mail.transports import dot_stuff

    html, text = issue_bodies()
    headers = MessageHeaders("P", "newsletter@pulse.example.com", "S", "P <p.example.com>")
    data = MessageTemplate(headers, text, html).render(
        to_address="reader@example.com",
        to_name="Reader",
        message_id="<1@pulse.example.com>",
        date=datetime.now(UTC),
        unsubscribe_url="https://pulse.example.com/u/t",
        values={},
    )
    payload = (
        b"MAIL FROM:<newsletter@pulse.example.com>\r\nRCPT TO:<reader@example.com>\r\nDATA\r\n"
        + dot_stuff(data)
        + b".\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", port))
    reader = sock.makefile("rb")
    reader.readline()
    sock.sendall(b"EHLO localhost\r\n")
    while not reader.readline().startswith(b"250 "):
        pass
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    for _ in range(n):
        sock.sendall(payload)  # one round trip: everything out, then the four replies
        for _ in range(4):
            line = reader.readline()
            if line[:1] not in (b"2", b"3"):
                raise RuntimeError(line)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    sock.sendall(b"QUIT\r\n")
    sock.close()
    return {"messages": n, "seconds": seconds, "cpu": cpu, "rss_mb": rss_mb(), "bytes": len(data)}


# -- orchestration --------------------------------------------------------------------------


def run_worker(kind: str, n: int, port: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            kind,
            "--n",
            str(n),
            "--port",
            str(port),
            "--connections",
            str(connections),
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PULSELETTER_")},
    )
    if out.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def rate(r: dict[str, float]) -> float:
    return r["messages"] / r["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--naive", type=int, default=1000, help="messages for baseline (a)")
    parser.add_argument("--raw", type=int, default=20_000, help="messages for baseline (b)")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--worker", choices=["pulseletter", "naive", "raw"])
    parser.add_argument("--n", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.worker:
        fn = {
            "pulseletter": lambda: worker_pulseletter(args.n, args.port, args.connections),
            "naive": lambda: worker_naive(args.n, args.port),
            "raw": lambda: worker_raw(args.n, args.port),
        }[args.worker]
        print(json.dumps(fn()))
        return

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}")
    with ResponderProcess() as responder:
        naive = run_worker("naive", args.naive, responder.port, 1)
        raw = run_worker("raw", args.raw, responder.port, 1)
        ours = {
            n: run_worker("pulseletter", n, responder.port, args.connections) for n in args.sizes
        }
        expected = args.naive + args.raw + sum(args.sizes)
        time.sleep(0.2)
        assert responder.count == expected, (responder.count, expected)
    print(
        f"message size: {raw['bytes'] / 1024:.1f} KB; responder counted {responder.count} messages"
    )
    print(f"{'':<34}{'msgs/s':>10}{'CPU s/1k':>10}{'peak RSS MB':>13}")
    rows = [(f"(a) naive EmailMessage+smtplib, {args.naive:,}", naive)]
    rows.append((f"(b) raw replay, 1 conn, {args.raw:,}", raw))
    rows += [(f"pulseletter, {n:,} subs, {args.connections} conns", r) for n, r in ours.items()]
    for label, r in rows:
        per_k = r["cpu"] / r["messages"] * 1000
        print(f"{label:<34}{rate(r):>10.0f}{per_k:>10.3f}{r['rss_mb']:>13.1f}")
    for n, r in ours.items():
        print(
            f"pulseletter {n:,}: {rate(r) / rate(naive):.1f}x naive (target >= 10x), "
            f"{rate(r) / rate(raw):.2f}x raw (target >= 0.5x)"
        )
    if len(ours) >= 2:
        sizes = sorted(ours)
        small, large = ours[sizes[0]]["rss_mb"], ours[sizes[-1]]["rss_mb"]
        print(
            f"peak RSS {sizes[0]:,}: {small:.1f} MB, {sizes[-1]:,}: {large:.1f} MB, "
            f"growth {large - small:+.1f} MB (target within 20 MB, and < 150 MB)"
        )


if __name__ == "__main__":
    main()
