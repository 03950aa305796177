"""The functions APScheduler's job store points to (by textual reference, so they survive a
restart). Each hands over to the running ``WeeklyScheduler``, which calls one service function.
"""

from __future__ import annotations

from pulseletter.scheduler.runner import active
from pulseletter.service import weekly


def weekly_send() -> None:
    active().run_job(weekly.SEND_JOB, lambda app, stop: weekly.run_send(app, stop=stop))


def weekly_prepare() -> None:
    active().run_job(weekly.PREPARE_JOB, lambda app, stop: weekly.run_prepare(app))


def ingest() -> None:
    active().run_job(weekly.INGEST_JOB, lambda app, stop: weekly.run_ingest(app), exclusive=False)


def tick() -> None:
    active().run_job("tick", lambda app, stop: weekly.tick(app, stop), wait=False)
