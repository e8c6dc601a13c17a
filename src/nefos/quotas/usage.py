"""Usage across users and projects, for operators' reports."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from nefos.core.db import Database
from nefos.identity.models import Project, User
from nefos.quotas.models import NO_SOURCE, Holding


@dataclass(frozen=True)
class UsageRow:
    kind: str  # "user" (a member's share of a project) or "project" (the project in all)
    holder: str  # e-mail or project name
    project: str  # project name
    resource: str
    limit: int
    usage: int
    pending: int


def _uuid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref.split(":", 1)[1])
    except (IndexError, ValueError):
        return None


async def usage_report(db: Database) -> list[UsageRow]:
    """Every holding with names in place of ids, projects first, then their members."""
    async with db.session() as s:
        holdings = list(await s.scalars(select(Holding)))
        emails = dict((await s.execute(select(User.id, User.email))).all())
        names = dict((await s.execute(select(Project.id, Project.name))).all())

    def project_name(ref: str) -> str:
        found = _uuid(ref)
        return names.get(found, ref) if found else ref

    rows = []
    for h in holdings:
        is_project = h.source == NO_SOURCE
        holder_id = _uuid(h.holder)
        rows.append(
            UsageRow(
                kind="project" if is_project else "user",
                holder=project_name(h.holder)
                if is_project
                else emails.get(holder_id, h.holder)
                if holder_id
                else h.holder,
                project=project_name(h.holder if is_project else h.source),
                resource=h.resource,
                limit=h.limit,
                usage=h.usage_max,
                pending=h.usage_max - h.usage_min,
            )
        )
    rows.sort(key=lambda r: (r.project, r.kind != "project", r.holder, r.resource))
    return rows
