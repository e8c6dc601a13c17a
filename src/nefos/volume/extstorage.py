"""The ``nefos`` ExtStorage provider for Ganeti's ``ext`` disk template, and its installer.

Ganeti runs one executable per action (``create attach detach remove grow setinfo
verify snapshot``) with the volume in its environment: ``VOL_NAME`` (Ganeti's unique
name for the disk), ``VOL_SIZE`` / ``VOL_NEW_SIZE`` in MiB, ``VOL_SNAPSHOT_NAME``,
``VOL_METADATA``, and every disk parameter as ``EXTP_<NAME>``. Each script here sends
its action and that environment to the node's ``nefos volumed`` over its root-only
control socket and prints what Ganeti expects; volumed does the work as an
administrator of volumes (``nefos.volume.volumed``). The scripts import nothing but the
standard library, so Ganeti's frequent ``attach`` calls cost a Python start, not a
nefos start.

Which nefos volume a Ganeti disk is: the disk parameter ``volume=<id>`` when nefos made
the volume itself (its API), else a volume whose id is derived from ``VOL_NAME``
(UUID 5), so every script of the same disk, on any node, finds the same volume and no
table is needed. ``create`` of a new one needs ``owner=<user id>`` (who is charged
``cyclades.disk``), unless ``origin`` is a volume, whose owner it then takes. ``origin``
is a volume (clone) or an image or snapshot (a map over its blocks): no data is copied.

``attach`` prints an empty first line (no host block device) and
``kvm:nbd:unix:<socket>:exportname=<volume id>``, which Ganeti's KVM hands QEMU as the
drive's file with the disk parameter ``access=userspace``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import uuid
from pathlib import Path

DEFAULT_RUN_DIR = Path("/run/nefos/volumed")
DEFAULT_TARGET = Path("/srv/ganeti/extstorage")  # first in Ganeti's search path
DEFAULT_NAME = "nefos"
GANETI_LOG_DIR = Path("/var/log/ganeti")  # Ganeti logs each action under extstorage/
SYSCTL_CONF = Path("/etc/sysctl.d/60-nefos-volumed.conf")
WMEM_DEFAULT = Path("/proc/sys/net/core/wmem_default")
SEND_BUFFER = 4 << 20  # QEMU's NBD socket then takes a whole block's write in one send
NBD_SOCKET = "nbd.sock"
CONTROL_SOCKET = "control.sock"
RUN_DIR_ENV = "NEFOS_VOLUMED_RUN_DIR"
ACTIONS = ("create", "attach", "detach", "remove", "grow", "setinfo", "verify", "snapshot")
PARAMETERS = {
    "volume": "the nefos volume this disk is (made by the nefos API); else one is made",
    "owner": "the user id a new volume belongs to and is charged to",
    "origin": "a volume to clone, or an image or snapshot to start from (no data copied)",
}
# Ganeti's disk names map to volume ids in this namespace (UUID 5 of VOL_NAME).
GANETI_NAMESPACE = uuid.UUID("3c9f6f0e-4a7e-5b53-9d2b-6e65666f7331")
TIMEOUT = 120.0  # a create from a large image, or a snapshot, is one transaction


class Refused(Exception):
    """volumed (or this script) refuses the action; the message says why."""


def volume_id_for(env: dict[str, str]) -> uuid.UUID:
    """The nefos volume a Ganeti disk is (see the module docstring)."""
    given = env.get("EXTP_VOLUME")
    if given:
        try:
            return uuid.UUID(given)
        except ValueError:
            raise Refused(f"EXTP_VOLUME is not a volume id: {given!r}") from None
    name = env.get("VOL_NAME")
    if not name:
        raise Refused("VOL_NAME is not set: run by Ganeti, or set it by hand")
    return uuid.uuid5(GANETI_NAMESPACE, name)


def request(run_dir: Path, action: str, env: dict[str, str]) -> dict[str, object]:
    """Ask the node's volumed; its answer, or Refused."""
    ganeti = {k: v for k, v in env.items() if k.startswith(("VOL_", "EXTP_"))}
    path = Path(run_dir) / CONTROL_SOCKET
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(str(path))
            sock.sendall(json.dumps({"action": action, "env": ganeti}).encode() + b"\n")
            raw = b""
            while not raw.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                raw += chunk
    except OSError as exc:
        raise Refused(f"cannot reach nefos volumed at {path}: {exc}") from None
    try:
        answer = json.loads(raw)
    except ValueError:
        raise Refused(f"nefos volumed answered {raw[:200]!r}") from None
    if not answer.get("ok"):
        raise Refused(str(answer.get("error")))
    return dict(answer)


