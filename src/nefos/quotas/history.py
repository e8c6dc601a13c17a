"""Usage over time, per holding: derived from the provision log, not sampled.

Every accepted provision is already a row of ``provision_log``, written in the same
transaction that moves its holding (``Quotas.take`` on the file store's path, ``_resolve``
for two-phase commissions). So the log is the holding's history, exact to the change and
paid for once: a sampler would add rows every interval whether or not anything moved, and
would miss a machine that lived between two samples. Reading it:

- The *accepted* usage now is the holding's ``usage_max`` less its pending imports.
- Walking back, the usage just before an accepted provision is the usage after it less
  its quantity. Rejected provisions never changed the accepted usage and are skipped.
- So the usage at a time ``t`` is the usage now less every quantity accepted after ``t``:
  it only needs the log from ``t`` on. Retention (``usage_history_days``) deletes older
  rows; times before the retention start have no value (``None``), never a wrong one.

A series has one point per ``step``: the usage at the step's end and the most held at once
within it (``peak``), so a machine that lived for a second still shows. The database
groups the rows by step (one query for every series asked), so a year of a busy file
store's writes costs one scan of its index range, not a row per write in Python.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Float, Integer, delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.identity.models import Project
from nefos.quotas.models import NO_SOURCE, Commission, Holding, Provision, ProvisionLog
from nefos.quotas.project_rules import Actor
from nefos.quotas.resources import RESOURCES
from nefos.quotas.service import project_holder, user_holder

MAX_POINTS = 500
# Steps a client gets when it names none: the smallest giving at most DEFAULT_POINTS
# (a year gets days: 365 points).
NICE_STEPS = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
DEFAULT_POINTS = 200
DEFAULT_SPAN = dt.timedelta(days=1)
PRUNE_BATCH = 10_000
Scope = Literal["user", "project"]


@dataclass(frozen=True)
class Series:
    """One holding's usage: ``usage[i]`` at ``times[i]``, ``peak[i]`` the most within
    the step ending there. ``limit`` is the holding's limit now."""

    project: str
    holder: str
    resource: str
    limit: int
    usage: list[int | None]
    peak: list[int | None]


@dataclass(frozen=True)
class History:
    since: dt.datetime
    until: dt.datetime
    step: int
    kept_since: dt.datetime | None  # older times have no value (retention)
    times: list[int]  # each step's end, in seconds since the epoch
    series: list[Series]


class _StepIndex(FunctionElement[int]):
    """Which step a time falls in: floor((epoch(time) - since) / step), per dialect."""

    type = Integer()
    inherit_cache = True
    name = "usage_step_index"


@compiles(_StepIndex, "sqlite")
def _step_index_sqlite(element: _StepIndex, compiler: Any, **kw: Any) -> str:
    moment, since, step = (compiler.process(c, **kw) for c in element.clauses)
    # Times are stored as naive UTC text; times here are >= since, so CAST's truncation
    # is the floor.
    return f"CAST(((julianday({moment}) - 2440587.5) * 86400.0 - {since}) / {step} AS INTEGER)"


@compiles(_StepIndex, "postgresql")
def _step_index_postgresql(element: _StepIndex, compiler: Any, **kw: Any) -> str:
    moment, since, step = (compiler.process(c, **kw) for c in element.clauses)
    # timestamp without time zone holds UTC; CAST alone would round, not floor.
    return f"CAST(floor((extract(epoch from {moment}) - {since}) / {step}) AS BIGINT)"


