"""Load config.toml plus PULSELETTER_* environment overrides into frozen, typed settings.

Lookup order: ``--config PATH``, then ``$PULSELETTER_CONFIG``, then ``./config.toml``; with
none of them the embedded defaults apply. Every problem found is collected and raised as one
``ConfigError`` naming the key path and the file, so a user fixes them all in one go.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email

from pulseletter.errors import ConfigError

ENV_PREFIX = "PULSELETTER_"
Validator = Callable[[Any], str | None]


def _secret(default: str = "") -> Any:
    return field(default=default, metadata={"secret": True})


def _check(fn: Validator, default: Any) -> Any:
    return field(default=default, metadata={"check": fn})


def _choice(*allowed: str) -> Validator:
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"


def _port(v: int) -> str | None:
    return None if 1 <= v <= 65535 else "must be a port number between 1 and 65535"


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def _timezone(v: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {v!r}"
    return None


def _address(v: str) -> str | None:
    if not v:
        return None
    try:
        validate_email(v, check_deliverability=False)
    except EmailNotValidError as exc:
        return f"{v!r} is not an email address ({exc})"
    return None


def _http_url(v: str) -> str | None:
    if v.startswith(("http://", "https://")) and "://" in v and len(v.split("://", 1)[1]) > 0:
        return None
    return f"{v!r} must be an absolute http(s) URL"


def _color(v: str) -> str | None:
    """Theme colours go into CSS and MJML attributes: only #rgb / #rrggbb is accepted."""
    import re

    if re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", v):
        return None
    return f"{v!r} must be a hex colour such as #1f3a5f"


def _weekday_time(v: str) -> str | None:
    from pulseletter.schedule_spec import parse_send_spec

    try:
        parse_send_spec(v)
    except ValueError as exc:
        return str(exc)
    return None


def _optional_time(v: str) -> str | None:
    return None if not v else _weekday_time(v)


def _address_list(v: list[str]) -> str | None:
    bad = [m for m in (_address(a) for a in v) if m]
    return "; ".join(bad) or None


@dataclass(frozen=True)
class NewsletterSettings:
    """Who the newsletter is and who it comes from."""

    name: str = "The Weekly Pulse"
    from_name: str = "The Weekly Pulse"
    from_address: str = _check(_address, "newsletter@pulse.example.com")
    reply_to: str = _check(_address, "")
    postal_address: str = "The Weekly Pulse, 1 Example Street, Exampletown"
    language: str = "en"


@dataclass(frozen=True)
class ThemeSettings:
    """Colours, logo and fonts of the email."""

    logo_url: str = ""
    logo_width: int = _check(_positive, 160)
    logo_height: int = _check(_positive, 40)
    brand_color: str = _check(_color, "#1f3a5f")
    accent_color: str = _check(_color, "#b8401f")
    text_color: str = _check(_color, "#1b1b1b")
    muted_color: str = _check(_color, "#555555")
    surface_color: str = _check(_color, "#ffffff")
    background_color: str = _check(_color, "#f4f5f7")
    dark_background_color: str = _check(_color, "#121417")
    dark_surface_color: str = _check(_color, "#1d2127")
    dark_text_color: str = _check(_color, "#e6e8eb")
    dark_accent_color: str = _check(_color, "#ff9a76")
    dark_link_color: str = _check(_color, "#9cc4ff")
    fonts: dict[str, str] = field(default_factory=dict)
    font_family: str = "Helvetica, Arial, sans-serif"


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///subscribers.db"
    busy_timeout_ms: int = _check(_non_negative, 5000)


@dataclass(frozen=True)
class TemplateSettings:
    dir: str = ""


