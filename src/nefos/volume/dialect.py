"""Where Cinder and Cyclades's block storage API disagree on the wire (``nefos.core.dialects``).

Cyclades spoke Cinder v2 with the v1 names (``display_name``, ``display_description``),
its own fields (the volume's project as ``tenant_id``, ``delete_on_termination``,
sharing) and Synnefo's volume type fields at the top of the type. Input is the same on
both: a create or update takes ``name`` or ``display_name`` (Cinder v2 and v3 take both).
"""

from __future__ import annotations

from nefos.core.dialects import Difference, Table

VOLUME_EXTRAS = frozenset({"tenant_id", "deleted", "delete_on_termination", "shared_to_project"})
SNAPSHOT_EXTRAS = frozenset({"user_id", "tenant_id", "links"})
TYPE_EXTRAS = frozenset({"SNF:disk_template", "SNF:detachable", "deleted"})

TABLE = Table(
    "volume",
    Difference(
        "name_keys",
        openstack=("name", "description"),
        synnefo=("display_name", "display_description"),
        why="Cinder v2 renamed v1's display_name and display_description; Cyclades (and "
        "kamaki) kept the v1 names, for volumes and snapshots.",
    ),
    Difference(
        "volume_extras",
        openstack=frozenset(),
        synnefo=VOLUME_EXTRAS,
        why="Cyclades shows a volume's project as tenant_id, whether it goes with its "
        "server, its sharing and deletion; Cinder has none of these fields.",
    ),
    Difference(
        "volume_type_ref",
        openstack="name",
        synnefo="id",
        why="A volume's volume_type is the type's name in Cinder and its id in Cyclades.",
    ),
    Difference(
        "snapshot_status",
        openstack="available",
        synnefo="AVAILABLE",
        why="Cinder's snapshot statuses are lower case, Cyclades's (Plankton's) upper case.",
    ),
    Difference(
        "snapshot_extras",
        openstack=frozenset(),
        synnefo=SNAPSHOT_EXTRAS,
        why="Cyclades shows a snapshot's owner (as user_id and tenant_id) and links.",
    ),
    Difference(
        "type_extras",
        openstack=frozenset(),
        synnefo=TYPE_EXTRAS,
        why="Cyclades puts SNF:disk_template and SNF:detachable at the top of a volume "
        "type; Cinder keeps them in extra_specs (sent on both).",
    ),
    Difference(
        "volume_in_use",
        openstack="in-use",
        synnefo="in_use",
        why="Cyclades shows a volume's status as its upper-case name lowered (IN_USE: "
        "in_use, spec §6); Cinder spells an attached volume in-use. The other statuses "
        "are one word, alike on both; a ?status= filter takes the dialect's spelling.",
    ),
)
