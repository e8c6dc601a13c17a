"""Where Swift and Pithos disagree on the wire (``nefos.core.dialects``).

Swift's clients and conformance suites expect 204 for account and container POST and a
listing of Swift's fields only; kamaki insists on Pithos's 202 and reads Pithos's
``x_object_*`` fields. The objects, their rights and every header Pithos adds are the
same on both endpoints.
"""

from __future__ import annotations

from nefos.core.dialects import Difference, Table

OBJECT_ITEM_EXTRAS = frozenset(
    {
        "x_object_hash",
        "x_object_uuid",
        "x_object_version",
        "x_object_version_timestamp",
        "x_object_modified_by",
    }
)
CONTAINER_ITEM_EXTRAS = frozenset({"x_container_policy"})

TABLE = Table(
    "object-store",
    Difference(
        "account_post_status",
        openstack=204,
        synnefo=202,
        why="Swift answers a metadata POST with 204 No Content; Pithos with 202 Accepted, "
        "which kamaki checks.",
    ),
    Difference(
        "container_post_status",
        openstack=204,
        synnefo=202,
        why="As for the account.",
    ),
    Difference(
        "object_item_extras",
        openstack=frozenset(),
        synnefo=OBJECT_ITEM_EXTRAS,
        why="A JSON object listing in Swift has name, hash, bytes, content_type and "
        "last_modified; Pithos adds each object's Merkle hash, UUID, version and author, "
        "which kamaki's and nf's sync read.",
    ),
    Difference(
        "container_item_extras",
        openstack=frozenset(),
        synnefo=CONTAINER_ITEM_EXTRAS,
        why="Pithos shows the owner each container's quota, versioning and project.",
    ),
)
