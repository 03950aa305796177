"""The weekly scheduler: APScheduler 3.11, its job store in the service's own database.

- Jobs have stable ids and are added only when absent. ``add_job(replace_existing=True)``
  before ``start()`` would overwrite the stored next run time and silently drop a run missed
  while the service was down; a changed schedule is applied with ``reschedule_job`` *after*
  the tick has dealt with any missed run.
- coalesce on, ``max_instances=1``, misfire grace = ``schedule.grace_hours``.
- The job store is not the guarantee: a tick job runs at start and every minute and asks the
  database what is due (``service.weekly.tick``); the send itself is idempotent on the issue key.
- Every job runs under one lock per process, so a tick never races the weekly send, and
  shutdown waits for that lock to know the in-flight work is finished and recorded.
- A listener logs any error or missed run APScheduler's executor would otherwise keep to itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pulseletter.scheduler import clock as scheduler_clock
from pulseletter.service import weekly
from pulseletter.service.app import App, system_clock
from pulseletter.service.plan import Plan, next_fires

log = logging.getLogger("pulseletter.scheduler")

JOB_TABLE = "apscheduler_jobs"
SEND_ID = "pulseletter-weekly-send"
PREPARE_ID = "pulseletter-weekly-prepare"
INGEST_ID = "pulseletter-ingest"
TICK_ID = "pulseletter-tick"
TICK_EVERY = timedelta(minutes=1)

_active: WeeklyScheduler | None = None
_active_lock = threading.Lock()

Work = Callable[[App, threading.Event], Any]


def active() -> WeeklyScheduler:
    """The scheduler running in this process (jobs are plain functions in the job store)."""
    if _active is None:
        raise RuntimeError("no pulseletter scheduler is running in this process")
    return _active


class WeeklyScheduler:
    def __init__(self, app: App) -> None:
        self.app = app
        self.plan = Plan.from_settings(app.settings)
        self.stop = threading.Event()
        self.work = threading.Lock()
        self.scheduler = BackgroundScheduler(
            timezone=self.plan.tz,
            jobstores={"default": SQLAlchemyJobStore(engine=app.db.engine, tablename=JOB_TABLE)},
            executors={"default": ThreadPoolExecutor(max_workers=3)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start paused, make sure the jobs exist, run a tick at once, then resume."""
        global _active
        with _active_lock:
            if _active is not None:
                raise RuntimeError("a pulseletter scheduler already runs in this process")
            _active = self
        if self.app.clock is not system_clock:
            scheduler_clock.follow(self.app.clock)
        weekly.record_start(self.app)
        self.scheduler.start(paused=True)
        self.ensure_jobs()
        self.scheduler.modify_job(TICK_ID, next_run_time=self.app.clock())  # recover now
        self.scheduler.resume()
        upcoming = next_fires(self.plan.send, self.app.clock(), 1)
        log.info(
            "scheduler started: next send %s (%s)",
            upcoming[0].astimezone(self.plan.tz).isoformat() if upcoming else "none",
            self.app.settings.schedule.send,
            extra={"event": "scheduler.start"},
        )

    def stop_gracefully(self, timeout: float) -> bool:
        """Tell the sender to stop after its in-flight message, stop firing jobs, and wait up to
        ``timeout`` seconds for the running job to record what it did. True if it did."""
        global _active
        self.stop.set()
        with contextlib.suppress(SchedulerNotRunningError):
            self.scheduler.shutdown(wait=False)
        finished = self.work.acquire(timeout=timeout)
        if finished:
            self.work.release()
        else:
            log.error(
                "the running job did not finish within %.0fs; deliveries it holds are retried "
                "after their lease expires",
                timeout,
                extra={"event": "scheduler.stop_timeout"},
            )
        with _active_lock:
            if _active is self:
                _active = None
        if self.app.clock is not system_clock:
            scheduler_clock.restore()
        log.info("scheduler stopped", extra={"event": "scheduler.stop"})
        return finished

    def wakeup(self) -> None:
        """Make the scheduler look at its jobs now (tests move a fixed clock, then call this)."""
        self.scheduler.wakeup()

    # -- jobs ---------------------------------------------------------------------------------

    def desired_jobs(self) -> dict[str, tuple[str, BaseTrigger, int]]:
        grace = int(self.plan.grace.total_seconds()) or 1
        every = int(TICK_EVERY.total_seconds())
        tz = self.plan.tz
        start = self.app.clock() + TICK_EVERY  # the first tick is brought forward in start()
        jobs: dict[str, tuple[str, BaseTrigger, int]] = {
            SEND_ID: ("pulseletter.scheduler.jobs:weekly_send", self.plan.send, grace),
            TICK_ID: (
                "pulseletter.scheduler.jobs:tick",
                IntervalTrigger(seconds=every, start_date=start, timezone=tz),
                every,
            ),
        }
        if self.plan.prepare is not None:
            jobs[PREPARE_ID] = (
                "pulseletter.scheduler.jobs:weekly_prepare",
                self.plan.prepare,
                grace,
            )
        if self.plan.ingest_every is not None:
            seconds = int(self.plan.ingest_every.total_seconds())
            jobs[INGEST_ID] = (
                "pulseletter.scheduler.jobs:ingest",
                IntervalTrigger(
                    seconds=seconds,
                    start_date=self.app.clock() + self.plan.ingest_every,
                    timezone=tz,
                ),
                seconds,
            )
        return jobs

    def ensure_jobs(self) -> None:
        """Add each job only when absent; apply a changed schedule; drop unconfigured jobs."""
        desired = self.desired_jobs()
        for job in self.scheduler.get_jobs():
            if job.id.startswith("pulseletter-") and job.id not in desired:
                self.scheduler.remove_job(job.id)
                log.info("removed job %s (no longer configured)", job.id)
        for job_id, (func, trigger, grace) in desired.items():
            job = self.scheduler.get_job(job_id)
            if job is None:
                self.scheduler.add_job(
                    func,
                    trigger=trigger,
                    id=job_id,
                    name=job_id,
                    misfire_grace_time=grace,
                    coalesce=True,
                    max_instances=1,
                    replace_existing=False,
                )
                log.info("added job %s: %s", job_id, trigger, extra={"event": "job.added"})
            elif _describe(job.trigger) != _describe(trigger) or job.misfire_grace_time != grace:
                self.scheduler.modify_job(job_id, misfire_grace_time=grace)
                self.scheduler.reschedule_job(job_id, trigger=trigger)
                log.info("rescheduled job %s: %s", job_id, trigger, extra={"event": "job.changed"})

    def run_job(self, name: str, work: Work, *, wait: bool = True, exclusive: bool = True) -> None:
        """Run one unit of work under the process's work lock, unless shutting down."""
        if self.stop.is_set():
            return
        if not exclusive:
            work(self.app, self.stop)
            return
        if not self.work.acquire(blocking=wait):
            log.debug("%s skipped: another job is running", name)
            return
        try:
            if not self.stop.is_set():
                work(self.app, self.stop)
        finally:
            self.work.release()

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning(
                "run of %s scheduled at %s was missed (down or busy beyond its misfire grace); "
                "the tick decides what happens to that week",
                event.job_id,
                event.scheduled_run_time,
                extra={"event": "job.missed", "job": event.job_id},
            )
        elif event.exception is not None and not getattr(event.exception, "logged", False):
            log.error(
                "job %s raised %s: %s",
                event.job_id,
                type(event.exception).__name__,
                event.exception,
                exc_info=event.exception,  # keeps its __traceback__: the formatter prints it
                extra={"event": "job.error", "job": event.job_id},
            )


def _describe(trigger: BaseTrigger) -> str:
    return f"{trigger} {getattr(trigger, 'timezone', '')}"
