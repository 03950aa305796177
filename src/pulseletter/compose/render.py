"""Render an issue once: Jinja2 -> MJML -> HTML, and the plain-text twin from its own template.

Per-recipient fields are rendered as placeholders (``%%PL_NAME%%``) that survive MJML and
escaping, and ``personalise`` fills them in with plain string replacement: no recompile.
"""

from __future__ import annotations

import html
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from mjml import mjml2html

from pulseletter.config import Settings
from pulseletter.content.selection import IssueContent
from pulseletter.errors import RenderError

PERSONAL_FIELDS = ("unsubscribe_url", "preferences_url", "web_url", "name")


def placeholder(name: str) -> str:
    return f"%%PL_{name.upper()}%%"


@dataclass(frozen=True)
class Recipient:
    """What varies per subscriber. Values are raw; ``personalise`` escapes them per part."""

    unsubscribe_url: str
    preferences_url: str
    web_url: str
    name: str = ""


@dataclass(frozen=True)
class CompiledIssue:
    subject: str
    preheader: str
    html: str  # with placeholders
    text: str  # with placeholders


def make_environment(settings: Settings) -> jinja2.Environment:
    """Operator's template folder shadows the packaged one file by file; autoescape MJML/HTML."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in settings.template_dirs()]),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("mjml", "html", "mjml.j2", "html.j2"), default=False
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["wrap"] = wrap_text
    return env


def wrap_text(value: str, width: int = 76, indent: str = "") -> str:
    return textwrap.fill(
        " ".join(str(value).split()),
        width=width,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Render one template; a template error names the file and line."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or exc.name or name
        raise RenderError(f"{where}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name} not found in {_dirs(env)}") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"{name}: {exc.message}") from None


def compile_mjml(source: str, settings: Settings) -> str:
    try:
        return mjml2html(source, fonts=dict(settings.theme.fonts), disable_comments=True)
    except Exception as exc:  # MRML raises a bare exception type with a message
        raise RenderError(f"MJML failed to compile: {exc}") from None


def compile_issue(
    settings: Settings, content: IssueContent, *, number: int, subject: str, preheader: str
) -> CompiledIssue:
    """Render and compile once, with placeholders where recipients differ."""
    env = make_environment(settings)
    links = {name: placeholder(name) for name in PERSONAL_FIELDS}
    links["archive_url"] = settings.web.base_url.rstrip("/") + "/archive"
    context = {
        "newsletter": settings.newsletter,
        "theme": settings.theme,
        "content": content,
        "number": number,
        "subject": subject,
        "preheader": preheader,
        "links": links,
        "recipient": {"name": placeholder("name")},
    }
    mjml_source = render_template(env, "email/issue.mjml.j2", context)
    html_out = compile_mjml(mjml_source, settings)
    text_out = render_template(env, "email/issue.txt.j2", context)
    return CompiledIssue(subject, preheader, html_out, text_out)


def personalise(issue: CompiledIssue, recipient: Recipient) -> tuple[str, str]:
    """Fill the placeholders: HTML-escaped into the HTML part, raw into the text part."""
    html_out, text_out = issue.html, issue.text
    for name in PERSONAL_FIELDS:
        value = getattr(recipient, name)
        marker = placeholder(name)
        html_out = html_out.replace(marker, html.escape(value, quote=True))
        text_out = text_out.replace(marker, value)
    return html_out, text_out


def _dirs(env: jinja2.Environment) -> str:
    loader = env.loader
    paths = getattr(loader, "searchpath", [])
    return ", ".join(str(Path(p)) for p in paths)
