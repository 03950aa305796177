"""Read subscriber CSV files: find the delimiter and the header, map the columns, check rows.

Understood layouts (header names are matched case-insensitively):

- pulseletter's own export: ``email,name,status,…,attributes``
- Mailchimp: ``"Email Address","First Name","Last Name",…``
- listmonk: ``email,name,attributes`` (attributes is a JSON object)
- no header at all: ``address[,name]``

Rows are read one at a time (the file is never held in memory) and each comes back either as
an ``ImportRow`` or as a ``Rejected`` with its line number and a reason.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from pulseletter.errors import SubscriberError
from pulseletter.subscribers.addresses import AddressChecker
from pulseletter.subscribers.lifecycle import SUPPRESSING

EMAIL_COLUMNS = ("email", "email address", "e-mail", "e-mail address", "email_address", "mail")
NAME_COLUMNS = ("name", "full name", "display name")
FIRST_COLUMNS = ("first name", "first_name", "firstname", "given name")
LAST_COLUMNS = ("last name", "last_name", "lastname", "surname", "family name")
IMPORT_STATUSES = ("pending", "active", *SUPPRESSING)
EXPORT_COLUMNS = (
    "email",
    "name",
    "status",
    "status_reason",
    "source",
    "created_at",
    "status_changed_at",
    "confirmed_at",
    "paused_until",
    "needs_smtputf8",
    "attributes",
)
SAMPLE_BYTES = 64 * 1024
_SURROGATE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class CsvLayout:
    kind: str  # pulseletter, mailchimp, listmonk, plain
    delimiter: str
    has_header: bool
    width: int  # fields per row the header promises
    email: int
    name: int | None = None
    first: int | None = None
    last: int | None = None
    attributes: int | None = None
    status: int | None = None
    ignored: list[str] = field(default_factory=list)


class ImportRow(NamedTuple):
    line: int
    email: str
    key: str
    name: str
    status: str  # as found in the file ("" if none); the importer decides the final one
    attributes: dict[str, Any]
    needs_smtputf8: bool


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    fields: list[str]


def detect_layout(sample: str, source: str) -> CsvLayout:
    """Guess the delimiter and read the header from the first 64 KB of the file."""
    lines = [ln for ln in sample.splitlines() if ln.strip()]
    if not lines:
        raise SubscriberError(f"{source}: the file is empty")
    try:
        delimiter = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    first = next(csv.reader([lines[0]], delimiter=delimiter))
    names = [h.strip().strip("\ufeff").casefold() for h in first]

    def col(options: tuple[str, ...]) -> int | None:
        return next((i for i, n in enumerate(names) if n in options), None)

    email = col(EMAIL_COLUMNS)
    if email is None:
        if first and "@" in first[0]:
            return CsvLayout("plain", delimiter, False, 2, 0, name=1)
        raise SubscriberError(
            f"{source}: line 1: no email column in the header ({', '.join(first)}); "
            f"expected one of: {', '.join(EMAIL_COLUMNS)}"
        )
    layout: dict[str, Any] = {
        "email": email,
        "name": col(NAME_COLUMNS),
        "first": col(FIRST_COLUMNS),
        "last": col(LAST_COLUMNS),
        "attributes": col(("attributes", "attribs")),
        "status": col(("status",)),
    }
    used = {i for i in layout.values() if i is not None}
    ignored = [first[i] for i in range(len(first)) if i not in used]
    if names[email] == "email address":
        kind = "mailchimp"
    elif layout["status"] is not None and "created_at" in names:
        kind = "pulseletter"
    elif layout["attributes"] is not None:
        kind = "listmonk"
    else:
        kind = "plain"
    return CsvLayout(kind, delimiter, True, len(first), ignored=ignored, **layout)


def open_text(stream: BinaryIO, encoding: str) -> io.TextIOWrapper:
    """Undecodable bytes are kept as surrogates so the row is rejected, not the whole file."""
    if encoding.replace("-", "").lower() in ("utf8", "utf8sig"):
        encoding = "utf-8-sig"  # a BOM (Excel) is not part of the first column's name
    codecs.lookup(encoding)
    return io.TextIOWrapper(stream, encoding=encoding, errors="surrogateescape", newline="")


def read_rows(
    path: Path,
    layout: CsvLayout,
    checker: AddressChecker,
    encoding: str = "utf-8",
    position: list[int] | None = None,
) -> Iterator[ImportRow | Rejected]:
    """Stream the file's data rows as ImportRow or Rejected, in file order.

    ``position[0]`` follows the bytes read so far (for a progress bar)."""
    with path.open("rb") as raw, open_text(raw, encoding) as text:
        reader = csv.reader(text, delimiter=layout.delimiter)
        if layout.has_header:
            next(reader, None)
        for fields in reader:
            line = reader.line_num
            if position is not None and line % 1024 == 0:
                position[0] = raw.tell()
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # a blank line is not a row
            yield parse_row(line, fields, layout, checker)


def parse_row(
    line: int, fields: list[str], layout: CsvLayout, checker: AddressChecker
) -> ImportRow | Rejected:
    if len(fields) > layout.width:
        return Rejected(
            line,
            f"{len(fields)} fields where the header has {layout.width} "
            "(an unquoted delimiter inside a value?)",
            fields,
        )
    if layout.email >= len(fields) or not fields[layout.email].strip():
        return Rejected(line, "no email address", fields)
    if not fields[layout.email].isascii() and _SURROGATE.search("".join(fields)):
        return Rejected(line, "not valid text in the file's encoding (use --encoding)", fields)
    try:
        address = checker.check(fields[layout.email])
    except SubscriberError as exc:
        return Rejected(line, str(exc), fields)
    n = len(fields)
    name = fields[layout.name].strip() if layout.name is not None and layout.name < n else ""
    if not name and (layout.first is not None or layout.last is not None):
        name = _first_last(fields, layout)
    if not name.isascii() and _SURROGATE.search("".join(fields)):
        return Rejected(line, "not valid text in the file's encoding (use --encoding)", fields)
    if "\r" in name or "\n" in name:
        return Rejected(line, "the name contains a line break", fields)
    if len(name) > 200:
        return Rejected(line, "the name is longer than 200 characters", fields)
    attributes: dict[str, Any] = {}
    if layout.attributes is not None and layout.attributes < len(fields):
        raw_attrs = fields[layout.attributes].strip()
        if not raw_attrs.isascii() and _SURROGATE.search(raw_attrs):
            return Rejected(line, "not valid text in the file's encoding (use --encoding)", fields)
        if raw_attrs:
            try:
                attributes = json.loads(raw_attrs)
            except ValueError:
                attributes = None  # type: ignore[assignment]
            if not isinstance(attributes, dict):
                return Rejected(line, "attributes is not a JSON object", fields)
    status = ""
    if layout.status is not None and layout.status < len(fields):
        status = fields[layout.status].strip().lower()
        if status and status not in IMPORT_STATUSES:
            return Rejected(line, f"unknown status {status!r}", fields)
    return ImportRow(
        line, address.email, address.key, name, status, attributes, address.needs_smtputf8
    )


def _first_last(fields: list[str], layout: CsvLayout) -> str:
    parts = (
        fields[i].strip() if i is not None and i < len(fields) else ""
        for i in (layout.first, layout.last)
    )
    return " ".join(p for p in parts if p)
