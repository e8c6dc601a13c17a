"""The data plane on a Ganeti node: what Synnefo's snf-network and nfdhcpd did.

Ganeti's KVM hypervisor runs ``/etc/ganeti/kvm-vif-bridge`` for each NIC it brings up,
with the NIC and its Ganeti network in the environment (``nic.py`` reads it). For a NIC
of a nefos network (a network tag ``nefos:mode:<mode>``) ``ifup.py`` attaches the TAP
(bridge or /32 route), adds the isolation and firewall rules (``rules.py``) and writes a
binding (``binding.py``) that the node's responder (``responder.py``, ``packets.py``)
answers DHCPv4, router solicitations and DHCPv6 information requests from. Any other NIC
gets Ganeti's own behaviour. ``install.py`` puts all of it on a node.

This package runs on the nodes, apart from the API: it imports nothing of nefos.
"""
