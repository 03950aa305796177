"""Where mail goes: the relay pool every message uses, issues and one-off mail alike.

The app's own transport factory (tests, the demo's embedded server) wins; then the
``[[relays]]`` pool with its weights and limits; then the single ``[smtp]`` relay; then the
file transport (the safe default of a fresh config)."""

from __future__ import annotations

from collections.abc import Callable

from pulseletter.config import RelaySettings
from pulseletter.dispatch.pool import Relay, RelayPool
from pulseletter.dispatch.ratelimit import RateLimit, buckets
from pulseletter.mail.transports import FileTransport, SmtpTransport, Transport
from pulseletter.service.app import App


def relay_pool(app: App) -> RelayPool:
    """The relays to send through: the app's own factory (tests, demo), the ``[[relays]]``
    pool, the single ``[smtp]`` relay, or the file transport."""
    s = app.settings
    if app.transport_factory is not None:
        return RelayPool([Relay("custom", app.transport_factory)])
    if s.transport.kind == "file":
        shared = FileTransport(s.path(s.transport.file_dir))
        return RelayPool([Relay("file", lambda: shared)])
    if not s.relays:
        return RelayPool([Relay(s.smtp.host, lambda: SmtpTransport.from_settings(s))])
    relays = []
    for r in s.relays:
        limit = RateLimit(buckets(r.rate_per_second, r.rate_per_hour, r.rate_per_day))
        factory = _relay_factory(r, s.relay_password(r))
        relays.append(Relay(r.name, factory, limit, r.weight, r.connections))
    return RelayPool(relays)


def _relay_factory(r: RelaySettings, password: str) -> Callable[[], Transport]:
    def factory() -> Transport:
        return SmtpTransport(
            r.host,
            r.port,
            security=r.security,
            username=r.username,
            password=password,
            local_hostname=r.local_hostname,
            timeout=r.timeout,
            data_timeout=r.data_timeout,
            name=r.name,
        )

    return factory


def one_transport(app: App) -> Transport:
    """A connection for one message (confirmation, notice, test copy), chosen by weight."""
    pool = relay_pool(app)
    relay = pool.acquire() or pool.relays[0]
    return relay.factory()
