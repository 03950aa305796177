"""The lint gate: checks on a compiled issue that decide whether it may be sent.

Errors block a send (``service.issues.check_sendable`` raises on them); warnings are shown to
the editor and never block. MRML does not validate its input, so this runs on the *output*:
a leftover ``<mj-`` or ``{{`` is how a silent compile failure shows up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Any, Literal

from pulseletter.compose.render import PLACEHOLDER_PREFIX, TEXT_WIDTH, CompiledIssue, placeholder

GMAIL_CLIP_BYTES = 102 * 1024
PERSONAL_LINK_ALLOWANCE = 200  # bytes a personalised URL may add over its placeholder
LONG_ISSUE_WORDS = 3000
PREHEADER_MAX = 140
LEFTOVER_MARKERS = ("{{", "{%", "<mj-")

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    level: Level
    code: str
    message: str


@dataclass
class LintReport:
    subject: str
    findings: list[Finding] = field(default_factory=list)
    html_bytes: int = 0
    text_words: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, level: Level, code: str, message: str) -> None:
        self.findings.append(Finding(level, code, message))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "subject": self.subject,
            "html_bytes": self.html_bytes,
            "text_words": self.text_words,
            "errors": [asdict(f) for f in self.errors],
            "warnings": [asdict(f) for f in self.warnings],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False)

    def render(self) -> str:
        """The readable report: a verdict line, then errors and warnings with their codes."""
        verdict = "OK to send" if self.ok else "NOT sendable"
        lines = [
            f"Lint: {verdict}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)",
            f"Subject: {self.subject}",
            f"HTML: {self.html_bytes / 1024:.1f} KB (Gmail clips at 102 KB); "
            f"text: {self.text_words} words",
        ]
        for title, items in (("Errors (block the send)", self.errors), ("Warnings", self.warnings)):
            if items:
                lines.append(f"{title}:")
                lines.extend(f"  [{f.code}] {f.message}" for f in items)
        return "\n".join(lines) + "\n"


class _Collector(HTMLParser):
    """Links and images of the HTML part, with the attributes the checks need."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []  # (href, visible text)
        self.images: list[dict[str, str | None]] = []
        self._open_link: list[int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a":
            self.links.append((a.get("href") or "", ""))
            self._open_link.append(len(self.links) - 1)
        elif tag == "img":
            self.images.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open_link:
            self._open_link.pop()

    def handle_data(self, data: str) -> None:
        if self._open_link:
            i = self._open_link[-1]
            href, text = self.links[i]
            self.links[i] = (href, text + data)


def _link_ok(href: str) -> bool:
    href = href.strip()
    if href.startswith(PLACEHOLDER_PREFIX) and href.endswith("%%"):
        return True  # filled with an absolute URL per recipient
    if href.startswith("mailto:"):
        return "@" in href
    for scheme in ("https://", "http://"):
        if href.lower().startswith(scheme) and len(href) > len(scheme):
            return True
    return False


def lint_compiled(
    compiled: CompiledIssue,
    *,
    empty: bool,
    subject_warn_length: int = 70,
) -> LintReport:
    """Every check, on the compiled issue (placeholders count as the links they become)."""
    html, text = compiled.html, compiled.text
    report = LintReport(compiled.subject)
    personal = html.count(PLACEHOLDER_PREFIX)
    report.html_bytes = len(html.encode("utf-8")) + personal * PERSONAL_LINK_ALLOWANCE
    report.text_words = len(text.split())

    if empty:
        report.add("error", "empty-issue", "the issue has no stories (and is not a quiet week)")
    if report.html_bytes > GMAIL_CLIP_BYTES:
        report.add(
            "error",
            "html-too-large",
            f"the HTML is {report.html_bytes / 1024:.1f} KB with personal links; Gmail clips "
            "messages over 102 KB (fewer stories or insights)",
        )
    for marker in LEFTOVER_MARKERS:
        where = html.find(marker)
        if where >= 0:
            snippet = " ".join(html[max(0, where - 30) : where + 40].split())
            report.add(
                "error",
                "leftover-markup",
                f"leftover template or MJML tag {marker!r} in the HTML near: {snippet!r}",
            )
    parser = _Collector()
    parser.feed(html)
    parser.close()
    unsubscribe = placeholder("unsubscribe_url")
    visible_unsubscribe = [t for h, t in parser.links if h.strip() == unsubscribe and t.strip()]
    if not visible_unsubscribe:
        report.add("error", "no-unsubscribe", "no visible unsubscribe link in the HTML body")
    if unsubscribe not in text:
        report.add("error", "no-unsubscribe-text", "no unsubscribe link in the plain-text part")
    for href, label in parser.links:
        if not _link_ok(href):
            report.add(
                "error",
                "bad-link",
                f"link {href!r} ({' '.join(label.split())[:40]!r}) is not an absolute "
                "http(s) or mailto: URL",
            )
    for img in parser.images:
        src = img.get("src") or "?"
        if not (img.get("alt") or "").strip():
            report.add("error", "image-alt", f"image {src} has no alt text")
        if not img.get("width") or not img.get("height") or img.get("height") == "auto":
            report.add("warning", "image-size", f"image {src} has no width and height")

    if len(compiled.subject) > subject_warn_length:
        report.add(
            "warning",
            "long-subject",
            f"the subject is {len(compiled.subject)} characters; inboxes show about "
            f"{subject_warn_length}",
        )
    if not compiled.subject.strip():
        report.add("error", "no-subject", "the subject is empty")
    if not compiled.preheader.strip():
        report.add("warning", "no-preheader", "no preheader: inboxes will show the first text")
    elif len(compiled.preheader) > PREHEADER_MAX:
        report.add(
            "warning",
            "long-preheader",
            f"the preheader is {len(compiled.preheader)} characters (over {PREHEADER_MAX})",
        )
    if report.text_words > LONG_ISSUE_WORDS:
        report.add(
            "warning",
            "long-issue",
            f"the issue is {report.text_words} words long (over {LONG_ISSUE_WORDS}): "
            "readers skim; consider fewer stories",
        )
    long_lines = [
        n
        for n, line in enumerate(text.splitlines(), 1)
        if len(line) > TEXT_WIDTH and not _bare_url(line)
    ]
    if long_lines:
        report.add(
            "warning",
            "text-width",
            f"plain-text lines over {TEXT_WIDTH} columns: {', '.join(map(str, long_lines[:10]))}",
        )
    return report


def _bare_url(line: str) -> bool:
    word = line.strip()
    return " " not in word and (word.startswith(("http://", "https://")) or "%%PL_" in word)
