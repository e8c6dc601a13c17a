"""Put the data plane on a Ganeti node: the hooks Ganeti runs, the node's settings, the
responder. Each part is rewritten only when it differs, so a second run changes nothing
(the responder restarts only if its settings changed or it is not running).

Ganeti 3.0's ``/usr/lib/ganeti/kvm-ifup`` execs ``<conf dir>/kvm-vif-bridge`` when that
is executable, instead of its own bridge and route set-up; the hook runs nefos's ifup for
NICs of nefos networks and Ganeti's own functions (``net-common``) for every other NIC,
so instances that nefos did not make keep Ganeti's behaviour. The ``instance-modify``
post hook re-applies a NIC's firewall profile when it changes (``firewall.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nefos.nodenet.nic import NodeConfig

MARKER = "nefos-node-network"
GANETI_DIR = Path("/etc/ganeti")
NET_COMMON = Path("/usr/lib/ganeti/net-common")
PIDFILE = Path("/run/nefos/node-responder.pid")
LOGFILE = Path("/var/log/nefos/node-responder.log")
SYSCTLS = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")


class InstallError(RuntimeError):
    """Something on the node prevents the install; nothing of ours is half-written."""


@dataclass(frozen=True)
class Installed:
    hook: Path
    config: Path
    responder_pid: int | None
    changed: list[str]


def hook_script(python: str, config_path: Path, net_common: Path) -> str:
    return f"""#!/bin/bash
# {MARKER}: written by `nefos ganeti install-network`; it rewrites this file.
# Ganeti's kvm-ifup runs this for every NIC it brings up. A NIC of a nefos network
# (network tag nefos:mode:*) gets nefos's data plane; any other gets what kvm-ifup
# itself does without this file.
case " ${{NETWORK_TAGS:-}} " in
*" nefos:mode:"*) exec {python} -m nefos.nodenet --config {config_path} ifup ;;
esac
source {net_common}
check
if ! is_instance_communication_tap; then
  setup_bridge
  setup_ovs
  setup_route
fi
"""


def firewall_hook_script(python: str, config_path: Path) -> str:
    return f"""#!/bin/bash
# {MARKER}: written by `nefos ganeti install-network`; it rewrites this file.
# Ganeti runs this after every instance modify, on the instance's nodes: nefos follows
# a firewall tag change with one, so the NICs' chains here take the new profile.
exec {python} -m nefos.nodenet --config {config_path} firewall
"""


def install(
    settings: NodeConfig,
    config_path: Path,
    ganeti_dir: Path = GANETI_DIR,
    start: bool = True,
    force: bool = False,
    pidfile: Path = PIDFILE,
    logfile: Path = LOGFILE,
    python: str = sys.executable,
) -> Installed:
    if not NET_COMMON.exists():
        raise InstallError(f"{NET_COMMON} is missing: is Ganeti 3 installed on this node?")
    hook = ganeti_dir / "kvm-vif-bridge"
    if hook.exists() and MARKER not in hook.read_text(errors="replace") and not force:
        raise InstallError(f"{hook} exists and is not nefos's: move it away or pass --force")
    changed = []
    if _write(hook, hook_script(python, config_path, NET_COMMON), 0o755):
        changed.append(str(hook))
    modify_hook = ganeti_dir / "hooks" / "instance-modify-post.d" / "nefos-firewall"
    if _write(modify_hook, firewall_hook_script(python, config_path), 0o755):
        changed.append(str(modify_hook))
    config_changed = _write(config_path, settings.to_toml(), 0o644)
    if config_changed:
        changed.append(str(config_path))
    settings.bindings_dir.mkdir(parents=True, exist_ok=True)
    for key in SYSCTLS:
        _sysctl(key)
    pid = running(pidfile)
    if start:
        if pid is not None and config_changed:
            stop(pidfile)
            pid = None
        if pid is None:
            pid = _start(python, config_path, pidfile, logfile)
            changed.append(f"responder (pid {pid})")
    return Installed(hook, config_path, pid, changed)


def running(pidfile: Path) -> int | None:
    """The responder's pid if the pid file names a live responder."""
    try:
        pid = int(pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"nefos.nodenet" in cmdline and b"responder" in cmdline else None


def stop(pidfile: Path, timeout: float = 5.0) -> bool:
    pid = running(pidfile)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    return True


def _start(python: str, config_path: Path, pidfile: Path, logfile: Path) -> int:
    logfile.parent.mkdir(parents=True, exist_ok=True)
    command = [
        python,
        "-m",
        "nefos.nodenet",
        "--config",
        str(config_path),
        "responder",
        "--pidfile",
        str(pidfile),
    ]
    with open(logfile, "a") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if running(pidfile) == process.pid:
            return process.pid
        if process.poll() is not None:
            raise InstallError(f"the responder exited ({process.returncode}); see {logfile}")
        time.sleep(0.05)
    raise InstallError(f"the responder did not start; see {logfile}")


def _write(path: Path, text: str, mode: int) -> bool:
    try:
        if path.read_text() == text and (path.stat().st_mode & 0o777) == mode:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.chmod(mode)
    os.replace(temporary, path)
    return True


def _sysctl(key: str) -> None:
    """Bridged packets through iptables (the firewall chains see them); absent where the
    kernel has no bridge netfilter, which the firewall then cannot work without."""
    target = Path("/proc/sys") / key.replace(".", "/")
    try:
        if target.read_text().strip() != "1":
            target.write_text("1\n")
    except FileNotFoundError:
        raise InstallError(f"{key} is missing: the kernel has no bridge netfilter") from None
