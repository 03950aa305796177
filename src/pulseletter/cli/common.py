"""What every command shares: lazily loaded settings and app, and output helpers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import click

from pulseletter.config import Settings, load_settings
from pulseletter.service.app import App
from pulseletter.service.clock import clock_from_env


@dataclass
class CliState:
    config_path: str | None = None
    verbose: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _app: App | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def app(self) -> App:
        """The service wiring; refuses with a clear message if migrations are pending.

        ``PULSELETTER_FAKE_NOW`` / ``PULSELETTER_CLOCK_OFFSET`` shift the clock of every
        command alike (for trying a send time; see docs/operations.md)."""
        if self._app is None:
            self._app = App.open(self.settings())
            fake = clock_from_env()
            if fake is not None:
                self._app.clock = fake
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


pass_state = click.make_pass_decorator(CliState)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
