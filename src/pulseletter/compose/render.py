"""Render an issue once: Jinja2 -> MJML -> HTML, and the plain-text twin from its own template.

Per-recipient fields are rendered as placeholders (``%%PL_NAME%%``) that survive MJML and
escaping, and ``personalise`` fills them in with plain string replacement: no recompile.

Escaping (see docs/compose.md): every value printed by an ``.mjml``/``.html`` template is
HTML-escaped, and ``{``, ``}`` become character references so that text such as ``{{ x }}``
in an article can never look like a leftover template tag. In ``.txt`` templates HTML entities
would be wrong, so values are "text-escaped" instead: control characters are removed. In both,
a placeholder-looking token in content is defused, so an article cannot pull a subscriber's
unsubscribe link into its own text. Jinja never re-evaluates printed values as template code.
"""

from __future__ import annotations

import functools
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from markupsafe import Markup, escape
from mjml import mjml2html

from pulseletter.config import Settings
from pulseletter.content.selection import IssueContent
from pulseletter.errors import RenderError

PERSONAL_FIELDS = ("unsubscribe_url", "preferences_url", "web_url", "name")
PLACEHOLDER_PREFIX = "%%PL_"
TEXT_WIDTH = 78
ISSUE_MJML = "email/issue.mjml.j2"
ISSUE_TEXT = "email/issue.txt.j2"
_PLACEHOLDER = re.compile(r"%%PL_([A-Z_]+)%%")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TEMPLATE_SUFFIXES = (".j2", ".mjml", ".html", ".txt", ".css")


def placeholder(name: str) -> str:
    return f"%%PL_{name.upper()}%%"


class Placeholder(Markup):
    """A placeholder token: trusted by both escapers, replaced per recipient later."""


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


def _autoescape(name: str | None) -> bool:
    """HTML escaping for .mjml and .html templates (select_autoescape misses .mjml)."""
    if not name:
        return False
    base = name[:-3] if name.endswith(".j2") else name
    return base.endswith((".mjml", ".html", ".htm", ".xml"))


def escape_html(value: Any) -> Markup:
    """HTML-escape, and make braces and placeholder prefixes inert (same for every path)."""
    if isinstance(value, Markup):  # already escaped (e.g. the output of |join)
        value = Markup(_CONTROL.sub("", value))
    else:
        value = _CONTROL.sub("", str(value))
    out = str(escape(value))
    out = out.replace("{", "&#123;").replace("}", "&#125;")
    return Markup(out.replace(PLACEHOLDER_PREFIX, "%&#37;PL_"))


def escape_text(value: Any) -> str:
    """Plain-text escaping: no entities; control characters out, placeholder prefixes defused."""
    if isinstance(value, Markup):
        value = value.unescape()  # never print HTML entities into plain text
    text = _CONTROL.sub("", str(value))
    return text.replace(PLACEHOLDER_PREFIX, "%%\u2060PL_")


@jinja2.pass_eval_context
def _finalize(eval_ctx: jinja2.nodes.EvalContext, value: Any) -> Any:
    """Escape every printed value for the kind of template printing it."""
    if isinstance(value, Placeholder):
        return value
    if value is None:
        value = ""
    return escape_html(value) if eval_ctx.autoescape else escape_text(value)


def make_environment(settings: Settings) -> jinja2.Environment:
    """Operator's template folder shadows the packaged one file by file; escaping on everywhere.

    Environments are kept, so templates are parsed once; the loader checks modification times,
    and a file added to or removed from the override folder makes a new environment, so edits
    are picked up at the next render."""
    dirs = settings.template_dirs()
    overrides = tuple(item for d in dirs[:-1] for item in _snapshot(d))
    return _environment(tuple(str(p) for p in dirs), overrides)


def _snapshot(folder: Path) -> list[tuple[str, int]]:
    """Files of an override folder with their mtimes: part of the environment's cache key."""
    out = []
    for path in folder.rglob("*") if folder.is_dir() else ():
        try:
            out.append((str(path), path.stat().st_mtime_ns))
        except OSError:  # removed while we looked
            continue
    return sorted(out)


@functools.lru_cache(maxsize=8)
def _environment(
    dirs: tuple[str, ...], overrides: tuple[tuple[str, int], ...]
) -> jinja2.Environment:
    del overrides  # only part of the cache key
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(list(dirs)),
        autoescape=_autoescape,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["wrap"] = wrap_text
    env.filters["para"] = paragraph
    env.filters["link"] = text_link
    return env


def wrap_text(value: str, width: int = TEXT_WIDTH - 2, indent: str = "") -> str:
    """Fill one paragraph; words (and URLs) are never broken, so a long URL stays whole."""
    return paragraph(value, prefix=indent, indent=indent, width=width)


