"""The systemd unit is sandboxed as documented, and the operations guide matches the CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from pulseletter.cli import cli
from pulseletter.config import ScheduleSettings

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "pulseletter.service"
GUIDE = ROOT / "docs" / "operations.md"


def directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text("utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_the_unit_is_sandboxed_and_restarts_on_failure() -> None:
    d = directives()
    assert d["DynamicUser"] == ["yes"]
    assert d["ProtectSystem"] == ["strict"]
    assert d["StateDirectory"] == ["pulseletter"]
    assert d["Restart"] == ["on-failure"]
    assert d["NoNewPrivileges"] == ["yes"]
    assert d["EnvironmentFile"][0].endswith("/etc/pulseletter/pulseletter.env")
    assert any("serve --log-json" in v for v in d["ExecStart"])
    stop = int(d["TimeoutStopSec"][0])
    assert stop > ScheduleSettings().shutdown_timeout  # systemd must not kill a clean stop


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
def test_systemd_accepts_the_unit() -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, check=False
    )
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line  # /opt/pulseletter is not here
    ]
    assert complaints == []


def test_every_serve_option_in_the_guide_exists() -> None:
    help_text = CliRunner().invoke(cli, ["serve", "--help"]).output
    table = GUIDE.read_text("utf-8").split("| option | meaning |")[1].split("\n\n")[0]
    options = re.findall(r"`(--[a-z-]+)", table)
    assert len(options) >= 5
    for option in options:
        assert option in help_text, option


def test_every_schedule_key_is_documented_in_the_guide() -> None:
    guide = GUIDE.read_text("utf-8")
    for key in ScheduleSettings.__dataclass_fields__:
        assert f"| `{key}` |" in guide, key
