"""Who may see and change what: the caller of a network request, and the rules as SQL.

A user sees their own networks, the public ones and those shared to a project they
belong to; their own ports; their own floating IPs and those shared to their projects.
What a user may not see does not exist for them (404, never 403); what they see but may
not change (a public network, a network shared to them) is a 403. Administrators see
and change everything, as Neutron's admins do.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, or_, true

from nefos.core import errors
from nefos.network.models import IpAddress, Network, Port


@dataclass(frozen=True)
class Caller:
    """The user a request acts for, the projects they may use (their own system
    project first), and whether they are an administrator."""

    user: str
    projects: frozenset[str] = field(default_factory=frozenset)
    admin: bool = False
    project: str = ""  # where new things go unless the request names a project

    def __post_init__(self) -> None:
        if not self.project:
            object.__setattr__(self, "project", self.user)
        object.__setattr__(self, "projects", frozenset({self.user, *self.projects}))

    def project_for(self, wanted: str | None) -> str:
        """The project a new thing goes to: ``wanted`` if the caller may use it."""
        project = wanted or self.project
        if not self.admin and project not in self.projects:
            raise errors.PermissionDenied(f"You are not a member of project {project}")
        return project


def networks_seen(caller: Caller) -> ColumnElement[bool]:
    if caller.admin:
        return true()
    return or_(
        Network.public,
        Network.user_id == caller.user,
        and_(Network.shared_to_project, Network.project.in_(caller.projects)),
    )


def ports_seen(caller: Caller) -> ColumnElement[bool]:
    return true() if caller.admin else Port.user_id == caller.user


def floating_ips_seen(caller: Caller) -> ColumnElement[bool]:
    if caller.admin:
        return true()
    return or_(
        IpAddress.user_id == caller.user,
        and_(IpAddress.shared_to_project, IpAddress.project.in_(caller.projects)),
    )


def may_change(caller: Caller, owner: str, what: str) -> None:
    """Only the owner (or an administrator) changes a thing others may see."""
    if not caller.admin and owner != caller.user:
        raise errors.PermissionDenied(f"Only its owner may change {what}")


def parse_id(value: str, kind: str) -> uuid.UUID:
    """An id on the wire; anything that is not one names nothing (404)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise errors.NotFound(f"{kind} {value} could not be found") from None
