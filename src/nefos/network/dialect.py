"""Where Neutron and Cyclades's network API disagree on the wire (``nefos.core.dialects``).

The OpenStack dialect sends Neutron's fields and nothing more; Synnefo's extras (the
network's type, owner and pool flags; ids of users) go to the Synnefo dialect only.
Input is the same on both: ``type`` is taken in a network create on either endpoint,
except a port update that names the port's own network (kamaki's ``port modify``).
"""

from __future__ import annotations

from nefos.core.dialects import Difference, Table

NETWORK_EXTRAS = frozenset(
    {"type", "public", "user_id", "SNF:floating_ip_pool", "shared_to_project", "links"}
)
SUBNET_EXTRAS = frozenset({"user_id", "public", "enable_slaac", "links"})
PORT_EXTRAS = frozenset({"user_id", "links"})
FLOATING_IP_EXTRAS = frozenset({"user_id", "instance_id", "shared_to_project"})

TABLE = Table(
    "network",
    Difference(
        "network_extras",
        openstack=frozenset(),
        synnefo=NETWORK_EXTRAS,
        why="Cyclades shows a network's flavor (type), whether it is public or a floating "
        "IP pool, its owner and its sharing; Neutron has none of these fields.",
    ),
    Difference(
        "subnet_extras",
        openstack=frozenset(),
        synnefo=SUBNET_EXTRAS,
        why="Cyclades shows a subnet's owner, whether it is public, and SLAAC as a flag "
        "(Neutron says ipv6_address_mode instead).",
    ),
    Difference(
        "port_extras",
        openstack=frozenset(),
        synnefo=PORT_EXTRAS,
        why="Cyclades shows a port's owner and links.",
    ),
    Difference(
        "floating_ip_extras",
        openstack=frozenset(),
        synnefo=FLOATING_IP_EXTRAS,
        why="Cyclades shows a floating IP's owner, the server it is on and its sharing.",
    ),
    Difference(
        "fixed_ip_subnet_key",
        openstack="subnet_id",
        synnefo="subnet",
        why="A port's fixed_ips name their subnet as subnet_id in Neutron and as subnet "
        "in Cyclades.",
    ),
    Difference(
        "floating_ip_create_status",
        openstack=201,
        synnefo=200,
        why="Neutron creates a floating IP with 201; Cyclades allocates one with 200, the "
        "only status kamaki's create_floatingip accepts (kamaki ip create).",
    ),
    Difference(
        "port_update_network_id",
        openstack=400,
        synnefo=200,
        why="A port update naming the port's own network_id: Neutron refuses the read-only "
        "attribute; Cyclades ignores it, and kamaki's port modify always sends it back.",
    ),
    Difference(
        "no_device_id",
        openstack="",
        synnefo=None,
        why='A port with no device: Neutron says device_id "", Cyclades null.',
    ),
)
