"""Configuration: loading, lookup order, environment overrides, secrets, and every error case."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pulseletter.cli import cli
from pulseletter.config import find_config, load_settings
from pulseletter.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_the_repository_sample_config_is_valid_and_documented() -> None:
    settings = load_settings(ROOT / "config.toml", environ={})
    assert settings.newsletter.name
    assert settings.transport.kind == "file"  # the safe default never sends mail
    text = (ROOT / "config.toml").read_text("utf-8")
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            assert "#" in line, f"undocumented key in config.toml: {line}"


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    sub = tmp_path / "site"
    sub.mkdir()
    (sub / "config.toml").write_text('[templates]\ndir = "tpl"\n', "utf-8")
    settings = load_settings(sub / "config.toml", environ={})
    assert settings.database_url == f"sqlite:///{sub / 'subscribers.db'}"
    assert settings.template_dirs()[0] == sub / "tpl"


def test_environment_overrides_every_type(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[web]\nport = 8000\n", "utf-8")
    env = {
        "PULSELETTER_WEB__PORT": "9000",
        "PULSELETTER_SMTP__PASSWORD": "hunter2",
        "PULSELETTER_ISSUE__REQUIRE_APPROVAL": "true",
        "PULSELETTER_CONTENT__FEEDS": '["https://a.example/feed", "b.xml"]',
        "PULSELETTER_NEWSLETTER__NAME": "42",  # a string field stays a string
    }
    settings = load_settings(tmp_path / "config.toml", environ=env)
    assert settings.web.port == 9000
    assert settings.smtp_password == "hunter2"
    assert settings.issue.require_approval is True
    assert settings.content.feeds == ["https://a.example/feed", "b.xml"]
    assert settings.newsletter.name == "42"


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "smtp.pass").write_text("s3cret\n", "utf-8")
    (tmp_path / "config.toml").write_text('[smtp]\npassword_file = "smtp.pass"\n', "utf-8")
    assert load_settings(tmp_path / "config.toml", environ={}).smtp_password == "s3cret"


def test_missing_secret_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[security]\nsecret_file = "nope"\n', "utf-8")
    settings = load_settings(tmp_path / "config.toml", environ={})
    with pytest.raises(ConfigError, match="cannot read secret file"):
        _ = settings.signing_secret


BAD = """\
[newsletter]
from_address = "not an address"

[web]
port = 70000

[schedule]
timezone = "Mars/Olympus_Mons"
"""


def test_every_problem_is_listed_with_its_key_and_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(BAD, "utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "bad.toml", environ={})
    message = str(info.value)
    assert "3 configuration problems" in message and "bad.toml" in message
    assert "newsletter.from_address" in message
    assert "web.port" in message
    assert "schedule.timezone" in message


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[web]\nbogus = 1\n", "web.bogus: unknown key"),
        ("[nonsense]\nx = 1\n", "nonsense: unknown section"),
        ('[web]\nport = "eighty"\n', "web.port: expected an integer"),
        ("[issue]\nrequire_approval = 1\n", "issue.require_approval: expected true or false"),
        ('[transport]\nkind = "pigeon"\n', "transport.kind: must be one of file, smtp"),
        ('[schedule]\nsend = "someday"\n', "schedule.send"),
        ('[web]\nbase_url = "example.com"\n', "web.base_url"),
        ("[web\n", "not valid TOML"),
    ],
)
def test_each_kind_of_mistake(tmp_path: Path, toml: str, expected: str) -> None:
    (tmp_path / "c.toml").write_text(toml, "utf-8")
    with pytest.raises(ConfigError, match=r"c\.toml") as info:
        load_settings(tmp_path / "c.toml", environ={})
    assert expected in str(info.value)


def test_a_bad_environment_override_is_named(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("", "utf-8")
    with pytest.raises(ConfigError, match=r"web\.port: expected an integer"):
        load_settings(tmp_path / "c.toml", environ={"PULSELETTER_WEB__PORT": "x"})


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PULSELETTER_CONFIG", raising=False)
    assert find_config() is None
    (tmp_path / "config.toml").write_text("", "utf-8")
    assert find_config() == Path("config.toml")
    monkeypatch.setenv("PULSELETTER_CONFIG", "from-env.toml")
    assert find_config() == Path("from-env.toml")
    assert find_config("explicit.toml") == Path("explicit.toml")


def test_config_check_exits_2_without_traceback_and_names_all_problems(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(BAD, "utf-8")
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "bad.toml"), "config", "check"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    for key in ("newsletter.from_address", "web.port", "schedule.timezone"):
        assert key in result.output


def test_config_check_masks_secrets(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("", "utf-8")
    result = CliRunner(env={"PULSELETTER_SMTP__PASSWORD": "hunter2"}).invoke(
        cli, ["--config", str(tmp_path / "c.toml"), "config", "check"]
    )
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert 'password = "********"' in result.output


def test_config_check_prints_valid_toml_including_relays(tmp_path: Path) -> None:
    import tomllib

    (tmp_path / "c.toml").write_text(
        '[web]\nport = 9000\n\n[[relays]]\nname = "a"\nhost = "127.0.0.1"\nport = 2525\n', "utf-8"
    )
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "c.toml"), "config", "check"])
    assert result.exit_code == 0, result.output
    printed = tomllib.loads(result.output)
    assert printed["web"]["port"] == 9000
    assert [(r["name"], r["port"]) for r in printed["relays"]] == [("a", 2525)]


def test_a_delivery_lease_shorter_than_an_smtp_attempt_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        "[sending]\nlease_seconds = 300\n\n[smtp]\ndata_timeout = 600\n", "utf-8"
    )
    with pytest.raises(ConfigError, match=r"sending\.lease_seconds: 300 s must exceed"):
        load_settings(tmp_path / "c.toml", environ={})
