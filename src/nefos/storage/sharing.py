"""Sharing rules of the namespace, apart from the database: who a sharing list names,
which path's permissions apply to an object, and the public-link tokens.

Spec §1.7: ``X-Object-Sharing: read=<list>; write=<list>`` where an item is a user UUID,
``<owner>:<group>`` or ``*``; writers may also read, so they are dropped from ``read``;
permissions set on an object or a directory object apply below it, the nearest wins.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field

from nefos.core import errors

READ, WRITE = "read", "write"
EVERYONE = "*"
MAX_GROUPS = 32
MAX_GROUP_MEMBERS = 32
MAX_SHARING_SUBJECTS = 256
GROUP_NAME = re.compile(r"^[a-z0-9.@+=~!$&'()*,;:]{1,128}$")  # lowercased, no - or _
TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Sharing:
    """An object's effective permissions and the path they are set on."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    path: str | None = None  # None: nothing shared

    def header(self) -> str:
        """The normalized ``X-Object-Sharing`` value."""
        parts = []
        if self.read:
            parts.append("read=" + ",".join(self.read))
        if self.write:
            parts.append("write=" + ",".join(self.write))
        return "; ".join(parts)


@dataclass
class Grants:
    """The permissions under one container, loaded once to decide many paths."""

    by_path: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    def add(self, path: str, access: str, subject: str) -> None:
        self.by_path.setdefault(path, {READ: set(), WRITE: set()})[access].add(subject)

    def nearest(self, path: str) -> str | None:
        for candidate in ancestry(path):
            if candidate in self.by_path:
                return candidate
        return None

    def access(self, path: str, subjects: set[str]) -> str | None:
        """``write``, ``read`` or None for a caller known by ``subjects`` (see
        :func:`subjects_of`)."""
        nearest = self.nearest(path)
        if nearest is None:
            return None
        granted = self.by_path[nearest]
        if granted[WRITE] & subjects:
            return WRITE
        if granted[READ] & subjects:
            return READ
        return None


def ancestry(path: str) -> list[str]:
    """``acct/cont/a/b/c`` → itself, then ``acct/cont/a/b``, ``acct/cont/a`` (the
    directory objects it may inherit from), nearest first; never the container."""
    account, container, name = path.split("/", 2)
    base = f"{account}/{container}/"
    found = [path]
    segments = name.rstrip("/").split("/")
    for depth in range(len(segments) - 1, 0, -1):
        found.append(base + "/".join(segments[:depth]))
    return found


def subjects_of(user: str, groups_with_user: set[tuple[str, str]]) -> set[str]:
    """Every sharing-list item that names ``user``: itself, ``*``, its groups."""
    return {user, EVERYONE} | {f"{owner}:{name}" for owner, name in groups_with_user}


def parse_sharing(value: str) -> tuple[list[str], list[str]]:
    """``read=a,b; write=c`` → (read, write), writers removed from readers; an empty
    value clears. Bad syntax is InvalidInput (400)."""
    read: list[str] = []
    write: list[str] = []
    value = value.strip()
    if not value:
        return read, write
    seen: set[str] = set()
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, items = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in (READ, WRITE) or key in seen:
            raise errors.InvalidInput(f"Bad X-Object-Sharing part {part!r}")
        seen.add(key)
        subjects = [item.strip() for item in items.split(",") if item.strip()]
        if not subjects:
            raise errors.InvalidInput(f"Empty {key} list in X-Object-Sharing")
        for subject in subjects:
            check_subject(subject)
        target = read if key == READ else write
        target.extend(s for s in subjects if s not in target)
    read = [s for s in read if s not in write]
    if len(read) + len(write) > MAX_SHARING_SUBJECTS:
        raise errors.InvalidInput(f"At most {MAX_SHARING_SUBJECTS} users and groups in sharing")
    return read, write


def check_subject(subject: str) -> str:
    if subject == EVERYONE:
        return subject
    owner, sep, group = subject.partition(":")
    if not owner or len(subject) > 256 or any(c in subject for c in " \t\0=;,/"):
        raise errors.InvalidInput(f"Bad user or group {subject!r} in sharing")
    if sep:
        check_group_name(group)
    return subject


def check_group_name(name: str) -> str:
    if not GROUP_NAME.match(name):
        raise errors.InvalidInput(
            f"Bad group name {name!r}: lowercase, no '-' or '_', at most 128 characters"
        )
    return name


def check_members(members: list[str]) -> list[str]:
    if len(members) > MAX_GROUP_MEMBERS:
        raise errors.InvalidInput(f"At most {MAX_GROUP_MEMBERS} members in a group")
    for member in members:
        if not member or len(member) > 256 or any(c in member for c in " \t\0=;,:/"):
            raise errors.InvalidInput(f"Bad group member {member!r}")
    return members


def new_public_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))
