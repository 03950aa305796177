"""The exception tree. Library code raises these; the CLI and web app present them.

    PulseletterError                  base: a problem the user can act on (no traceback)
    ├── ConfigError                   config.toml or PULSELETTER_* overrides are invalid
    ├── DatabaseError                 the database is missing, unreachable or not migrated
    │   └── SchemaOutOfDate           migrations are pending: run `pulseletter db upgrade`
    ├── ContentError                  an article, insight or feed could not be read
    ├── RenderError                   a template failed to render or MJML failed to compile
    │   └── LintError                 the rendered issue has blocking lint errors
    ├── SubscriberError               an address or subscriber operation is invalid
    └── IssueStateError               an issue is not in a state that allows the operation

The CLI also reports a locked or unreachable database (SQLAlchemy's OperationalError) and
file-system errors (OSError) in one sentence. Anything else that escapes is a bug and prints
its traceback.
"""

from __future__ import annotations


class PulseletterError(Exception):
    """A problem the user can fix; its message is one readable sentence (or a short list)."""

    exit_code = 1


class ConfigError(PulseletterError):
    """Invalid configuration. Lists every problem with its key path and the file."""

    exit_code = 2

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        n = len(problems)
        super().__init__(f"{n} configuration problem{'s' if n != 1 else ''}{where}:\n{lines}")


class DatabaseError(PulseletterError):
    """The database cannot be used as it is."""


class SchemaOutOfDate(DatabaseError):
    """The schema is older than this version of pulseletter."""


class ContentError(PulseletterError):
    """Content could not be read; the message names the file, line or entry."""


class RenderError(PulseletterError):
    """A template or the MJML compile failed; the message names the template and line."""


class LintError(RenderError):
    """The rendered issue has blocking problems."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the issue has lint errors:\n" + "\n".join(f"  - {p}" for p in problems))


class SubscriberError(PulseletterError):
    """An address or subscriber operation is invalid."""


class IssueStateError(PulseletterError):
    """The issue is in a state that does not allow this operation."""