def choose_step(span: dt.timedelta, step: int | None) -> int:
    """The step asked for, if it gives at most MAX_POINTS points; else a clear error."""
    seconds = span.total_seconds()
    if step is None:
        for nice in NICE_STEPS:
            if seconds / nice <= DEFAULT_POINTS:
                return nice
        if seconds / NICE_STEPS[-1] <= MAX_POINTS:
            return NICE_STEPS[-1]  # a year by days
        return math.ceil(seconds / MAX_POINTS)
    if step < 1:
        raise errors.InvalidInput("step must be a whole number of seconds, at least 1")
    if math.ceil(seconds / step) > MAX_POINTS:
        least = math.ceil(seconds / MAX_POINTS)
        raise errors.InvalidInput(
            f"A step of {step} s over {seconds:.0f} s gives more than {MAX_POINTS} points: "
            f"use a step of at least {least} s",
            data={"field": "step", "minimum": least},
        )
    return step


class UsageHistory:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    def kept_since(self, now: dt.datetime) -> dt.datetime | None:
        days = self.settings.usage_history_days
        return now - dt.timedelta(days=days) if days else None

    async def history(
        self,
        caller: Actor,
        *,
        scope: Scope = "user",
        project: uuid.UUID | None = None,
        user: uuid.UUID | None = None,
        resource: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        step: int | None = None,
    ) -> History:
        """A user's usage in their projects (theirs, or anyone's for an administrator),
        or a project's in all (its owner's or an administrator's)."""
        if resource is not None and resource not in RESOURCES:
            raise errors.InvalidInput(f"Unknown resource {resource!r}", data={"field": "resource"})
        now = utcnow()
        until = min(until or now, now)
        since = since or until - DEFAULT_SPAN
        if since >= until:
            raise errors.InvalidInput("since must be earlier than until (and than now)")
        step = choose_step(until - since, step)
        async with self.db.session() as s:
            which = await _which(s, caller, scope, project, user, resource)
            holdings = list(
                await s.scalars(
                    select(Holding)
                    .where(*which.on(Holding.__table__))
                    .order_by(Holding.source, Holding.resource)
                )
            )
            pending = await _pending_imports(s, which)
            steps = await _accepted_by_step(s, which, since, step)
        count = math.ceil((until - since).total_seconds() / step)
        start = since.timestamp()
        times = [int(min(start + (i + 1) * step, until.timestamp())) for i in range(count)]
        kept = self.kept_since(now)
        first_kept = 0 if kept is None else _first_at_or_after(times, kept.timestamp())
        series = []
        for h in holdings:
            key = (h.holder, h.source, h.resource)
            now_usage = h.usage_max - pending.get(key, 0)
            usage, peak = _walk(now_usage, steps.get(key, {}), count)
            for i in range(first_kept):
                usage[i] = peak[i] = None
            owner = h.holder if h.source == NO_SOURCE else h.source
            series.append(
                Series(
                    project=owner.removeprefix("project:"),
                    holder=h.holder,
                    resource=h.resource,
                    limit=h.limit,
                    usage=usage,
                    peak=peak,
                )
            )
        return History(since, until, step, kept, times, series)

    async def prune(self, now: dt.datetime | None = None) -> int:
        """Delete log rows older than the retention, in batches (each its own short
        transaction, so file writes are never held up for long); how many went."""
        kept = self.kept_since(now or utcnow())
        if kept is None:
            return 0
        log = ProvisionLog.__table__
        gone = 0
        while True:
            async with self.db.write() as conn:
                oldest = select(log.c.id).where(log.c.log_time < kept).limit(PRUNE_BATCH)
                result = await conn.execute(delete(log).where(log.c.id.in_(oldest)))
            gone += result.rowcount
            if result.rowcount < PRUNE_BATCH:
                return gone


def _first_at_or_after(times: Sequence[int], moment: float) -> int:
    for i, t in enumerate(times):
        if t >= moment:
            return i
    return len(times)


def _walk(
    now_usage: int, steps: dict[int, tuple[int, int]], count: int
) -> tuple[list[int | None], list[int | None]]:
    """Usage at each step's end and its peak, from the usage now and per step the sum
    of the quantities accepted and the highest running sum reached."""
    base = now_usage - sum(delta for delta, _ in steps.values())  # the usage at ``since``
    usage: list[int | None] = []
    peak: list[int | None] = []
    value = base
    for i in range(count):
        start = value
        delta, top = steps.get(i, (0, None))  # type: ignore[arg-type]
        value += delta
        usage.append(value)
        peak.append(max(start, value) if top is None else max(start, value, base + top))
    return usage, peak


