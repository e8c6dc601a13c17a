"""Where Swift and Pithos disagree on the wire (``nefos.core.dialects``).

Swift's clients and conformance suites expect 204 for account and container POST, a
listing of Swift's fields only, metadata values as the UTF-8 they sent, and Swift's
``path`` listing; kamaki insists on Pithos's 202, reads Pithos's ``x_object_*`` fields
and percent-encoded values. The objects, their rights and every header Pithos adds are
the same on both endpoints.
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
    Difference(
        "meta_value_encoding",
        openstack="utf-8",
        synnefo="percent",
        why="Swift takes and gives back a metadata value as the bytes sent (UTF-8, a % is a "
        "%); Pithos percent-decodes what it is sent and percent-encodes non-ASCII values "
        "(spec 1.1), as kamaki sends and reads them.",
    ),
    Difference(
        "path_lists_subdirs",
        openstack=False,
        synnefo=True,
        why="Swift's ?path=X lists the objects directly below X only; Pithos's is prefix X/ "
        "with delimiter / (spec 1.4), so it also lists the virtual directories below X.",
    ),
    Difference(
        "bad_name_status",
        openstack=412,
        synnefo=400,
        why="A name that is not UTF-8 or holds a NUL: Swift says 412 'Invalid UTF8 or "
        "contains NULL'; Pithos 400, as spec 1.1 lists bad input.",
    ),
)
