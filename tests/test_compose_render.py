"""Rendering: templates and partials, theming, escaping, plain text, personalisation, web page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compose_support import HOSTILE, hostile_content, sample_app
from pulseletter.compose.lint import lint_compiled
from pulseletter.compose.render import (
    PERSONAL_FIELDS,
    Recipient,
    compile_issue,
    compile_web_page,
    make_environment,
    personalise,
    placeholder,
    render_for,
    render_template,
)
from pulseletter.compose.subject import cut_on_word, make_preheader, make_subject
from pulseletter.config import Settings
from pulseletter.errors import ConfigError, RenderError
from pulseletter.service.issues import compose_week, prepare_issue, resolve_week, web_version

RTL = "שלום עולם"


def compile_sample(settings: Settings, **kw: object):  # type: ignore[no-untyped-def]
    content = hostile_content(**kw)  # type: ignore[arg-type]
    return compile_issue(settings, content, number=7, subject="S #7", preheader="pre")


def test_sample_issue_has_every_part_and_the_client_essentials(make_settings, clock) -> None:
    with sample_app(make_settings, clock) as app:
        composed = compose_week(app, resolve_week(app, None))
    html, text = composed.compiled.html, composed.compiled.text
    content = composed.content
    assert len(content.stories) >= 2 and content.glossary
    for needle in (
        "The Weekly Pulse",
        "Issue #1",
        content.week_label,
        "View in browser",
        "LEAD STORY",
        "TL;DR",
        "Real-World Impact",
        "RELATED INSIGHTS",
        "Read more",
        "TECHNICAL BRIEFING",
        "Unsubscribe",
        "Preferences",
        "/archive",
        "1 Example Street",
        "You get this email because",
    ):
        assert needle in html, needle
    for story in content.stories:
        assert story.url in html and story.url in text
        for area in story.impact_areas:
            assert area in html
    assert '<meta name="color-scheme" content="light dark"' in html
    assert '<meta name="supported-color-schemes" content="light dark"' in html
    assert "prefers-color-scheme: dark" in html
    assert "max-width:600px" in html and 'width="600"' in html
    assert "fonts.googleapis" not in html and "<link" not in html
    for img in re.findall(r"<img[^>]*>", html):
        assert re.search(r'\balt="[^"]+"', img) and 'width="' in img and 'height="' in img
    assert placeholder("unsubscribe_url") in html and placeholder("web_url") in html


def test_theme_colours_logo_and_fonts_come_from_config(make_settings) -> None:
    settings = make_settings(
        theme={
            "brand_color": "#123456",
            "accent_color": "#abcdef",
            "logo_url": "https://cdn.example.com/logo.png",
            "logo_width": 120,
            "logo_height": 30,
            "fonts": {"Inter": "https://fonts.example.com/inter.css"},
            "font_family": "Inter, Arial, sans-serif",
        },
        newsletter={"name": "Signal Weekly", "postal_address": "PO Box 9, Nowhere"},
    )
    html = compile_sample(settings).html
    assert "#123456" in html and "#abcdef" in html and "Inter, Arial" in html
    assert "https://fonts.example.com/inter.css" in html  # configured fonts are linked
    logo = re.search(r'<img[^>]*src="https://cdn.example.com/logo.png"[^>]*>', html)
    assert logo and 'alt="Signal Weekly"' in logo.group(0) and 'height="30"' in logo.group(0)
    assert "PO Box 9, Nowhere" in html


def test_a_theme_colour_that_is_not_hex_is_a_config_error(make_settings) -> None:
    with pytest.raises(ConfigError, match=r"theme.brand_color: .* hex colour"):
        make_settings(theme={"brand_color": "red;background:url(x)"})


def test_hostile_text_in_every_field_is_escaped_and_compiles(make_settings) -> None:
    settings = make_settings(newsletter={"name": HOSTILE, "postal_address": HOSTILE})
    compiled = compile_sample(settings)
    html, text = compiled.html, compiled.text
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "{{" not in html and "{%" not in html and "&#123;&#123; 7*7 &#125;&#125;" in html
    assert "49" not in html  # never evaluated
    assert 'href="https://news.example.com/a?x=1&amp;y=&#34;q&#34;"' in html
    assert "🎉" in html and RTL in html and "مرحبا" in html
    # plain text: the text as written, no HTML entities, never evaluated
    assert HOSTILE.splitlines()[0][:20] in text.replace("\n", " ")
    assert "&lt;" not in text and "&amp;" not in text and "49" not in text
    assert "🎉" in text and RTL in text
    report = lint_compiled(compiled, empty=False)
    assert report.ok, report.render()


def test_content_cannot_smuggle_a_placeholder(make_settings) -> None:
    sneaky = "Click %%PL_UNSUBSCRIBE_URL%% now"
    compiled = compile_sample(make_settings(), text=sneaky)
    html, text = personalise(compiled, Recipient("https://u.example/UNSUB", "p", "w", "n"))
    assert html.count("https://u.example/UNSUB") == 1  # only the footer link
    assert text.count("https://u.example/UNSUB") == 1


def test_plain_text_is_wrapped_and_has_every_section(make_settings, clock) -> None:
    with sample_app(make_settings, clock) as app:
        composed = compose_week(app, resolve_week(app, None))
    _, text = personalise(
        composed.compiled,
        Recipient(
            "https://pulse.example.com/unsubscribe/" + "t" * 43,
            "https://pulse.example.com/preferences/" + "t" * 43,
            "https://pulse.example.com/archive/2026-W47",
        ),
    )
    for line in text.splitlines():
        bare_url = " " not in line.strip() and line.strip().startswith("http")
        assert len(line) <= 78 or bare_url, line
    for section in ("LEAD STORY", "TL;DR:", "Real-World Impact", "Related insights:"):
        assert section in text
    assert "TECHNICAL BRIEFING" in text and "Read more" in text
    assert "Unsubscribe (one click):\nhttps://pulse.example.com/unsubscribe/" in text
    assert "<" not in text.replace("<-", "")  # no markup leaked into the text part


@pytest.mark.parametrize(
    "recipient",
    [
        Recipient(
            "https://pulse.example.com/unsubscribe/abc?x=1&y=2",
            "https://pulse.example.com/preferences/abc",
            "https://pulse.example.com/archive/2026-W47",
            "Ada",
        ),
        Recipient('https://e.example/u?"q"&<b>', "https://e.example/p?a=b&c", "https://e.x/w", RTL),
    ],
)
def test_personalised_output_equals_a_full_render_for_that_recipient(
    make_settings, clock, recipient: Recipient
) -> None:
    with sample_app(make_settings, clock) as app:
        composed = compose_week(app, resolve_week(app, None))
        settings = app.settings
    kw = {"number": 3, "subject": "Subj", "preheader": "Pre"}
    compiled = compile_issue(settings, composed.content, **kw)  # type: ignore[arg-type]
    fast = personalise(compiled, recipient)
    slow = render_for(settings, composed.content, recipient, **kw)  # type: ignore[arg-type]
    assert fast == slow
    for name in PERSONAL_FIELDS:
        assert placeholder(name) not in fast[0] and placeholder(name) not in fast[1]


def test_templates_dir_shadows_packaged_files_one_by_one(make_settings, tmp_path: Path) -> None:
    override = tmp_path / "mytemplates" / "email" / "partials"
    override.mkdir(parents=True)
    (override / "footer.mjml.j2").write_text(
        '<mj-section><mj-column><mj-text>OPERATOR FOOTER {{ newsletter.name }} <a href="'
        '{{ links.unsubscribe_url }}">Leave</a></mj-text></mj-column></mj-section>\n',
        "utf-8",
    )
    settings = make_settings(templates={"dir": str(tmp_path / "mytemplates")})
    html = compile_sample(settings).html
    assert "OPERATOR FOOTER" in html and "Leave" in html
    assert "You get this email because" not in html  # the packaged footer is shadowed
    assert "View in browser" in html  # ... and the packaged header is still used
    text = compile_sample(settings).text
    assert "You get this email because" in text  # the text footer was not overridden


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("<mj-section>\n{% if %}\n</mj-section>\n", 2, "Expected an expression"),
        ("<mj-section>\n\n{{ no_such_thing.attribute }}\n</mj-section>\n", 3, "undefined"),
    ],
)
def test_a_broken_template_names_its_file_and_line(
    make_settings, tmp_path: Path, source: str, line: int, words: str
) -> None:
    override = tmp_path / "t" / "email" / "partials"
    override.mkdir(parents=True)
    broken = override / "glossary.mjml.j2"
    broken.write_text(source, "utf-8")
    settings = make_settings(templates={"dir": str(tmp_path / "t")})
    with pytest.raises(RenderError) as caught:
        compile_sample(settings)
    message = str(caught.value)
    assert f"{broken}:{line}" in message and words in message


def test_autoescape_is_on_for_mjml_html_and_text_templates(make_settings, tmp_path: Path) -> None:
    folder = tmp_path / "t" / "email"
    folder.mkdir(parents=True)
    for name in ("probe.mjml.j2", "probe.html.j2", "probe.mjml", "probe.html", "probe.txt.j2"):
        (folder / name).write_text("[{{ v }}]", "utf-8")
    env = make_environment(make_settings(templates={"dir": str(tmp_path / "t")}))
    value = {"v": '<b a="1">&{{x}}</b>\x1b[31m%%PL_NAME%%'}
    for name in ("probe.mjml.j2", "probe.html.j2", "probe.mjml", "probe.html"):
        out = render_template(env, f"email/{name}", value)
        escaped = "&lt;b a=&#34;1&#34;&gt;&amp;&#123;&#123;x&#125;&#125;&lt;/b&gt;"
        assert out == f"[{escaped}[31m%&#37;PL_NAME%%]"
    text = render_template(env, "email/probe.txt.j2", value)
    assert text == '[<b a="1">&{{x}}</b>[31m%%\u2060PL_NAME%%]'  # no entities, no ESC


def test_subject_pattern_and_preheader(make_settings, clock) -> None:
    with sample_app(make_settings, clock) as app:
        content = compose_week(app, resolve_week(app, None)).content
    subject = make_subject(
        "{newsletter} #{number} ({week}): {lead_title}", newsletter="N", number=4, content=content
    )
    assert subject == f"N #4 (2026-W47): {content.lead.title}"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"issue.subject: unknown field \{lead title\}"):
        make_subject("{lead title}", newsletter="N", number=1, content=content)
    pre = make_preheader("", content, 60)
    assert len(pre) <= 60 and pre.endswith("…")
    assert content.lead.tldr.startswith(pre[:-1])  # type: ignore[union-attr]
    assert content.lead.tldr[len(pre) - 1] == " "  # type: ignore[union-attr]  (word boundary)
    assert make_preheader("Set by the editor", content) == "Set by the editor"
    assert cut_on_word("alpha beta gamma", 12) == "alpha beta…"
    assert cut_on_word("short", 12) == "short"


def test_web_version_is_filled_at_prepare_time_without_personal_links(make_settings, clock) -> None:
    with sample_app(make_settings, clock) as app:
        issue = prepare_issue(app, resolve_week(app, None))
        assert issue.web_html and web_version(app, issue) == issue.web_html
        page = issue.web_html
        assert "%%PL_" not in page and "/unsubscribe" not in page
        assert "http://127.0.0.1:8025/subscribe" in page and "web version" in page
        assert "View in browser" not in page and issue.subject in page
        issue.web_html = ""  # an issue stored before web pages existed is rendered on demand
        assert web_version(app, issue) == page


def test_compile_web_page_escapes_the_url(make_settings) -> None:
    page = compile_web_page(
        make_settings(),
        hostile_content(),
        number=1,
        subject="S",
        preheader="P",
        web_url='https://e.example/a?b="c"',
    )
    assert "<script>" not in page and "%%PL_" not in page
