"""Preview: the issue exactly as a sample subscriber would receive it, plus its lint report.

``preview_week`` composes without storing anything (an editor previews as often as they like);
an issue that is already sending or sent is shown as stored. The preview server
(``web.preview_server``) serves the same bundle."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from pathlib import Path

from pulseletter.compose.lint import LintReport
from pulseletter.compose.render import CompiledIssue, Recipient, personalise
from pulseletter.content.week import Week
from pulseletter.db.models import Issue
from pulseletter.mail.message import build_message, headers_from_settings, new_message_id
from pulseletter.service.app import App
from pulseletter.service.issues import compiled_from, compose_week, lint_composed, lint_issue

PREVIEW_ADDRESS = "preview@example.com"
PREVIEW_FILES = ("issue.html", "issue.txt", "issue.eml", "lint.txt", "lint.json")


@dataclass(frozen=True)
class PreviewBundle:
    key: str
    subject: str
    html: str
    text: str
    eml: bytes
    headers: list[tuple[str, str]]
    lint: LintReport


def sample_recipient(app: App, issue_key: str) -> Recipient:
    base = app.settings.web.base_url.rstrip("/")
    return Recipient(
        unsubscribe_url=f"{base}/unsubscribe/PREVIEW-TOKEN",
        preferences_url=f"{base}/preferences/PREVIEW-TOKEN",
        web_url=f"{base}/archive/{issue_key}",
        name="Preview Reader",
    )


def build_bundle(
    app: App, key: str, compiled: CompiledIssue, lint: LintReport, recipient: Recipient
) -> PreviewBundle:
    """Personalise for the sample recipient and build the message through the send path."""
    s = app.settings
    html, text = personalise(compiled, recipient)
    eml = build_message(
        headers_from_settings(s, compiled.subject),
        to_address=PREVIEW_ADDRESS,
        to_name=recipient.name,
        text=text,
        html=html,
        message_id=new_message_id(s.newsletter.from_address),
        date=app.clock(),
        unsubscribe_url=recipient.unsubscribe_url,
    )
    parsed = email.message_from_bytes(eml, policy=email.policy.default)
    headers = [(name, str(value)) for name, value in parsed.items()]
    return PreviewBundle(key, compiled.subject, html, text, eml, headers, lint)


def preview_week(app: App, week: Week) -> PreviewBundle:
    """Compose the week (not stored), lint it, and build the sample subscriber's copy."""
    composed = compose_week(app, week)
    recipient = sample_recipient(app, composed.key)
    return build_bundle(
        app, composed.key, composed.compiled, lint_composed(app, composed), recipient
    )


def write_bundle(bundle: PreviewBundle, out: Path, *, json_report: bool = False) -> list[Path]:
    """issue.html, issue.txt, issue.eml and lint.txt (and lint.json when asked)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in PREVIEW_FILES[: 5 if json_report else 4]]
    paths[0].write_text(bundle.html, "utf-8")
    paths[1].write_text(bundle.text, "utf-8")
    paths[2].write_bytes(bundle.eml)
    paths[3].write_text(bundle.lint.render(), "utf-8")
    if json_report:
        paths[4].write_text(bundle.lint.dumps() + "\n", "utf-8")
    return paths


def write_preview_files(app: App, issue: Issue, out: Path, recipient: Recipient) -> list[Path]:
    """A stored issue's files exactly as the recipient would get them, with its lint report."""
    bundle = build_bundle(app, issue.key, compiled_from(issue), lint_issue(app, issue), recipient)
    return write_bundle(bundle, out)
