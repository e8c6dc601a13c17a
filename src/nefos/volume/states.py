"""A volume's status, as Cinder names it, and which actions each status allows.

Every change this API makes to a volume (create, clone, extend, delete) completes
inside its request, so a volume the API shows is ``available``; ``in-use``,
``attaching`` and ``detaching`` belong to attachments (the compute integration), and
``creating``, ``extending``, ``deleting`` and ``error`` to work that a backend does
later. The table already says what each of them allows, so that those slices only
move volumes between statuses.
"""

from __future__ import annotations

from nefos.core import errors
from nefos.volume.models import Volume

CREATING = "creating"
AVAILABLE = "available"
IN_USE = "in-use"
ATTACHING = "attaching"
DETACHING = "detaching"
EXTENDING = "extending"
DELETING = "deleting"
ERROR = "error"
STATUSES = (CREATING, AVAILABLE, IN_USE, ATTACHING, DETACHING, EXTENDING, DELETING, ERROR)

# Cinder's rules: a volume is deleted when available or in error, extended when
# available (in-use needs microversion 3.42 and the server's help), and snapshotted when
# available, or in use with "force".
ALLOWED = {
    "delete": {AVAILABLE, ERROR},
    "extend": {AVAILABLE},
    "snapshot": {AVAILABLE},
    "snapshot_forced": {AVAILABLE, IN_USE},
}


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
