"""The fast path's shortcut for inert values gives exactly the general path's bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pulseletter.compose.render import escape_html, escape_text
from pulseletter.mail.fastpath import _SAFE_VALUE, SOFT_BREAK, _qp, clean_value


def general(value: str) -> tuple[bytes, bytes]:
    return _qp(escape_text(clean_value(value))), _qp(str(escape_html(clean_value(value))))


@settings(max_examples=2000)
@given(st.text(alphabet=st.characters(min_codepoint=9, max_codepoint=127), max_size=90))
def test_inert_values_encode_as_themselves(value: str) -> None:
    if _SAFE_VALUE.fullmatch(value):
        shortcut = value.encode("ascii") + SOFT_BREAK
        assert general(value) == (shortcut, shortcut)


def test_typical_links_and_names_take_the_shortcut() -> None:
    for value in ("https://pulse.example.com/u/tok000123abc", "Reader Number 5", "a.b"):
        assert _SAFE_VALUE.fullmatch(value)
    refused = (".leading", "trailing ", "a=b", "x&y", 'say "hi"', "{x}", "%%PL_NAME%%", "x" * 76)
    for value in refused:
        assert not _SAFE_VALUE.fullmatch(value)
