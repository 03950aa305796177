"""Preview files: what a subscriber would receive, written to a folder."""

from __future__ import annotations

from pathlib import Path

from pulseletter.compose.render import Recipient, personalise
from pulseletter.db.models import Issue
from pulseletter.mail.message import build_message, headers_from_settings, new_message_id
from pulseletter.service.app import App
from pulseletter.service.issues import compiled_from

PREVIEW_ADDRESS = "preview@example.com"


def sample_recipient(app: App, issue_key: str) -> Recipient:
    base = app.settings.web.base_url.rstrip("/")
    return Recipient(
        unsubscribe_url=f"{base}/unsubscribe/PREVIEW-TOKEN",
        preferences_url=f"{base}/preferences/PREVIEW-TOKEN",
        web_url=f"{base}/archive/{issue_key}",
        name="Preview Reader",
    )


def write_preview_files(app: App, issue: Issue, out: Path, recipient: Recipient) -> list[Path]:
    """``issue.html``, ``issue.txt`` and ``issue.eml`` exactly as the recipient would get them."""
    s = app.settings
    html, text = personalise(compiled_from(issue), recipient)
    headers = headers_from_settings(s, issue.subject)
    eml = build_message(
        headers,
        to_address=PREVIEW_ADDRESS,
        to_name=recipient.name,
        text=text,
        html=html,
        message_id=new_message_id(s.newsletter.from_address),
        date=app.clock(),
        unsubscribe_url=recipient.unsubscribe_url,
    )
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "issue.html", out / "issue.txt", out / "issue.eml"]
    paths[0].write_text(html, "utf-8")
    paths[1].write_text(text, "utf-8")
    paths[2].write_bytes(eml)
    return paths
