"""Where Glance v1 and Plankton disagree on the wire (``nefos.core.dialects``).

Plankton served Glance v1's paths with its own shapes: listings as a bare JSON array and
statuses in capitals (``AVAILABLE``), which kamaki reads. Glance v1's clients expect
``{"images": [...]}`` and Glance's lower-case statuses. Glance v2 has no Synnefo
counterpart and speaks the same on both endpoints.
"""

from __future__ import annotations

from nefos.core.dialects import Difference, Table

# The service's statuses as each dialect names them (Glance's are the service's own).
GLANCE_V1_STATUS = {
    "active": "active",
    "queued": "queued",
    "saving": "saving",
    "killed": "killed",
    "error": "killed",
    "deleted": "deleted",
}
PLANKTON_STATUS = {
    "active": "AVAILABLE",
    "queued": "SAVING",
    "saving": "SAVING",
    "killed": "ERROR",
    "error": "ERROR",
    "deleted": "DELETED",
}

TABLE = Table(
    "image v1",
    Difference(
        "listing_shape",
        openstack="object",
        synnefo="array",
        why='Glance v1 wraps a listing as {"images": [...]}; Plankton sends the array itself, '
        "which kamaki's `image list` reads.",
    ),
    Difference(
        "status_names",
        openstack=GLANCE_V1_STATUS,
        synnefo=PLANKTON_STATUS,
        why="Glance v1 names statuses in lower case (active, queued, killed); Plankton in "
        "capitals (AVAILABLE, SAVING, ERROR).",
    ),
)
