"""A volume's status, as Cinder names it, and which actions each status allows.

Every change the Block Storage API makes to a volume (create, clone, extend, delete)
completes inside its request, so such a volume is ``available``; ``attaching``,
``in-use`` and ``detaching`` belong to attachments, which a backend job completes
(:data:`MOVES`), and ``creating``, ``extending``, ``deleting`` and ``error`` to work
that a backend may do later. :data:`ALLOWED` says what each status allows.
"""

from __future__ import annotations

from nefos.core import errors
from nefos.core.db import utcnow
from nefos.volume.models import Volume

CREATING = "creating"
AVAILABLE = "available"
IN_USE = "in-use"
ATTACHING = "attaching"
DETACHING = "detaching"
EXTENDING = "extending"
DELETING = "deleting"
ERROR = "error"
AWAITING_TRANSFER = "awaiting-transfer"  # offered to another user (nefos.volume.transfers)
STATUSES = (
    CREATING, AVAILABLE, IN_USE, ATTACHING, DETACHING, EXTENDING, DELETING, ERROR,
    AWAITING_TRANSFER,
)  # fmt: skip

# Cinder's rules: a volume is deleted when available or in error, extended when
# available (in-use needs microversion 3.42 and the server's help), and snapshotted when
# available, or in use with "force".
ALLOWED = {
    "delete": {AVAILABLE, ERROR},
    "extend": {AVAILABLE},
    "snapshot": {AVAILABLE},
    "snapshot_forced": {AVAILABLE, IN_USE},
    "upload to an image": {AVAILABLE},
    "upload to an image_forced": {AVAILABLE, IN_USE},
    "change the read-only flag of": {AVAILABLE},
    "transfer": {AVAILABLE},
}


# Attachments move a volume by this table only (``nefos.volume.attachments``): a step
# (begin, done, failed) of an attach or a detach, from the status it needs to the one it
# leaves. An attach or detach that the backend refused or failed leaves the volume where
# it was before.
MOVES: dict[tuple[str, str], tuple[str, str]] = {
    ("attach", "begin"): (AVAILABLE, ATTACHING),
    ("attach", "done"): (ATTACHING, IN_USE),
    ("attach", "failed"): (ATTACHING, AVAILABLE),
    ("detach", "begin"): (IN_USE, DETACHING),
    ("detach", "done"): (DETACHING, AVAILABLE),
    ("detach", "failed"): (DETACHING, IN_USE),
}


def move(volume: Volume, action: str, step: str) -> bool:
    """Move the volume by :data:`MOVES`; False (nothing changed) when it is not in the
    status the step needs (a late or repeated event)."""
    before, after = MOVES[(action, step)]
    if volume.status != before:
        return False
    volume.status = after
    volume.updated = utcnow()  # the reconciler tells a lost event by the step's age
    return True


def seen_on_backend(status: str, present: bool) -> str | None:
    """The status an attached volume should have when its server's instance on the
    backend has its disk (``present``) or not; None if it has it already. The backend
    is the truth once no event will come: an attach or a detach whose job ended shows
    in the instance's disks, and an ``in-use`` volume whose disk is gone is not in use."""
    wanted = IN_USE if present else AVAILABLE
    if status not in (ATTACHING, IN_USE, DETACHING) or status == wanted:
        return None
    return wanted


def require(volume: Volume, action: str) -> None:
    """InvalidInput (Cinder's 400, "Invalid volume") unless the status allows it; writes
    nothing."""
    allowed = ALLOWED[action]
    if volume.status not in allowed:
        action = action.removesuffix("_forced")
        raise errors.InvalidInput(
            f"Invalid volume: cannot {action} volume {volume.id} while it is "
            f"{volume.status} (needs {' or '.join(sorted(allowed))})"
        )
