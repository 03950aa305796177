"""Render benchmark: compile once per issue, personalise per recipient.

Measures, in one run on the sample content (last week's issue):
  - the time to compile one issue (Jinja2 -> MJML -> HTML, plus the text part);
  - the per-recipient cost of ``personalise`` against a full per-recipient render
    (templates rendered with the recipient's values, MJML compiled again), and their ratio;
  - the output size (HTML, text, and a complete message).
Target: personalisation at least 50x cheaper than a full render per recipient.

    .venv/bin/python bench/render.py [--recipients 2000] [--full 40]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pulseletter.compose.render import Recipient, compile_issue, personalise, render_for
from pulseletter.config import load_settings
from pulseletter.db.migrate import upgrade
from pulseletter.mail.message import build_message, headers_from_settings, new_message_id
from pulseletter.service.app import App
from pulseletter.service.content import ingest, week_content
from pulseletter.service.demo import copy_sample_content
from pulseletter.service.issues import resolve_week

TARGET = 50.0


def per_call(fn: Callable[[int], object], n: int) -> float:
    """Median seconds per call over 5 rounds of n/5 calls (ratios hold, absolute times drift)."""
    rounds = []
    per_round = max(1, n // 5)
    for r in range(5):
        start = time.perf_counter()
        for i in range(per_round):
            fn(r * per_round + i)
        rounds.append((time.perf_counter() - start) / per_round)
    return statistics.median(rounds)


def recipient(i: int) -> Recipient:
    token = f"{i:08d}" + "x" * 35
    base = "https://pulse.example.com"
    return Recipient(
        f"{base}/unsubscribe/{token}",
        f"{base}/preferences/{token}",
        f"{base}/archive/2026-W47",
        f"Reader {i}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=2000, help="personalise calls")
    parser.add_argument("--full", type=int, default=40, help="full per-recipient renders")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "config.toml").write_text(
            '[database]\nurl = "sqlite:///bench.db"\n[security]\nsecret = "bench"\n', "utf-8"
        )
        settings = load_settings(folder / "config.toml", environ={})
        now = datetime.now(UTC)
        copy_sample_content(folder / "content", now)
        app = App.open(settings, check_schema=False, clock=lambda: now)
        upgrade(app.db.engine)
        ingest(app, [folder / "content"])
        content = week_content(app, resolve_week(app, None))
        app.close()

    kw = {"number": 1, "subject": "The Weekly Pulse #1", "preheader": "Bench"}
    compiled = compile_issue(settings, content, **kw)  # warm up (template cache is per env)
    compile_s = per_call(lambda i: compile_issue(settings, content, **kw), 50)
    fast_s = per_call(lambda i: personalise(compiled, recipient(i)), args.recipients)
    full_s = per_call(lambda i: render_for(settings, content, recipient(i), **kw), args.full)
    headers = headers_from_settings(settings, compiled.subject)

    def message(i: int) -> bytes:
        r = recipient(i)
        html, text = personalise(compiled, r)
        return build_message(
            headers,
            to_address=f"reader{i}@example.com",
            to_name=r.name,
            text=text,
            html=html,
            message_id=new_message_id(settings.newsletter.from_address),
            date=now,
            unsubscribe_url=r.unsubscribe_url,
        )

    message_s = per_call(message, 200)
    html, text = personalise(compiled, recipient(1))
    eml = message(1)
    ratio = full_s / fast_s

    print(
        f"issue: {content.week_key}, {len(content.stories)} stories, "
        f"{len(content.glossary)} glossary terms"
    )
    print(f"compile one issue (Jinja2 + MJML + text):   {compile_s * 1e3:8.2f} ms")
    print(f"full render per recipient (baseline):       {full_s * 1e3:8.2f} ms")
    print(f"personalise per recipient:                  {fast_s * 1e6:8.2f} µs")
    print(f"  ratio full / personalise:                 {ratio:8.0f}x  (target >= {TARGET:.0f}x)")
    print(f"personalise + build MIME message:           {message_s * 1e3:8.2f} ms")
    print(
        f"output: HTML {len(html.encode()) / 1024:.1f} KB, text {len(text.encode()) / 1024:.1f} KB,"
        f" message {len(eml) / 1024:.1f} KB (Gmail clips HTML over 102 KB)"
    )
    print("PASS" if ratio >= TARGET else "FAIL", f"personalisation is {ratio:.0f}x cheaper")
    raise SystemExit(0 if ratio >= TARGET else 1)


if __name__ == "__main__":
    main()