def paragraph(value: str, prefix: str = "", indent: str = "", width: int = TEXT_WIDTH) -> str:
    """``prefix`` + text, filled to ``width`` with a hanging ``indent``; words (and URLs) are
    never broken."""
    return textwrap.fill(
        " ".join(str(value).split()),
        width=width,
        initial_indent=prefix,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def text_link(url: str, label: str, indent: str = "") -> str:
    """``label: url`` on one line when it fits in 78 columns, else the URL on its own line."""
    one_line = f"{indent}{label}: {url}"
    if len(one_line) <= TEXT_WIDTH and PLACEHOLDER_PREFIX not in str(url):
        return one_line
    return f"{indent}{label}:\n{indent}{url}"


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Render one template; any template error names the file and the line."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or exc.name or name
        raise RenderError(f"{where}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template {exc.name} not found in {_dirs(env)}") from None
    except RenderError:
        raise
    except Exception as exc:  # UndefinedError, TypeError in a filter, ...: find the template line
        where = _template_frame(exc.__traceback__) or f"{name}:?"
        message = getattr(exc, "message", None) or str(exc)
        raise RenderError(f"{where}: {type(exc).__name__}: {message}") from None


def _template_frame(tb: TracebackType | None) -> str | None:
    """Jinja rewrites tracebacks so template frames carry the template's file and line."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(_TEMPLATE_SUFFIXES) and not filename.endswith(".py"):
            found = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def compile_mjml(source: str, settings: Settings, template: str = ISSUE_MJML) -> str:
    """MJML -> HTML with MRML; fonts={} unless configured so no Google Fonts link sneaks in."""
    try:
        return mjml2html(source, fonts=dict(settings.theme.fonts), disable_comments=True)
    except Exception as exc:  # MRML raises a bare exception type with a message
        line = _mjml_line(source, str(exc))
        where = f" (line {line} of the MJML generated from {template})" if line else ""
        raise RenderError(f"MJML failed to compile{where}: {exc}") from None


def _mjml_line(source: str, message: str) -> int | None:
    m = re.search(r"position (\d+)|(\d+)\.\.\d+", message)
    if not m:
        return None
    offset = int(m.group(1) or m.group(2))
    return source.count("\n", 0, offset) + 1


def issue_context(
    settings: Settings,
    content: IssueContent,
    *,
    number: int,
    subject: str,
    preheader: str,
    web: bool = False,
) -> dict[str, Any]:
    """What every issue template sees. Personal links are placeholders (none on the web page)."""
    base = settings.web.base_url.rstrip("/")
    links: dict[str, Any] = {name: Placeholder(placeholder(name)) for name in PERSONAL_FIELDS}
    links["archive_url"] = f"{base}/archive"
    links["subscribe_url"] = f"{base}/subscribe"
    return {
        "newsletter": settings.newsletter,
        "theme": settings.theme,
        "issue_settings": settings.issue,
        "content": content,
        "lead": content.lead,
        "others": content.stories[1:],
        "quiet": content.is_empty,
        "number": number,
        "subject": subject,
        "preheader": preheader,
        "links": links,
        "web": web,
        "recipient": {"name": links["name"]},
    }


def render_sources(env: jinja2.Environment, context: dict[str, Any]) -> tuple[str, str]:
    """(MJML, plain text) from the templates, before compiling."""
    return render_template(env, ISSUE_MJML, context), render_template(env, ISSUE_TEXT, context)


def compile_issue(
    settings: Settings, content: IssueContent, *, number: int, subject: str, preheader: str
) -> CompiledIssue:
    """Render and compile once, with placeholders where recipients differ."""
    env = make_environment(settings)
    context = issue_context(settings, content, number=number, subject=subject, preheader=preheader)
    mjml_source, text_out = render_sources(env, context)
    return CompiledIssue(subject, preheader, compile_mjml(mjml_source, settings), text_out)


def compile_web_page(
    settings: Settings,
    content: IssueContent,
    *,
    number: int,
    subject: str,
    preheader: str,
    web_url: str,
) -> str:
    """The issue as a public web page: same templates, no personal links, a subscribe link."""
    env = make_environment(settings)
    context = issue_context(
        settings, content, number=number, subject=subject, preheader=preheader, web=True
    )
    page = compile_mjml(render_template(env, ISSUE_MJML, context), settings)
    return page.replace(placeholder("web_url"), escape_html(web_url)).replace(
        placeholder("name"), ""
    )


def personalise(issue: CompiledIssue, recipient: Recipient) -> tuple[str, str]:
    """Fill the placeholders: HTML-escaped into the HTML part, text-escaped into the text part.

    Each part is split at its placeholders once (cached) and joined per recipient; an unknown
    ``%%PL_X%%`` token is left as it is."""
    html_values = {n.upper(): escape_html(getattr(recipient, n)) for n in PERSONAL_FIELDS}
    text_values = {n.upper(): escape_text(getattr(recipient, n)) for n in PERSONAL_FIELDS}
    return _fill(issue.html, html_values), _fill(issue.text, text_values)


@functools.lru_cache(maxsize=32)
def _split(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(literal pieces, placeholder names) of a compiled part: the per-issue work, done once."""
    parts = _PLACEHOLDER.split(template)
    return tuple(parts[0::2]), tuple(parts[1::2])


def _fill(template: str, values: dict[str, str]) -> str:
    literals, names = _split(template)
    out = [literals[0]]
    for name, literal in zip(names, literals[1:], strict=True):
        out.append(values.get(name, f"%%PL_{name}%%"))
        out.append(literal)
    return "".join(out)


def render_for(
    settings: Settings,
    content: IssueContent,
    recipient: Recipient,
    *,
    number: int,
    subject: str,
    preheader: str,
) -> tuple[str, str]:
    """A full render with the recipient's values in the templates, no placeholders: the slow
    path that ``personalise`` must match exactly (a test checks it; the bench times both)."""
    env = make_environment(settings)
    context = issue_context(settings, content, number=number, subject=subject, preheader=preheader)
    for name in PERSONAL_FIELDS:
        context["links"][name] = getattr(recipient, name)
    context["recipient"] = {"name": recipient.name}
    mjml_source, text_out = render_sources(env, context)
    return compile_mjml(mjml_source, settings), text_out


def _dirs(env: jinja2.Environment) -> str:
    loader = env.loader
    paths = getattr(loader, "searchpath", [])
    return ", ".join(str(Path(p)) for p in paths)
