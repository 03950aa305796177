"""Compile an issue's MIME bytes once; per recipient, splice in the few values that differ.

Why: an ``EmailMessage`` per recipient costs milliseconds; splicing pre-encoded bytes costs
microseconds. Each value is encoded for the place it lands in:

- body: the issue's text and HTML are cut at the placeholders and each static piece is
  quoted-printable encoded on its own, ending in a soft line break, so a value always starts
  on a fresh line and a soft break can never split a placeholder. Each value is QP-encoded the
  same way (HTML-escaped first in the HTML part);
- To: a quoted display name, or RFC 2047 encoded-words for non-ASCII or long names, folded
  at 78 columns; the domain in punycode;
- Date, Message-ID and List-Unsubscribe are ASCII by construction.

``build_message`` in mail/message.py is the slow reference; a property test checks both parse
to the same message.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from email import quoprimime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from pulseletter.compose.render import escape_html, escape_text
from pulseletter.mail.message import ONE_CLICK, MessageHeaders, list_unsubscribe, wire_address
from pulseletter.mail.transports import DotSafe

PLACEHOLDER = re.compile(r"%%PL_([A-Z_]+)%%")
CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
# str.splitlines() breaks on these too; EmailMessage.set_content turns them into line breaks.
_LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_ATEXT_SAFE = re.compile(r"[ -~]*")  # printable ASCII
# A value made only of these needs no escaping in either part, and no QP encoding (no '=',
# no markup, no braces, no '%', no leading dot, no trailing space, one QP line): the usual
# URL or plain name skips the escapers. The same output as the general path, cheaper.
_INERT = r"!#$()*+,\-./0-9:;?@A-Z\[\]^_`a-z|~"
_INERT_FIRST = r"!#$()*+,\-/0-9:;?@A-Z\[\]^_`a-z|~"  # a leading dot would need =2E
_SAFE_VALUE = re.compile(rf"[{_INERT_FIRST}](?:[ {_INERT}]{{0,73}}[{_INERT}])?")


Piece = bytes | str  # bytes: encoded static text; str: the name of a field to splice in


def _fold(name: str, value: str | Address) -> bytes:
    """One header exactly as the stdlib folds it (used once per issue, not per recipient)."""
    msg = EmailMessage(policy=SMTP)
    msg[name] = value
    return msg.as_bytes()[:-2]  # drop the blank line that ends the header block


_PLAIN = re.compile(r"[!-<>-~][ -<>-~]{0,73}[!-<>-~]|[!-<>-~]")  # needs no QP escaping


def _qp(text: str) -> bytes:
    """Quoted-printable for one piece, ending so the next piece starts at column 0."""
    if not text:
        return b""
    if _PLAIN.fullmatch(text) and text[0] != ".":  # the common case: a short URL or name
        return text.encode("ascii") + SOFT_BREAK
    latin = text.encode("utf-8").decode("latin-1")  # body_encode escapes code points < 256
    encoded = quoprimime.body_encode(latin, maxlinelen=76, eol="\r\n").encode("ascii")
    if text.endswith("\n"):
        return encoded if encoded.endswith(CRLF) else encoded + CRLF
    if encoded.startswith(b".") or b"\r\n." in encoded:
        encoded = encoded.replace(b"\r\n.", b"\r\n=2E")
        if encoded.startswith(b"."):
            encoded = b"=2E" + encoded[1:]
    return encoded + SOFT_BREAK


def _normal_body(text: str) -> str:
    """What ``set_content`` does to text: universal newlines, and a final newline."""
    return "\n".join(text.splitlines()) + "\n"


def _compile_part(text: str) -> list[Piece]:
    pieces: list[Piece] = []
    last = 0
    for match in PLACEHOLDER.finditer(text):
        pieces.append(_qp(text[last : match.start()]))
        pieces.append(match.group(1).lower())
        last = match.end()
    pieces.append(_qp(text[last:]))
    return [p for p in pieces if p != b""]


def encoded_words(text: str, first_room: int) -> str:
    """RFC 2047 base64 encoded-words (at most 75 characters each) of whole characters, folded
    onto continuation lines. Words break after whitespace where possible: RFC 2047 readers
    drop the folding between encoded-words, but some (Python's own parser) keep a space there,
    which then only doubles a space the name already had."""
    words: list[str] = []
    chunk = ""
    room = max(first_room, 20)
    for piece in re.findall(r"\S*\s*", text):
        if not piece:
            continue
        if chunk and _fits(chunk + piece, room):
            chunk += piece
            continue
        if chunk:
            words.append(_word(chunk))
            chunk, room = "", 75
        for char in piece:  # a piece longer than one encoded-word is cut between characters
            if chunk and not _fits(chunk + char, room):
                words.append(_word(chunk))
                chunk, room = "", 75
            chunk += char
    if chunk:
        words.append(_word(chunk))
    return "\r\n ".join(words)


def _fits(chunk: str, room: int) -> bool:
    return len(base64.b64encode(chunk.encode())) + 12 <= room


def _word(chunk: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(chunk.encode()).decode("ascii") + "?="


def format_to(name: str, address: str) -> bytes:
    """The To header for one recipient: ``To: "Name" <local@xn--domain>\\r\\n``."""
    if not name:
        return f"To: {address}\r\n".encode()
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    plain = _ATEXT_SAFE.fullmatch(name) and "=?" not in name and name.strip() == name
    if plain and len(quoted) + len(address) + 7 <= 78:
        return f"To: {quoted} <{address}>\r\n".encode()
    words = encoded_words(name, 78 - len("To: "))
    return f"To: {words}\r\n <{address}>\r\n".encode()


def clean_value(value: str) -> str:
    """Line-break characters never belong in a name or link; both builders see the same text."""
    return _LINE_BREAKS.sub(" ", value)


class MessageTemplate:
    """An issue's message as pre-encoded pieces; ``render`` is the per-recipient hot path."""

    def __init__(self, headers: MessageHeaders, text: str, html_body: str) -> None:
        self.headers = headers
        self.boundary = "=_pl_" + secrets.token_hex(12)  # '=_' never occurs in QP output
        self.text = _compile_part(_normal_body(text))
        self.html = _compile_part(_normal_body(html_body))
        self.fields = sorted({p for p in self.text + self.html if isinstance(p, str)})
        head = [_fold("From", Address(headers.from_name, addr_spec=headers.from_address))]
        self._from = head[0]
        rest = []
        if headers.reply_to:
            rest.append(_fold("Reply-To", headers.reply_to))
        rest.append(_fold("Subject", headers.subject))
        self._after_to = b"".join(rest)
        tail = [_fold("List-Id", headers.list_id)]
        self._list_id = tail[0]
        after_unsub = [f"List-Unsubscribe-Post: {ONE_CLICK}\r\n".encode()]
        if headers.feedback_id:
            after_unsub.append(_fold("Feedback-ID", headers.feedback_id))
        after_unsub.append(b"MIME-Version: 1.0\r\n")
        after_unsub.append(
            f'Content-Type: multipart/alternative;\r\n boundary="{self.boundary}"\r\n\r\n'.encode()
        )
        self._after_unsub = b"".join(after_unsub)
        part = (
            'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable'
        )
        self._text_open = f"--{self.boundary}\r\n{part.format('plain')}\r\n\r\n".encode()
        # the CRLF before a boundary belongs to the boundary, not to the part's content
        self._html_open = f"\r\n--{self.boundary}\r\n{part.format('html')}\r\n\r\n".encode()
        self._close = f"\r\n--{self.boundary}--\r\n".encode()
        self._last_date: tuple[datetime | None, str] = (None, "")

    def _date(self, date: datetime) -> str:
        """The Date header value, formatted once per second (it has whole seconds only)."""
        key = date.replace(microsecond=0)
        cached = self._last_date
        if cached[0] != key:
            cached = self._last_date = (key, format_datetime(date))
        return cached[1]

    def render(
        self,
        *,
        to_address: str,
        to_name: str,
        message_id: str,
        date: datetime,
        unsubscribe_url: str,
        values: Mapping[str, str],
    ) -> bytes:
        """The full message bytes for one recipient (CRLF, every line <= 998 bytes)."""
        address, _ = wire_address(to_address)
        unsub = list_unsubscribe(unsubscribe_url, self.headers.unsubscribe_mailto)
        # the same escaping as compose.render.personalise, so both paths give the same parts
        text_values: dict[str, bytes] = {}
        html_values: dict[str, bytes] = {}
        for k, v in values.items():
            if _SAFE_VALUE.fullmatch(v):
                text_values[k] = html_values[k] = v.encode("ascii") + SOFT_BREAK
            else:
                text_values[k] = _qp(escape_text(clean_value(v)))
                html_values[k] = _qp(str(escape_html(clean_value(v))))
        out = [
            self._from,
            format_to(clean_value(to_name).strip(), address),
            self._after_to,
            f"Date: {self._date(date)}\r\nMessage-ID: {message_id}\r\n".encode(),
            self._list_id,
            _unsubscribe_header(unsub),
            self._after_unsub,
            self._text_open,
            *_splice(self.text, text_values),
            self._html_open,
            *_splice(self.html, html_values),
            self._close,
        ]
        return DotSafe(b"".join(out))


def _unsubscribe_header(value: str) -> bytes:
    if len(value) + 18 <= 78 or ", " not in value:
        return f"List-Unsubscribe: {value}\r\n".encode()
    first, rest = value.split(", ", 1)
    return f"List-Unsubscribe: {first},\r\n {rest}\r\n".encode()


def _splice(pieces: Sequence[Piece], values: Mapping[str, bytes]) -> list[bytes]:
    return [p if isinstance(p, bytes) else values.get(p, b"") for p in pieces]
