"""CLI: help on every command, exit codes, init, db upgrade."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pulseletter import __version__
from pulseletter.cli import cli


def all_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        out.append(path)
        if isinstance(command, click.Group):
            out.extend(all_commands(command, path))
    return out


@pytest.mark.parametrize("path", all_commands(), ids=" ".join)
def test_every_command_has_help_with_an_example(runner: CliRunner, path: tuple[str, ...]) -> None:
    result = runner.invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    if not isinstance(command, click.Group):
        assert "Example" in result.output, f"`{' '.join(path)} --help` shows no example"


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_a_user_error_is_one_sentence_without_traceback(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("", "utf-8")
    result = runner.invoke(cli, ["--config", str(tmp_path / "config.toml"), "subscribers", "list"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "pulseletter db upgrade" in result.output
    assert "Traceback" not in result.output


def test_verbose_shows_the_traceback_of_a_user_error(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("", "utf-8")
    args = ["-v", "--config", str(tmp_path / "config.toml"), "subscribers", "list"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1 and "Traceback" in result.output


def test_init_writes_a_config_and_a_database_that_work_at_once(
    runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    result = runner.invoke(cli, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert (target / "config.toml").is_file() and (target / "subscribers.db").is_file()
    config = ["--config", str(target / "config.toml")]
    added = runner.invoke(cli, [*config, "subscribers", "add", "ada@example.com", "--consented"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, [*config, "subscribers", "list"])
    assert "ada@example.com" in listed.output
    again = runner.invoke(cli, ["init", str(target)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_db_upgrade_then_current(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("", "utf-8")
    config = ["--config", str(tmp_path / "config.toml")]
    first = runner.invoke(cli, [*config, "db", "upgrade"])
    assert first.exit_code == 0 and "Upgraded" in first.output
    second = runner.invoke(cli, [*config, "db", "upgrade"])
    assert "up to date" in second.output
    current = runner.invoke(cli, [*config, "db", "current"])
    assert current.output.count("0001") >= 1


def test_python_dash_m_runs_the_cli() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "pulseletter", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and __version__ in result.stdout


def test_every_command_honours_the_fake_clock(runner: CliRunner, tmp_path: Path) -> None:
    assert runner.invoke(cli, ["init", str(tmp_path)]).exit_code == 0
    config = ["--config", str(tmp_path / "config.toml")]
    env = {"PULSELETTER_FAKE_NOW": "2026-06-10T10:00:00+00:00"}
    result = runner.invoke(cli, [*config, "content", "week"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("2026-W23 ")  # the last complete week before 10 June


def test_a_locked_database_and_an_unwritable_folder_are_user_errors(
    runner: CliRunner, tmp_path: Path
) -> None:
    import sqlite3

    assert runner.invoke(cli, ["init", str(tmp_path)]).exit_code == 0
    config = tmp_path / "config.toml"
    env = {"PULSELETTER_DATABASE__BUSY_TIMEOUT_MS": "50"}
    holder = sqlite3.connect(tmp_path / "subscribers.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        args = ["--config", str(config), "subscribers", "add", "ada@example.com"]
        locked = runner.invoke(cli, args, env=env)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert locked.exit_code == 1 and "Traceback" not in locked.output
    assert "the database failed: database is locked" in locked.output

    (tmp_path / "afile").write_text("x", "utf-8")
    args = ["--config", str(config), "content", "export", "--out", str(tmp_path / "afile" / "x")]
    unwritable = runner.invoke(cli, args)
    assert unwritable.exit_code == 1 and "Traceback" not in unwritable.output
    assert unwritable.output.startswith("Error: cannot use")
