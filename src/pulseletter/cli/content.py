"""``pulseletter content``: ingest and inspect articles and insights."""

from __future__ import annotations

import click

from pulseletter.cli.common import CliState, pass_state
from pulseletter.service import content as content_service
from pulseletter.service.issues import resolve_week


@click.group()
def content() -> None:
    """Ingest articles and insights, and see what a week's issue would contain."""


@content.command("ingest")
@click.argument("sources", nargs=-1, required=True)
@pass_state
def ingest(state: CliState, sources: tuple[str, ...]) -> None:
    """Ingest SOURCES (folders of Markdown files with YAML front matter).

    Re-running is a no-op; edited items are updated in place. Bad items are listed with the
    reason and the rest still go in.

    \b
    Example:
      pulseletter content ingest content/
    """
    report = content_service.ingest(state.app(), sources)
    for problem in report.rejected:
        click.echo(f"rejected: {problem}", err=True)
    click.echo(report.summary())


@content.command("week")
@click.option("--week", "week_key", help="ISO week such as 2026-W48 (default: last week).")
@pass_state
def week(state: CliState, week_key: str | None) -> None:
    """List what the week's issue would contain.

    \b
    Example:
      pulseletter content week --week 2026-W47
    """
    app = state.app()
    w = resolve_week(app, week_key)
    result = content_service.week_content(app, w)
    click.echo(f"{w.key} ({w.label}): {len(result.stories)} stories")
    for n, story in enumerate(result.stories, 1):
        why = "pinned lead" if story.pinned else f"published {story.published[:16]}"
        click.echo(f"{n}. [{story.section}] {story.title} ({why})")
        for insight in story.insights:
            click.echo(f"     + ({insight.score:.2f}) {insight.text[:90]}")
    click.echo(f"glossary: {', '.join(g.term for g in result.glossary) or '(none)'}")


COMMANDS = [content]
