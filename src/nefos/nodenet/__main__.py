"""``python -m nefos.nodenet``: what the Ganeti node runs, fast to start (no nefos CLI).

- ``ifup``: the NIC in the environment Ganeti gives ``kvm-vif-bridge`` (nic.py);
- ``ifdown TAP``: remove a NIC's rules and binding (the responder does it when a TAP
  goes away; Ganeti 3.0 has no ifdown hook);
- ``responder``: the DHCPv4 / RA / DHCPv6 daemon, in the foreground;
- ``firewall``: re-apply the firewall profiles of the instance that Ganeti's
  ``instance-modify`` post hook names in the environment (firewall.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from nefos.nodenet import firewall
from nefos.nodenet.ifup import CommandFailed, ifdown, ifup
from nefos.nodenet.nic import DEFAULT_CONFIG, NicError, NodeConfig
from nefos.nodenet.responder import run_forever


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nefos.nodenet", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the node settings")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ifup", help="set up the NIC Ganeti describes in the environment")
    down = commands.add_parser("ifdown", help="remove a NIC's rules and binding")
    down.add_argument("tap", nargs="?", default=os.environ.get("INTERFACE"))
    responder = commands.add_parser("responder", help="answer DHCPv4, RS and DHCPv6")
    responder.add_argument("--pidfile", type=Path)
    commands.add_parser("firewall", help="re-apply an instance's firewall profiles (a hook)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="nefos-node: %(message)s")
    try:
        config = NodeConfig.load(args.config)
        if args.command == "ifup":
            ifup(os.environ, config)
        elif args.command == "ifdown":
            if not args.tap:
                parser.error("ifdown needs a TAP (or INTERFACE in the environment)")
            ifdown(args.tap, config)
        elif args.command == "firewall":
            firewall.refresh(os.environ, config)
        else:
            run_forever(config, args.pidfile)
    except (NicError, CommandFailed, firewall.RestoreFailed, OSError) as exc:
        print(f"nefos-node: {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
