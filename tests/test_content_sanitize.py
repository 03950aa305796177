"""Sanitising and TL;DR derivation, including properties checked on generated input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pulseletter.content.sanitize import clean_html, derive_tldr, html_to_text

FRAGMENTS = [
    "<p>",
    "</p>",
    "<script>alert(1)</script>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="/rel" onclick="evil()">rel</a>',
    '<img src="https://t.example/pixel.gif" width="1" height="1">',
    '<img src="pic.jpg" alt="a &quot;b&quot;" width="640">',
    '<div style="color:red" onmouseover="x()">',
    "</div>",
    "<b>bold</b>",
    "&amp; &lt; &#8211;",
    "<iframe src='https://evil.example'></iframe>",
    '<svg onload="x()"><circle/></svg>',
    "plain words here",
    "<!-- comment -->",
    '<a href="data:text/html;base64,PHNjcmlwdD4=">d</a>',
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12))
def test_clean_html_removes_active_content_and_is_idempotent(parts: list[str]) -> None:
    cleaned = clean_html("".join(parts), "https://site.example/post/")
    lowered = cleaned.lower()
    for banned in ("<script", "javascript:", "onclick", "onmouseover", "onload", "<iframe"):
        assert banned not in lowered
    assert "style=" not in lowered and "data:text" not in lowered
    assert "pixel.gif" not in cleaned
    assert 'href="/rel"' not in cleaned  # relative links are made absolute
    assert clean_html(cleaned, "https://site.example/post/") == cleaned  # safe to re-import


WORDS = st.text(alphabet="abcdefghij", min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(WORDS, st.sampled_from([" ", ". ", ", ", "! "])), min_size=1),
    st.integers(min_value=20, max_value=300),
)
def test_derived_tldr_is_short_and_never_cuts_a_word(
    pieces: list[tuple[str, str]], limit: int
) -> None:
    text = "".join(w + sep for w, sep in pieces).strip()
    tldr = derive_tldr(text, limit)
    assert len(tldr) <= limit
    body = tldr.removesuffix("…")
    assert text.startswith(body)
    rest = text[len(body) :]
    assert rest == "" or not rest[0].isalnum() or not body  # stopped on a boundary


def test_html_to_text_keeps_words_apart_and_decodes_entities() -> None:
    assert html_to_text("<p>One</p><p>Two &amp; <em>three</em>.</p>") == "One Two & three."
