"""A NIC's firewall profile changed while its guest runs: re-apply it on the node.

Ganeti runs no hook when tags change, so nefos follows the tag change with a modify
job that changes nothing (the OS name the instance already has; Synnefo did the
same), and Ganeti runs the ``instance-modify`` post hooks on the instance's nodes. The
hook (``python -m nefos.nodenet firewall``) reads the instance's tags and NICs from the
hook environment, finds the TAPs bound to that instance on this node, and replaces
each one's ``nefos-fw-<tap>`` chain in one ``iptables-restore --noflush`` per family:
the old rules hold until the new ones are in, so the NIC is never unfiltered.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping
from dataclasses import replace

from nefos.nodenet import binding, rules
from nefos.nodenet.binding import Binding
from nefos.nodenet.nic import Nic, NodeConfig, firewall_profile

log = logging.getLogger("nefos.nodenet")
FAMILIES = (("iptables", "icmp"), ("ip6tables", "ipv6-icmp"))


class RestoreFailed(RuntimeError):
    """iptables-restore refused the new chain: the old one is still in place."""


def hook_env(env: Mapping[str, str], key: str) -> str:
    """A value of Ganeti's hook environment, as it is after the job (post phase)."""
    return env.get(f"GANETI_POST_{key}", env.get(f"GANETI_{key}", ""))


def refresh(env: Mapping[str, str], config: NodeConfig) -> list[str]:
    """Re-apply the profiles of the instance the hook environment names; the TAPs whose
    profile changed."""
    instance = hook_env(env, "INSTANCE_NAME")
    tags = hook_env(env, "INSTANCE_TAGS").split()
    names = {}
    for index in range(int(hook_env(env, "INSTANCE_NIC_COUNT") or 0)):
        mac = hook_env(env, f"INSTANCE_NIC{index}_MAC").lower()
        names[mac] = hook_env(env, f"INSTANCE_NIC{index}_NAME")
    changed = []
    directory = config.bindings_dir
    for tap, seen in binding.read_all(directory).items():
        if not instance or seen.instance != instance or seen.mac not in names:
            continue
        profile = firewall_profile(tags, names[seen.mac])
        with binding.locked(directory, tap):
            current = binding.read(directory, tap)
            if current is None or current.ifindex != seen.ifindex:
                continue  # the TAP went (or is another NIC's now) meanwhile
            if current.firewall == profile:
                continue
            binding.write(directory, apply(current, profile))
        log.info("firewall of %s (%s): %s", tap, instance, profile or "none")
        changed.append(tap)
    return changed


def apply(bound: Binding, profile: str | None) -> Binding:
    """Give the TAP of ``bound`` the chain of ``profile`` (None: no chain); the binding
    with its new profile and undo list."""
    nic = _nic(bound, profile)
    _, _, chain = rules.chains(bound.tap)
    kept = [undo for undo in bound.undo if chain not in undo]
    had_chain = len(kept) != len(bound.undo)
    if profile is None:
        for undo in bound.undo:
            if chain in undo:
                subprocess.run(undo, capture_output=True)
        return replace(bound, firewall=None, undo=kept)
    steps = rules.firewall(nic)
    for tool, icmp in FAMILIES:
        lines = ["*filter", f":{chain} - [0:0]"]  # declared: made, or emptied in the same commit
        lines += [" ".join(("-A", chain, *rule)) for rule in rules.profile_rules(profile, icmp)]
        if not had_chain:
            jump = next(s.run for s in steps if s.run[0] == tool and s.run[1] == "-I")
            lines.append(" ".join(jump[1:]))
        lines.append("COMMIT")
        done = subprocess.run(
            [f"{tool}-restore", "--noflush"],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RestoreFailed(f"{tool}-restore: {done.stderr.strip() or done.returncode}")
    undo = [list(step.undo) for step in reversed(steps) if step.undo is not None]
    return replace(bound, firewall=profile, undo=undo + kept)


def _nic(bound: Binding, profile: str | None) -> Nic:
    """As much of the NIC as its firewall rules need (how it is attached, its TAP)."""
    bridged = bound.router_dev != bound.tap
    return Nic(
        tap=bound.tap,
        instance=bound.instance,
        mac=bound.mac,
        ganeti_mode="bridged" if bridged else "routed",
        link=bound.router_dev,
        mode=bound.mode,
        firewall=profile,
    )
