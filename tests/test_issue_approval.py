"""With issue.require_approval, nothing is sent before an editor approves, and what the editor
approved is exactly what is sent (a later prepare does not recompose it)."""

from __future__ import annotations

import pytest

from compose_support import sample_app
from conftest import ConfigWriter, FixedClock
from pulseletter.db.models import Article
from pulseletter.errors import IssueStateError
from pulseletter.service import subscribers as subscriber_service
from pulseletter.service.issues import prepare_issue, resolve_week
from pulseletter.service.sending import send_issue
from pulseletter.service.weekly import approve_issue, awaiting_approval


def test_send_waits_for_approval_and_sends_what_was_approved(
    make_settings: ConfigWriter, clock: FixedClock
) -> None:
    with sample_app(make_settings, clock, issue={"require_approval": True}) as app:
        subscriber_service.add(app, "reader@example.com", status="active")
        week = resolve_week(app, None)
        issue = prepare_issue(app, week)
        with pytest.raises(IssueStateError, match="issue approve"):
            send_issue(app, issue.key)
        assert awaiting_approval(app) == issue.key  # `issue approve` without --week
        approve_issue(app, issue.key)
        with pytest.raises(IssueStateError, match="no issue is waiting"):
            awaiting_approval(app)
        approved_html = issue.html

        with app.db.writing() as session:  # an editor changes the lead after approving
            lead = session.query(Article).filter(Article.published_at >= week.start).first()
            assert lead is not None
            lead.title = "A title nobody approved"
        again = prepare_issue(app, week)
        assert again.html == approved_html and "nobody approved" not in again.html

        outcome = send_issue(app, issue.key)
        assert outcome.state == "sent" and outcome.counts == {"sent": 1}
