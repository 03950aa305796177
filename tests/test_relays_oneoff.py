"""One-off mail (confirmations, notices, test copies) goes through the [[relays]] pool too."""

from __future__ import annotations

from conftest import ConfigWriter, FixedClock
from pulseletter.config import load_settings
from pulseletter.db.migrate import upgrade
from pulseletter.mail.sink import SmtpSink, free_port
from pulseletter.service.app import App
from pulseletter.service.transactional import send_transactional


def test_transactional_mail_uses_the_relay_pool(
    make_settings: ConfigWriter, clock: FixedClock, smtp_sink: SmtpSink
) -> None:
    settings = make_settings(
        transport={"kind": "smtp"},
        smtp={"host": "127.0.0.1", "port": free_port(), "security": "none"},  # nobody there
    )
    relays = f'\n[[relays]]\nname = "sink"\nhost = "127.0.0.1"\nport = {smtp_sink.port}\n'
    config = settings.base_dir / "config.toml"
    config.write_text(config.read_text("utf-8") + relays + 'security = "none"\n', "utf-8")
    app = App.open(load_settings(config, environ={}), check_schema=False, clock=clock)
    upgrade(app.db.engine)
    try:
        reply = send_transactional(
            app,
            to_address="ada@example.com",
            to_name="Ada",
            subject="Hello",
            text="text",
            html="<p>html</p>",
            unsubscribe_url="https://pulse.example.com/unsubscribe/t",
        )
    finally:
        app.close()
    assert reply.ok, reply
    assert [rcpts for _, rcpts, _ in smtp_sink.messages] == [["ada@example.com"]]
