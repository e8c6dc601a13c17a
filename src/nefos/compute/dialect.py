"""Where Nova and Cyclades disagree on the wire (``nefos.core.dialects``).

The OpenStack dialect sends what Nova's API reference defines at microversion 2.1 and
nothing more, because strict clients (tempest's schemas) refuse unknown fields; Synnefo's
extras go to the Synnefo dialect only. Data and behaviour are the same on both.
"""

from __future__ import annotations

from nefos.core.dialects import Difference, Table

# Fields of the server document that Nova 2.1 does not define.
SERVER_EXTRAS = frozenset(
    {
        "SNF:task_state",
        "SNF:key_names",
        "shared_to_project",
        "attachments",
        "volumes",
        "deleted",
        "suspended",
        "diagnostics",
        "tags",
    }
)
FLAVOR_EXTRAS = frozenset(
    {"SNF:disk_template", "SNF:allow_create", "SNF:volume_type", "SNF:flavor-access"}
)
IMAGE_EXTRAS = frozenset({"user_id", "tenant_id", "is_public"})

TABLE = Table(
    "compute",
    Difference(
        "stopped_status",
        openstack="SHUTOFF",
        synnefo="STOPPED",
        why="Nova calls a stopped server SHUTOFF (openstacksdk waits for it); Cyclades and "
        "kamaki's `server wait` call it STOPPED. The same name is taken in `?status=`.",
    ),
    Difference(
        "server_extras",
        openstack=frozenset(),
        synnefo=SERVER_EXTRAS,
        why="Synnefo's task state, key names, diagnostics and attachments; Nova 2.1 has "
        "OS-EXT-STS:task_state and key_name instead.",
    ),
    Difference(
        "server_security_groups",
        openstack="profiles",
        synnefo="default",
        why="Nova names the security groups of the server's ports, which nefos's are the "
        "firewall profiles of its NICs (protected, limited, unprotected); Cyclades "
        'always shows [{"name": "default"}].',
    ),
    Difference(
        "flavor_extras",
        openstack=frozenset(),
        synnefo=FLAVOR_EXTRAS,
        why="Cyclades's disk template, creation flag and per-project access on flavors.",
    ),
    Difference(
        "image_extras",
        openstack=frozenset(),
        synnefo=IMAGE_EXTRAS,
        why="Cyclades shows an image's owner and visibility in the compute image document.",
    ),
)
