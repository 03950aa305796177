"""The per-recipient fast path must produce the same message as building an EmailMessage
from scratch: same headers, same parts, same decoded text, for any name, address and token."""

from __future__ import annotations

import base64
import string
from datetime import UTC, datetime
from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch_support import issue_html, issue_text, parse
from pulseletter.compose.render import CompiledIssue, Recipient, personalise
from pulseletter.mail.fastpath import MessageTemplate, format_to
from pulseletter.mail.message import MessageHeaders, build_message, wire_address

HEADERS = MessageHeaders(
    from_name="The Weekly Pulse — Ünïcode édition",
    from_address="newsletter@pulse.example.com",
    subject="The Weekly Pulse #7: Grid batteries outgrow the pilot — « quoted » and 日本語 too",
    list_id="The Weekly Pulse <the-weekly-pulse.pulse.example.com>",
    reply_to="editor@pulse.example.com",
    feedback_id="issue7:weekly:pulse",
    unsubscribe_mailto="unsubscribe@pulse.example.com",
)
COMPILED = CompiledIssue("s", "p", issue_html(3), issue_text())
WHEN = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
TEMPLATE = MessageTemplate(HEADERS, COMPILED.text, COMPILED.html)

# no line breaks or other control characters: names with them are rejected at sign-up
printable = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))
names = st.one_of(
    st.text(printable, max_size=120),
    st.sampled_from(['Zoë "Z" O\'Brien', "Ann\\Lee", "=?utf-8?q?x?=", "Jürgen", "  spaced  "]),
    st.text(st.sampled_from('ab "\\,;<>@()é'), max_size=40),
)
local_parts = st.text(string.ascii_letters + string.digits + "+_-", min_size=1, max_size=40)
domains = st.sampled_from(
    ["example.com", "bücher.example", "παράδειγμα.δοκιμή", "例え.jp", "mail.sub.example.org"]
)
tokens = st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=200)
values = st.text(printable, max_size=300)  # anything may land in the body: quotes, unicode


def comparable(data: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    msg = parse(data)
    headers = sorted(
        (k.lower(), str(v).strip()) for k, v in msg.items() if k.lower() != "content-type"
    )
    headers.append(("content-type", msg.get_content_type()))
    parts = [
        (p.get_content_type(), str(p["Content-Transfer-Encoding"]), p.get_content())
        for p in msg.iter_parts()
        if isinstance(p, EmailMessage)
    ]
    return headers, parts


def check_wire(data: bytes, utf8: bool) -> None:
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert b"\r" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    if not utf8:
        assert data.isascii()
    head = data.split(b"\r\n\r\n", 1)[0]
    for name in (b"From", b"To", b"Subject", b"Date", b"Message-ID", b"List-Unsubscribe"):
        assert head.count(b"\r\n" + name + b":") + head.startswith(name + b":") == 1


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, local=local_parts, domain=domains, token=tokens, web=values)
def test_fast_path_parses_to_the_same_message_as_email_message(
    name: str, local: str, domain: str, token: str, web: str
) -> None:
    name = name.strip()  # sign-up stores names stripped (subscribers.addresses)
    address = f"{local}@{domain}"
    unsub = f"https://pulse.example.com/unsubscribe/{token}"
    recipient = Recipient(unsub, f"https://pulse.example.com/preferences/{token}", web, name)
    fields = {
        k: getattr(recipient, k) for k in ("unsubscribe_url", "preferences_url", "web_url", "name")
    }
    fast = TEMPLATE.render(
        to_address=address,
        to_name=name,
        message_id="<1.2.3@pulse.example.com>",
        date=WHEN,
        unsubscribe_url=unsub,
        values=fields,
    )
    html, text = personalise(COMPILED, Recipient(**fields))
    slow = build_message(
        HEADERS,
        to_address=address,
        to_name=name,
        text=text,
        html=html,
        message_id="<1.2.3@pulse.example.com>",
        date=WHEN,
        unsubscribe_url=unsub,
    )
    check_wire(fast, utf8=False)
    fast_headers, fast_parts = comparable(fast)
    slow_headers, slow_parts = comparable(slow)
    assert fast_parts == slow_parts
    # To is held against the input itself: the stdlib reference mangles some names (one that
    # looks like an encoded-word, e.g. '=??Q??=', comes back empty), the fast path must not
    # Runs of spaces inside a phrase are one space to a reader (and to the parser). A word too
    # long for one encoded-word is cut between characters; RFC 2047 readers join the pieces,
    # Python's parser puts a space between them, so there only the characters are compared.
    fast_to = parse(fast)["To"].addresses[0]
    shown = fast_to.display_name
    assert "".join(shown.split()) == "".join(name.split())
    if all(len(base64.b64encode(w.encode())) <= 60 for w in name.split()):
        assert " ".join(shown.split()) == " ".join(name.split())
    assert fast_to.addr_spec == wire_address(address)[0]  # punycoded domain
    assert [h for h in fast_headers if h[0] != "to"] == [h for h in slow_headers if h[0] != "to"]


def test_placeholders_are_never_split_by_soft_line_breaks() -> None:
    long_value = "x" * 500
    out = TEMPLATE.render(
        to_address="a@example.com",
        to_name="A",
        message_id="<m@x>",
        date=WHEN,
        unsubscribe_url="https://e.x/u/t",
        values={
            "unsubscribe_url": "https://e.x/u/t",
            "preferences_url": "p",
            "web_url": long_value,
            "name": "A",
        },
    )
    assert b"%%PL_" not in out
    body = parse(out).get_body(("plain",))
    assert body is not None and long_value in body.get_content()
    assert all(len(line) <= 76 for line in out.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))


def test_lines_starting_with_a_dot_are_encoded_so_no_stuffing_is_needed() -> None:
    out = TEMPLATE.render(
        to_address="a@example.com",
        to_name="",
        message_id="<m@x>",
        date=WHEN,
        unsubscribe_url="https://e.x/u/t",
        values={"unsubscribe_url": ".dot", "preferences_url": "p", "web_url": "w", "name": ""},
    )
    assert b"\r\n." not in out
    assert ".a line starting with a dot" in parse(out).get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_to_header_forms() -> None:
    assert format_to("", "a@b.example") == b"To: a@b.example\r\n"
    assert format_to('Ann "A" Lee', "a@b.example") == b'To: "Ann \\"A\\" Lee" <a@b.example>\r\n'
    folded = format_to("Zoë " * 30, "a@b.example")
    assert all(len(line) <= 78 for line in folded.split(b"\r\n"))
    assert folded.startswith(b"To: =?utf-8?b?")


def test_fast_path_output_needs_no_dot_stuffing_and_says_so() -> None:
    from pulseletter.mail.transports import DotSafe, dot_stuff

    out = TEMPLATE.render(
        to_address="a@example.com",
        to_name=". Dotty",
        message_id="<m@x>",
        date=WHEN,
        unsubscribe_url="https://e.x/u/t",
        values={
            "unsubscribe_url": ".x",
            "preferences_url": ".p",
            "web_url": "." * 200,
            "name": ".",
        },
    )
    assert isinstance(out, DotSafe) and out.endswith(b"\r\n")
    assert not out.startswith(b".") and b"\r\n." not in out
    assert dot_stuff(bytes(out)) == bytes(out)  # the generic scan agrees: nothing to stuff
