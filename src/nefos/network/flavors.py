"""Network flavors (spec §4.2): how a network of each type reaches the wire.

One table says, for each type, its mode, where its link comes from and where its MAC
prefix comes from; the service asks it and never spells a type itself.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT, POOL, OWN = "default", "pool", "own"


@dataclass(frozen=True)
class Flavor:
    mode: str  # bridged | routed
    link: str  # "default" bridge, "mac_filtered" bridge, "pool", or "own" (snf-link-<id>)
    mac_prefix: str  # "default" prefix or from the "pool"
    node_mode: str  # how the node scripts wire it: the Ganeti tag nefos:mode:<node_mode>


FLAVORS: dict[str, Flavor] = {
    "CUSTOM": Flavor("bridged", "default", DEFAULT, "bridged"),
    "IP_LESS_ROUTED": Flavor("routed", OWN, DEFAULT, "routed"),
    "MAC_FILTERED": Flavor("bridged", "mac_filtered", POOL, "mac-filtered"),
    "PHYSICAL_VLAN": Flavor("bridged", POOL, DEFAULT, "physical-vlan"),
}


def routed_link(network_id: object) -> str:
    """The routing table of an IP_LESS_ROUTED network."""
    return f"snf-link-{network_id}"
