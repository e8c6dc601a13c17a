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

# Fields of a detailed v1 image that only one side defines: Glance v1's own, and
# Plankton's (its file's location, its snapshot flag, its description).
GLANCE_V1_FIELDS = frozenset({"min_ram", "min_disk", "protected", "deleted"})
PLANKTON_FIELDS = frozenset({"location", "is_snapshot", "description"})
DETAIL_EXTRAS = GLANCE_V1_FIELDS | PLANKTON_FIELDS

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
    Difference(
        "detail_extras",
        openstack=GLANCE_V1_FIELDS,
        synnefo=PLANKTON_FIELDS,
        why="Glance v1's detailed image has min_ram, min_disk, protected and deleted; "
        "Plankton's has the file's location, is_snapshot and a description instead.",
    ),
)
