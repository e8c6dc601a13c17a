"""Time from a guest's boot to its DHCP lease, on a QEMU TCG guest (issue 20).

The data plane as a Ganeti node runs it: one MAC_FILTERED network with DHCP on a bridge
in a network namespace of this run, the NIC set up by nefos's ifup with the environment
Ganeti 3.0's kvm-ifup gives it, and nefos's responder. The guest is the dev guest of
``scripts/ganeti-dev.sh`` (tests/network/nodeplane.py's init, which runs udhcpc when
asked). Each run starts QEMU anew and times: QEMU started -> the guest's init running
(kernel boot, mostly TCG), then -> the lease in hand (udhcpc's DISCOVER, OFFER, REQUEST,
ACK against the responder). Root, qemu-system-x86_64 and the Ganeti dev script's tools.

    python bench/guest_lease.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# the harness the data plane tests use
from tests.network.nodeplane import (
    Guest,
    Netns,
    build_initrd,
    check_host,
    ganeti_env,
    ganeti_network,
)

BRIDGE = "nfblbr0"


def main(runs: int) -> None:
    check_host()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        kernel, initrd = build_initrd(workdir)
        ns = Netns(f"nfbl{os.getpid()}")
        ns.create()
        state = workdir / "state"
        config = workdir / "node.toml"
        config.write_text(f'state_dir = "{state}"\ndns = ["192.0.2.53"]\n')
        responder = None
        try:
            ns.run(f"ip link add {BRIDGE} type bridge")
            ns.run(f"ip link set {BRIDGE} type bridge stp_state 0 forward_delay 0")
            ns.run(f"ip link set {BRIDGE} up")
            network = ganeti_network(
                "nefos-net-1",
                ["nefos:mode:mac-filtered", "nefos:dhcp"],
                mac_prefix="aa:00:1",
                subnet="10.78.0.0/24",
            )
            tap, mac = f"nfblt{os.getpid() % 10000}", "aa:00:10:00:00:0a"
            ns.run(f"ip tuntap add {tap} mode tap")
            env = ganeti_env(
                tap=tap, instance="snf-1.vm.example.org", mac=mac, mode="bridged",
                link=BRIDGE, ip="10.78.0.10", nic_name="nefos-port-1", network=network,
            )  # fmt: skip
            ns.node(config, "ifup", env=env)
            responder = ns.popen(
                [sys.executable, "-m", "nefos.nodenet", "--config", str(config), "responder"],
                workdir / "responder.log",
            )
            print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            boots, leases, totals = [], [], []
            for run in range(runs):
                guest = Guest(ns, f"g{run}", [(tap, mac)], workdir)
                started = time.monotonic()
                guest.start(kernel, initrd)
                try:
                    guest.connect()
                    guest.wait_booted(timeout=300)
                    booted = time.monotonic()
                    status, out = guest.dhcp()
                    leased = time.monotonic()
                    if status != 0 or "10.78.0.10" not in out:
                        raise SystemExit(f"no lease: {out}")
                finally:
                    guest.stop()
                boots.append(booted - started)
                leases.append(leased - booted)
                totals.append(leased - started)
                print(
                    f"run {run + 1}: boot {booted - started:.2f} s, "
                    f"DHCP {leased - booted:.2f} s, boot -> lease {leased - started:.2f} s"
                )
            print(
                f"median of {runs}: boot {statistics.median(boots):.2f} s, "
                f"DHCP {statistics.median(leases):.2f} s, "
                f"boot -> lease {statistics.median(totals):.2f} s"
            )
            print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        finally:
            if responder is not None:
                responder.terminate()
                responder.wait(10)
            ns.delete()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    main(parser.parse_args().runs)