def attach_lines(answer: dict[str, object]) -> str:
    """What ``attach`` prints for Ganeti: no block device, one KVM userspace URI (QEMU's
    legacy NBD syntax: Ganeti splits ``-drive`` options at commas, this has none)."""
    return f"\nkvm:nbd:unix:{answer['socket']}:exportname={answer['volume']}\n"


def main() -> None:
    """The entry point of every installed script; the action is the script's name."""
    action = Path(sys.argv[0]).name
    run_dir = Path(os.environ.get(RUN_DIR_ENV) or DEFAULT_RUN_DIR)
    try:
        if action not in ACTIONS:
            raise Refused(f"{action!r} is not an ExtStorage action of nefos")
        answer = request(run_dir, action, dict(os.environ))
    except Refused as exc:
        print(f"nefos {action}: {exc}", file=sys.stderr)
        sys.exit(1)
    if action == "attach":
        sys.stdout.write(attach_lines(answer))
    else:
        print(f"nefos {action}: {json.dumps(answer)}", file=sys.stderr)  # Ganeti's log


def install(
    target: Path = DEFAULT_TARGET,
    name: str = DEFAULT_NAME,
    run_dir: Path = DEFAULT_RUN_DIR,
    python: str = sys.executable,
    log_dir: Path = GANETI_LOG_DIR,
) -> Path:
    """Write the provider to ``target/name``: one small script per action running this
    Python (which has nefos installed), and ``parameters.list``. Each file is replaced
    by a rename, so Ganeti running a script meanwhile sees the old one or the new, and
    installing again changes nothing else. Ganeti refuses every action but attach
    without its log folder ``extstorage/``, which its packages do not create: it is
    made here on a node with Ganeti's log directory."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"{name!r} is not a provider name (no '/' or leading '.')")
    folder = Path(target) / name
    folder.mkdir(parents=True, exist_ok=True)
    if Path(log_dir).is_dir():
        (Path(log_dir) / "extstorage").mkdir(mode=0o750, exist_ok=True)
    script = (
        f"#!{python}\n"
        "# nefos's ExtStorage provider: `nefos ganeti install-extstorage` wrote this.\n"
        "import os\n"
        f"os.environ.setdefault({RUN_DIR_ENV!r}, {str(run_dir)!r})\n"
        "from nefos.volume.extstorage import main\n"
        "main()\n"
    )
    files = {action: (script, 0o755) for action in ACTIONS}
    listing = "".join(f"{key} {about}\n" for key, about in PARAMETERS.items())
    files["parameters.list"] = (listing, 0o644)
    for filename, (text, mode) in files.items():
        _replace(folder / filename, text, mode)
    return folder


def _replace(path: Path, text: str, mode: int) -> None:
    """``path`` holds ``text``, swapped in by a rename: a reader sees old or new."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as sink:
            sink.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def tune_socket_buffers(conf: Path = SYSCTL_CONF, live: Path = WMEM_DEFAULT) -> list[str]:
    """Raise the node's default socket send buffer to ``SEND_BUFFER``, now and at boot
    (a sysctl.d file); a larger one is left alone. Returns what changed.

    QEMU's NBD client never sizes its socket's send buffer, so the kernel's default
    (208 KiB on Debian) caps each send: a 4 MiB write reaches volumed in about twenty
    pieces, each a wakeup on both sides, and that round trip, not the disk, set the pace
    of sequential writes (bench/RESULTS.md: a fifth faster with 4 MiB). The setting is
    the default of every new socket on the node that does not size its own; memory is
    taken only by data waiting in a socket."""
    changed = []
    text = (
        "# nefos volumed: QEMU's NBD socket takes a 4 MiB write in one send\n"
        "# (written by `nefos ganeti install-extstorage`; docs/volumes.md, Tuning a node)\n"
        f"net.core.wmem_default = {SEND_BUFFER}\n"
    )
    if not conf.is_file() or conf.read_text() != text:
        conf.parent.mkdir(parents=True, exist_ok=True)
        _replace(conf, text, 0o644)
        changed.append(str(conf))
    current = int(live.read_text())
    if current < SEND_BUFFER:
        live.write_text(f"{SEND_BUFFER}\n")
        changed.append(f"net.core.wmem_default {current} -> {SEND_BUFFER}")
    return changed