@dataclass(frozen=True)
class ContentSettings:
    dir: str = "content"
    feeds: list[str] = field(default_factory=list)
    week_start: str = _check(_choice("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "mon")
    empty_week: str = _check(_choice("skip", "quiet"), "skip")
    fetch_timeout: float = _check(_positive, 20.0)
    tldr_max_chars: int = _check(_positive, 280)


@dataclass(frozen=True)
class IssueSettings:
    subject: str = "{newsletter} #{number}: {lead_title}"
    preheader: str = ""
    preheader_max: int = _check(_positive, 110)
    subject_warn_length: int = _check(_positive, 70)
    quiet_message: str = (
        "A quiet week: nothing new made the cut. We will be back next week with more."
    )
    max_articles: int = _check(_positive, 6)
    insights_per_article: int = _check(_non_negative, 3)
    min_related_score: float = _check(_non_negative, 0.2)
    require_approval: bool = False
    editors: list[str] = field(default_factory=list, metadata={"check": _address_list})


@dataclass(frozen=True)
class TransportSettings:
    kind: str = _check(_choice("file", "smtp"), "file")
    file_dir: str = "outbox"


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = _check(_port, 25)
    security: str = _check(_choice("starttls", "ssl", "none"), "starttls")
    username: str = ""
    password: str = _secret()
    password_file: str = ""
    local_hostname: str = "localhost"
    timeout: float = _check(_positive, 30.0)
    data_timeout: float = _check(_positive, 600.0)


@dataclass(frozen=True)
class SendingSettings:
    connections: int = _check(_positive, 2)
    messages_per_connection: int = _check(_positive, 100)
    rate_per_second: float = _check(_non_negative, 0.0)
    rate_per_hour: int = _check(_non_negative, 0)
    rate_per_day: int = _check(_non_negative, 0)
    max_attempts: int = _check(_positive, 5)
    retry_base_seconds: float = _check(_positive, 300.0)
    retry_max_seconds: float = _check(_positive, 6 * 3600.0)
    throttle_seconds: float = _check(_non_negative, 120.0)
    bounce_limit: int = _check(_non_negative, 1)
    breaker_data_failures: int = _check(_positive, 5)
    breaker_connect_failures: int = _check(_positive, 5)
    resend_unknown: bool = False
    batch_size: int = _check(_positive, 200)
    lease_seconds: float = _check(_positive, 900.0)
    progress_seconds: float = _check(_positive, 10.0)
    list_id: str = ""
    feedback_id: str = ""
    unsubscribe_mailto: str = _check(_address, "")


@dataclass(frozen=True)
class RelaySettings:
    """One SMTP relay of the pool (``[[relays]]``); limits apply to this relay alone."""

    name: str = ""
    host: str = "127.0.0.1"
    port: int = _check(_port, 25)
    security: str = _check(_choice("starttls", "ssl", "none"), "starttls")
    username: str = ""
    password_file: str = ""
    password_env: str = ""
    local_hostname: str = "localhost"
    timeout: float = _check(_positive, 30.0)
    data_timeout: float = _check(_positive, 600.0)
    weight: float = _check(_positive, 1.0)
    connections: int = _check(_non_negative, 0)
    rate_per_second: float = _check(_non_negative, 0.0)
    rate_per_hour: int = _check(_non_negative, 0)
    rate_per_day: int = _check(_non_negative, 0)


@dataclass(frozen=True)
class DkimSettings:
    domain: str = ""
    selector: str = ""
    key: str = _secret()
    key_file: str = ""


@dataclass(frozen=True)
class SecuritySettings:
    secret: str = _secret()
    secret_file: str = ""
    confirm_token_hours: int = _check(_positive, 72)
    csrf_token_minutes: int = _check(_positive, 120)


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = _check(_port, 8025)
    base_url: str = _check(_http_url, "http://127.0.0.1:8025")
    subscribe_per_ip_per_hour: int = _check(_positive, 20)
    trust_forwarded_for: bool = False


@dataclass(frozen=True)
class ScheduleSettings:
    timezone: str = _check(_timezone, "UTC")
    send: str = _check(_weekday_time, "mon 08:00")
    prepare: str = _check(_optional_time, "")
    ingest_interval_minutes: int = _check(_non_negative, 0)
    grace_hours: float = _check(_non_negative, 12.0)
    shutdown_timeout: float = _check(_positive, 30.0)
    lease_seconds: float = _check(_positive, 60.0)


@dataclass(frozen=True)
class SubscriberSettings:
    check_deliverability: bool = False
    confirmations_per_address_per_day: int = _check(_positive, 3)
    confirmation_rate_per_second: float = _check(_non_negative, 5.0)


SECTIONS: dict[str, type] = {
    "newsletter": NewsletterSettings,
    "theme": ThemeSettings,
    "database": DatabaseSettings,
    "templates": TemplateSettings,
    "content": ContentSettings,
    "issue": IssueSettings,
    "transport": TransportSettings,
    "smtp": SmtpSettings,
    "sending": SendingSettings,
    "dkim": DkimSettings,
    "security": SecuritySettings,
    "web": WebSettings,
    "schedule": ScheduleSettings,
    "subscribers": SubscriberSettings,
}


@dataclass(frozen=True)
class Settings:
    """The effective configuration. ``base_dir`` anchors every relative path."""

    newsletter: NewsletterSettings = field(default_factory=NewsletterSettings)
    theme: ThemeSettings = field(default_factory=ThemeSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    templates: TemplateSettings = field(default_factory=TemplateSettings)
    content: ContentSettings = field(default_factory=ContentSettings)
    issue: IssueSettings = field(default_factory=IssueSettings)
    transport: TransportSettings = field(default_factory=TransportSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    sending: SendingSettings = field(default_factory=SendingSettings)
    dkim: DkimSettings = field(default_factory=DkimSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    web: WebSettings = field(default_factory=WebSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    subscribers: SubscriberSettings = field(default_factory=SubscriberSettings)
    relays: tuple[RelaySettings, ...] = ()
    base_dir: Path = field(default_factory=Path.cwd)
    source: str = "(embedded defaults)"

    def path(self, value: str) -> Path:
        """Resolve a path from the config relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    @property
    def database_url(self) -> str:
        """The database URL with a relative SQLite path anchored at the config folder."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
            return prefix + str(self.path(url[len(prefix) :]))
        return url

    @property
    def timezone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.schedule.timezone)

    @property
    def smtp_password(self) -> str:
        return self.smtp.password or _read_secret_file(self, self.smtp.password_file)

    @property
    def signing_secret(self) -> str:
        return self.security.secret or _read_secret_file(self, self.security.secret_file)

    @property
    def dkim_key(self) -> bytes:
        if self.dkim.key:
            return self.dkim.key.encode()
        return _read_secret_file(self, self.dkim.key_file).encode()

    def relay_password(self, relay: RelaySettings) -> str:
        """A pool relay's password: from the environment variable or the file it names."""
        if relay.password_env:
            return os.environ.get(relay.password_env, "")
        return _read_secret_file(self, relay.password_file)

    def template_dirs(self) -> list[Path]:
        """Operator's override folder first (shadows file by file), then the packaged set."""
        packaged = Path(__file__).parent / "templates"
        return ([self.path(self.templates.dir)] if self.templates.dir else []) + [packaged]


def _read_secret_file(settings: Settings, name: str) -> str:
    if not name:
        return ""
    path = settings.path(name)
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            [f"cannot read secret file {path}: {exc.strerror}"], settings.source
        ) from exc


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the config file to use, or None for embedded defaults."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_PREFIX + "CONFIG")
    if env:
        return Path(env)
    local = Path("config.toml")
    return local if local.is_file() else None


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, merge and validate the configuration; raise one ConfigError listing every problem."""
    environ = os.environ if environ is None else environ
    config_path = find_config(path)
    raw: dict[str, Any] = {}
    source = "(embedded defaults)"
    if config_path is not None:
        source = str(config_path)
        try:
            raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"config file {config_path} does not exist"], source) from None
        except UnicodeDecodeError as exc:
            raise ConfigError([f"the file is not UTF-8 ({exc.reason})"], source) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"not valid TOML: {exc}"], source) from None
    problems: list[str] = []
    _apply_env(raw, environ, problems)
    sections: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "relays":
            sections[key] = _build_relays(value, problems)
        elif key not in SECTIONS:
            problems.append(f"{key}: unknown section (known: {', '.join(SECTIONS)})")
        elif not isinstance(value, dict):
            problems.append(f"{key}: must be a table ([{key}])")
        else:
            sections[key] = _build_section(key, SECTIONS[key], value, problems)
    if problems:
        raise ConfigError(problems, source)
    base_dir = config_path.resolve().parent if config_path else Path.cwd()
    settings = Settings(**sections, base_dir=base_dir, source=source)
    problems = _cross_checks(settings)
    if problems:
        raise ConfigError(problems, source)
    return settings


def _cross_checks(settings: Settings) -> list[str]:
    """Rules between keys. A delivery's lease must outlast one whole SMTP attempt, or another
    sender would take the row over while the message is still in flight and send it twice."""
    lease = settings.sending.lease_seconds
    relays = [("smtp", settings.smtp.timeout, settings.smtp.data_timeout)] + [
        (f"relays[{i}]", r.timeout, r.data_timeout) for i, r in enumerate(settings.relays)
    ]
    return [
        f"sending.lease_seconds: {lease:g} s must exceed {name}.timeout + {name}.data_timeout "
        f"({timeout + data_timeout:g} s), or a message still in flight could be sent twice"
        for name, timeout, data_timeout in relays
        if lease <= timeout + data_timeout
    ]


def _build_relays(value: Any, problems: list[str]) -> tuple[RelaySettings, ...]:
    """``[[relays]]``: an array of tables, each a RelaySettings with a unique name."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.append("relays: must be an array of tables ([[relays]])")
        return ()
    relays = []
    for i, table in enumerate(value):
        relay = _build_section(f"relays[{i}]", RelaySettings, table, problems)
        relays.append(dataclasses.replace(relay, name=relay.name or f"relay{i + 1}"))
    names = [r.name for r in relays]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"relays: the name {name!r} is used more than once")
    return tuple(relays)


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str], problems: list[str]) -> None:
    """Fold PULSELETTER_SECTION__KEY=value into the raw TOML tree."""
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if not section or not key:
            problems.append(f"{name}: expected {ENV_PREFIX}<SECTION>__<KEY>")
            continue
        target = SECTIONS.get(section)
        hint = _field_types(target).get(key) if target else None
        raw.setdefault(section, {})
        if isinstance(raw[section], dict):
            raw[section][key] = _parse_env_value(value, hint)


def _parse_env_value(value: str, hint: Any) -> Any:
    """Strings stay strings; other types are read as TOML values (42, true, ["a", "b"])."""
    if hint is str:
        return value
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build_section(name: str, cls: type, values: dict[str, Any], problems: list[str]) -> Any:
    hints = _field_types(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{name}.{key}"
        if key not in fields:
            problems.append(f"{where}: unknown key (known: {', '.join(fields)})")
            continue
        expected = hints[key]
        coerced, error = _coerce(value, expected)
        if error:
            problems.append(f"{where}: {error}, got {type(value).__name__} {value!r}")
            continue
        check = fields[key].metadata.get("check")
        message = check(coerced) if check else None
        if message:
            problems.append(f"{where}: {message}")
            continue
        kwargs[key] = coerced
    return cls(**kwargs)


def _coerce(value: Any, expected: Any) -> tuple[Any, str | None]:
    """Check a TOML value against a field type; ints are accepted where floats are expected."""
    origin = typing.get_origin(expected)
    if expected is bool:
        return value, None if isinstance(value, bool) else "expected true or false"
    if expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return value, None if ok else "expected an integer"
    if expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return (float(value) if ok else value), None if ok else "expected a number"
    if expected is str:
        return value, None if isinstance(value, str) else "expected a string"
    if origin is list:
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value, None if ok else "expected a list of strings"
    if origin is dict:
        ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        return value, None if ok else "expected a table of strings"
    if isinstance(expected, types.UnionType):  # pragma: no cover - no optional fields yet
        return value, None
    raise TypeError(f"unsupported settings type {expected!r}")  # a bug in this module


def effective_config(settings: Settings) -> dict[str, Any]:
    """Settings as nested dicts (``relays`` a list), secrets masked, for ``config check``."""
    out: dict[str, Any] = {name: _masked(getattr(settings, name)) for name in SECTIONS}
    out["relays"] = [_masked(relay) for relay in settings.relays]
    return out


def _masked(section: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        values[f.name] = "********" if f.metadata.get("secret") and value else value
    return values
