"""The subject line from the configured pattern, and the preheader (config or lead TL;DR)."""

from __future__ import annotations

import string

from pulseletter.content.selection import IssueContent
from pulseletter.errors import ConfigError

SUBJECT_FIELDS = ("newsletter", "number", "lead_title", "week")
QUIET_TITLE = "A quiet week"


def make_subject(pattern: str, *, newsletter: str, number: int, content: IssueContent) -> str:
    """``issue.subject`` filled in; one line, whitespace collapsed (it becomes a header)."""
    values = {
        "newsletter": newsletter,
        "number": number,
        "lead_title": content.lead.title if content.lead else QUIET_TITLE,
        "week": content.week_key,
    }
    for _, name, _, _ in string.Formatter().parse(pattern):
        if name is not None and name.split(".")[0].split("[")[0] not in values:
            known = ", ".join("{" + f + "}" for f in SUBJECT_FIELDS)
            raise ConfigError([f"issue.subject: unknown field {{{name}}} (known: {known})"])
    try:
        subject = pattern.format(**values)
    except (ValueError, IndexError, AttributeError) as exc:
        raise ConfigError([f"issue.subject: {pattern!r} is not a valid pattern ({exc})"]) from None
    return " ".join(subject.split())


def make_preheader(configured: str, content: IssueContent, limit: int = 110) -> str:
    """``issue.preheader`` if set, else the lead's TL;DR cut on a word boundary with an ellipsis."""
    text = " ".join((configured or (content.lead.tldr if content.lead else "")).split())
    return cut_on_word(text, limit)


def cut_on_word(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if " " in head and not text[limit - 1].isspace():
        head = head.rsplit(" ", 1)[0]
    return head.rstrip(" ,;:.-–—") + "…"
