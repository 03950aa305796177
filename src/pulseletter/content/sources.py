"""Turn one SOURCE argument into items: a Markdown folder or file, a feed (URL or file), or
JSON Lines. The kind is chosen by what the source is, never guessed from its content alone:

- ``http://`` / ``https://``  -> a feed, fetched with httpx
- a folder                   -> every ``*.md`` file under it
- ``*.md`` / ``*.markdown``  -> one Markdown file with front matter
- ``*.jsonl`` / ``*.ndjson`` -> JSON Lines
- any other file             -> a feed (RSS/Atom), e.g. ``*.xml``, ``*.rss``, ``*.atom``
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from pulseletter.content.feeds import FeedOutput, fetch_feed, read_feed
from pulseletter.content.jsonl import read_jsonl
from pulseletter.content.markdown_folder import read_file, read_folder
from pulseletter.errors import ContentError

MARKDOWN = {".md", ".markdown"}
JSONL = {".jsonl", ".ndjson"}


def read_source(
    source: str, *, now: datetime, timeout: float = 20.0, tldr_limit: int = 280
) -> Iterator[FeedOutput]:
    """Items, rejected entries and warnings of one source.

    Raises ContentError when the source as a whole cannot be read (missing, unreachable,
    not a feed); the caller reports it and moves on to the next source.
    """
    if source.startswith(("http://", "https://")):
        data, final_url = fetch_feed(source, timeout)
        yield from read_feed(
            data, source, base_url=final_url, fetched_at=now, tldr_limit=tldr_limit
        )
        return
    path = Path(source)
    if path.is_dir():
        yield from read_folder(path)
    elif not path.is_file():
        raise ContentError(f"{source}: no such file or folder")
    elif path.suffix.lower() in MARKDOWN:
        try:
            yield read_file(path)
        except ContentError as exc:
            yield exc
    elif path.suffix.lower() in JSONL:
        yield from read_jsonl(path)
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ContentError(f"{source}: cannot read ({exc.strerror})") from None
        yield from read_feed(data, source, fetched_at=now, tldr_limit=tldr_limit)