@dataclass(frozen=True)
class _Which:
    """The holdings asked for, as filters on any table keyed like holdings (holdings,
    provisions, the log)."""

    holder: str
    source: str | None  # None: any project's (a user's holdings, never a project's own)
    resource: str | None

    def on(self, table: Any) -> list[ColumnElement[bool]]:
        c = table.c
        clauses = [c.holder == self.holder]
        clauses.append(c.source != NO_SOURCE if self.source is None else c.source == self.source)
        if self.resource is not None:
            clauses.append(c.resource == self.resource)
        return clauses


async def _which(
    s: AsyncSession,
    caller: Actor,
    scope: Scope,
    project: uuid.UUID | None,
    user: uuid.UUID | None,
    resource: str | None,
) -> _Which:
    """The holdings the caller asks for, if the caller may see them."""
    if scope == "project":
        if project is None or user is not None:
            raise errors.InvalidInput("scope=project needs a project, and no user")
        found = await s.get(Project, project)
        if found is None:
            raise errors.NotFound(f"No project {project}")
        if not caller.is_admin and found.owner_id != caller.user_id:
            raise errors.PermissionDenied(
                "Only the project's owner or an administrator sees its usage in all"
            )
        return _Which(project_holder(project), NO_SOURCE, resource)
    whose = user or caller.user_id
    if whose != caller.user_id and not caller.is_admin:
        raise errors.PermissionDenied("You may see only your own usage")
    source = project_holder(project) if project is not None else None
    return _Which(user_holder(whose), source, resource)


async def _pending_imports(s: AsyncSession, which: _Which) -> dict[tuple[str, str, str], int]:
    """What each holding's ``usage_max`` counts that is not accepted yet."""
    provisions = Provision.__table__
    query = (
        select(
            provisions.c.holder,
            provisions.c.source,
            provisions.c.resource,
            func.sum(provisions.c.quantity),
        )
        .join(Commission.__table__, Commission.serial == provisions.c.serial)
        .where(
            Commission.state == "pending",
            provisions.c.quantity > 0,
            *which.on(provisions),
        )
        .group_by(provisions.c.holder, provisions.c.source, provisions.c.resource)
    )
    return {(h, src, r): int(total) for h, src, r, total in await s.execute(query)}


async def _accepted_by_step(
    s: AsyncSession, which: _Which, since: dt.datetime, step: int
) -> dict[tuple[str, str, str], dict[int, tuple[int, int]]]:
    """Per holding and step (from ``since`` to now): the quantities accepted, summed,
    and the highest running sum since ``since`` reached in the step."""
    log = ProvisionLog.__table__
    series = (log.c.holder, log.c.source, log.c.resource)
    index = _StepIndex(log.c.log_time, literal(since.timestamp(), Float), literal(step, Float))
    rows = (
        select(
            *series,
            index.label("step"),
            log.c.quantity,
            func.sum(log.c.quantity).over(partition_by=series, order_by=log.c.id).label("running"),
        )
        .where(log.c.outcome == "accept", log.c.log_time >= since, *which.on(log))
        .subquery()
    )
    grouped = select(
        rows.c.holder,
        rows.c.source,
        rows.c.resource,
        rows.c.step,
        func.sum(rows.c.quantity),
        func.max(rows.c.running),
    ).group_by(rows.c.holder, rows.c.source, rows.c.resource, rows.c.step)
    found: dict[tuple[str, str, str], dict[int, tuple[int, int]]] = {}
    for holder, source, resource, index_, total, top in await s.execute(grouped):
        found.setdefault((holder, source, resource), {})[int(index_)] = (int(total), int(top))
    return found
