"""``pulseletter content``: ingest, export and inspect articles and insights; editor controls."""

from __future__ import annotations

import sys

import click

from pulseletter.cli.common import CliState, pass_state
from pulseletter.service import content as content_service
from pulseletter.service.issues import resolve_week


@click.group()
def content() -> None:
    """Ingest articles and insights, and see what a week's issue would contain."""


@content.command("ingest")
@click.argument("sources", nargs=-1)
@pass_state
def ingest(state: CliState, sources: tuple[str, ...]) -> None:
    """Ingest SOURCES: Markdown folders or files, RSS/Atom feeds (URL or file), JSON Lines.

    Without SOURCES: the configured ones, content.dir and content.feeds. Items are matched
    by URL or GUID (insights by key): re-running is a no-op and an edited item is updated in
    place. Bad items are listed with file, line or entry and the reason; the rest still go
    in. Exits with status 1 if anything was rejected.

    \b
    Example:
      pulseletter content ingest content/ https://example.com/feed.xml extra.jsonl
      pulseletter content ingest
    """
    app = state.app()
    if sources:
        report = content_service.ingest(app, sources)
    else:
        configured = content_service.configured_sources(app)
        if not configured:
            raise click.UsageError("no SOURCE given, and content.dir and content.feeds are empty")
        report = content_service.ingest(app, configured)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for problem in report.rejected:
        click.echo(f"rejected: {problem}", err=True)
    click.echo(report.summary())
    if report.rejected:
        sys.exit(1)


@content.command("export")
@click.option(
    "--kind",
    type=click.Choice(["all", "articles", "insights"]),
    default="all",
    show_default=True,
    help="What to export.",
)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="File (default: stdout).")
@pass_state
def export(state: CliState, kind: str, out_path: str | None) -> None:
    """Write articles and insights as JSON Lines (re-ingesting the file changes nothing).

    \b
    Example:
      pulseletter content export --out backup.jsonl
    """
    app = state.app()
    if out_path:
        with open(out_path, "w", encoding="utf-8") as out:
            count = content_service.export(app, out, kind=kind)
        click.echo(f"{count} lines written to {out_path}", err=True)
    else:
        content_service.export(app, click.get_text_stream("stdout"), kind=kind)


@content.command("week")
@click.option("--week", "week_key", help="ISO week such as 2026-W48 (default: last week).")
@pass_state
def week(state: CliState, week_key: str | None) -> None:
    """List what the week's issue would contain, and why.

    Shows every article published in the week (in or out, with the reason), the related
    insights under each story with their scores, the glossary, and what happens to an empty
    week (content.empty_week).

    \b
    Example:
      pulseletter content week --week 2026-W47
    """
    app = state.app()
    plan = content_service.week_plan(app, resolve_week(app, week_key))
    result = plan.content
    click.echo(f"{plan.week.key} ({plan.week.label}): {len(result.stories)} stories")
    click.echo(f"order: {plan.order}")
    if result.is_empty:
        if plan.decision == "skip":
            action = "no issue is sent (content.empty_week = skip)"
        else:
            action = "a short quiet-week issue is sent (content.empty_week = quiet)"
        click.echo(f"no articles to send for {plan.week.key}: {action}")
    stories = {s.id: s for s in result.stories}
    for candidate in plan.candidates:
        a = candidate.article
        mark = "+" if candidate.included else "-"
        click.echo(f"{mark} {a.title} [{a.section or 'no section'}] ({candidate.reason})")
        story = stories.get(a.id)
        if story is None:
            continue
        for insight in story.insights:
            click.echo(f"    insight {insight.id} ({insight.score:.3f}): {insight.text[:80]}")
        if not story.insights:
            click.echo(f"    no insight scores {plan.min_score} or more")
    terms = ", ".join(g.term for g in result.glossary) or "(none)"
    click.echo(f"glossary: {terms}")


@content.command("related")
@click.argument("article")
@click.option("--all", "show_all", is_flag=True, help="Also list candidates scoring 0.")
@pass_state
def related(state: CliState, article: str, show_all: bool) -> None:
    """Explain the related-insight ranking of ARTICLE (id, URL or GUID).

    Lists every candidate with its score, the parts of the score (lexical TF-IDF cosine, tag
    overlap, recency factor), the terms that matched, and whether it is shown.

    \b
    Example:
      pulseletter content related https://pulse.example.com/articles/grid-batteries
    """
    app = state.app()
    ex = content_service.explain_related(app, article)
    click.echo(f"{ex.article.title} ({ex.article.url})")
    click.echo(
        f"week {ex.week.key}; shows up to {ex.limit} insights scoring {ex.min_score} or more; "
        "score = (0.8 lexical + 0.2 tags) x (0.75 + 0.25 recency)"
    )
    for s in ex.scored:
        if s.score == 0 and not show_all and s.status not in ("pinned", "excluded by editor"):
            continue
        tick = "*" if s.chosen else " "
        click.echo(
            f"{tick} {s.score:.3f}  #{s.insight.id} {s.status}: lexical {s.lexical:.3f}, "
            f"tags {s.tags:.2f}, recency {s.recency:.2f}"
        )
        click.echo(f"      {s.insight.text[:100]}")
        click.echo(f"      matched: {', '.join(s.matched[:10]) or '(no shared terms)'}")


def _flag_command(name: str, help_text: str, example: str, **flags: bool) -> click.Command:
    @click.argument("article")
    @pass_state
    def command(state: CliState, article: str) -> None:
        a = content_service.set_article_flag(state.app(), article, **flags)
        click.echo(f"{a.title}: pinned={a.pinned}, excluded={a.excluded}")

    command.__doc__ = f"{help_text}\n\n    \b\n    Example:\n      {example}\n"
    return content.command(name)(command)


_flag_command(
    "pin",
    "Pin ARTICLE (id, URL or GUID) as the lead story of its week.",
    "pulseletter content pin https://pulse.example.com/articles/grid-batteries",
    pinned=True,
)
_flag_command(
    "unpin",
    "Remove the lead pin from ARTICLE.",
    "pulseletter content unpin 12",
    pinned=False,
)
_flag_command(
    "exclude",
    "Keep ARTICLE out of every issue.",
    "pulseletter content exclude https://pulse.example.com/articles/old-news",
    excluded=True,
)
_flag_command(
    "include",
    "Undo `content exclude` for ARTICLE.",
    "pulseletter content include 12",
    excluded=False,
)


@content.command("insight")
@click.argument("action", type=click.Choice(["pin", "exclude", "clear"]))
@click.argument("article")
@click.argument("insight")
@pass_state
def insight(state: CliState, action: str, article: str, insight: str) -> None:
    """Pin, exclude or clear one INSIGHT (id, key or source URL) for ARTICLE.

    A pinned insight is shown under the article whatever its score; an excluded one never.

    \b
    Example:
      pulseletter content insight pin 3 https://riff.example.com/insights/storage-prices
      pulseletter content insight clear 3 17
    """
    a = content_service.set_insight_control(state.app(), article, insight, action)
    click.echo(
        f"{a.title}: pinned insights {a.pinned_insight_ids or '[]'}, "
        f"excluded insights {a.excluded_insight_ids or '[]'}"
    )


COMMANDS = [content]
