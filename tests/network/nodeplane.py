"""What the data plane tests run on: a network namespace of their own, QEMU TCG guests
with a shell on their serial port, and nefos's node scripts called as Ganeti calls them.

The guests boot the stock kernel with the busybox initramfs of ``scripts/ganeti-dev.sh
guest-initramfs`` plus a second archive whose ``/init`` loads the same modules and hands
ttyS0 to a shell; the test writes commands to the serial socket and reads each one's
output up to a marker with its exit status.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI") == "true"
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ganeti-dev.sh"
TOOLS = ("ip", "ebtables", "iptables", "ip6tables", "qemu-system-x86_64", "busybox")

GUEST_INIT = """#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /modules.order); do insmod "/lib/modules/$module.ko" 2>/dev/null; done
ip link set lo up
for nic in /sys/class/net/eth*; do ip link set "${nic##*/}" up; done
stty -F /dev/ttyS0 -echo 2>/dev/null
echo "@@BOOTED $(cat /sys/class/net/eth0/address)" >/dev/ttyS0
# one command per line, its stdin not the serial port (no prompt, no line editing)
while read -r line; do eval "$line" </dev/null; done </dev/ttyS0 >/dev/ttyS0 2>&1
"""

# udhcpc's script: configure eth0 and say what the lease was.
UDHCPC_SCRIPT = """#!/bin/sh
case $1 in
bound|renew)
    ip addr flush dev $interface
    ip addr add $ip/$mask dev $interface
    [ -n "$router" ] && ip route replace default via $router
    echo "@@LEASE ip=$ip mask=$mask router=${router:-none} dns=${dns:-none}" \
        "hostname=${hostname:-none} server=$serverid"
    ;;
esac
exit 0
"""


def unavailable(reason: str) -> None:
    """Fail in CI, where the data plane is part of the suite; skip anywhere else."""
    if IN_CI:
        pytest.fail(f"the data plane tests need this in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def check_host() -> None:
    if os.geteuid() != 0:
        unavailable("the data plane tests make network namespaces and TAPs: they need root")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        unavailable(f"missing {', '.join(missing)} (scripts/ganeti-dev.sh install)")


def _cpio_newc(files: Mapping[str, tuple[int, bytes]]) -> bytes:
    out = io.BytesIO()
    for number, (name, (mode, data)) in enumerate([*files.items(), ("TRAILER!!!", (0, b""))]):
        encoded = name.encode() + b"\x00"
        fields = [number + 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out.write(b"070701" + b"".join(f"{v:08x}".encode() for v in fields) + encoded)
        out.write(b"\x00" * (-(110 + len(encoded)) % 4))
        out.write(data + b"\x00" * (-len(data) % 4))
    return out.getvalue()


def build_initrd(directory: Path) -> tuple[Path, Path]:
    """(kernel, initrd): the dev script's guest with our /init appended."""
    done = subprocess.run(
        ["bash", str(SCRIPT), "guest-initramfs", str(directory / "base")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode:
        unavailable(f"cannot build the guest initramfs: {done.stderr.strip()[-500:]}")
    values = dict(line.split("=", 1) for line in done.stdout.split() if "=" in line)
    kernel, base = Path(values["KERNEL"]), Path(values["INITRD"])
    extra = _cpio_newc(
        {
            "init": (0o100755, GUEST_INIT.encode()),
            "udhcpc.sh": (0o100755, UDHCPC_SCRIPT.encode()),
        }
    )
    initrd = directory / "initrd-dataplane.img"
    initrd.write_bytes(base.read_bytes() + gzip.compress(extra, compresslevel=1))
    return kernel, initrd


class Netns:
    def __init__(self, name: str) -> None:
        self.name = name

    def create(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        self.run("true", netns=False, argv=["ip", "netns", "add", self.name])
        self.run("ip link set lo up")

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def run(
        self,
        command: str = "",
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        netns: bool = True,
        argv: list[str] | None = None,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess[str]:
        args = argv if argv is not None else command.split()
        if netns:
            args = ["ip", "netns", "exec", self.name, *args]
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
        if check and done.returncode:
            raise AssertionError(f"{' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def popen(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.name, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )

    def node(
        self, config: Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``python -m nefos.nodenet``, here."""
        return self.run(
            argv=[sys.executable, "-m", "nefos.nodenet", "--config", str(config), *args],
            env=env,
            check=check,
        )

    def rules(self) -> str:
        """Every rule and route a NIC could leave: compared before and after."""
        parts = []
        for command in (
            "ebtables -L",
            "iptables -S",
            "ip6tables -S",
            "ip rule",
            "ip -6 rule",
            "ip route show table all",
            "ip -6 route show table all",
        ):
            listing = self.run(command).stdout
            if "route" in command:  # the kernel's own routes of the guests' TAPs come and go
                listing = "\n".join(
                    line
                    for line in listing.splitlines()
                    if " proto kernel" not in line
                    and "local " not in line
                    and "multicast" not in line
                    and "fe80::" not in line
                )
            parts.append(f"## {command}\n{listing}")
        return "\n".join(parts)


def ganeti_env(
    *,
    tap: str,
    instance: str,
    mac: str,
    mode: str,
    link: str,
    ip: str | None,
    index: int = 0,
    nic_name: str = "",
    instance_tags: list[str] | None = None,
    network: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Exactly what Ganeti 3.0's ``hv_base.ConfigureNIC`` passes its script."""
    env = {
        "PATH": f"{os.environ['PATH']}:/sbin:/usr/sbin",
        "INSTANCE": instance,
        "MAC": mac,
        "MODE": mode,
        "INTERFACE": tap,
        "INTERFACE_INDEX": str(index),
        "INTERFACE_UUID": f"00000000-0000-4000-8000-{abs(hash(tap)) % 10**12:012d}",
        "TAGS": " ".join(instance_tags or []),
    }
    if ip:
        env["IP"] = ip
    if nic_name:
        env["INTERFACE_NAME"] = nic_name
    env["LINK"] = link
    env.update(network or {})
    if mode == "bridged":
        env["BRIDGE"] = link
    return env


def ganeti_network(name: str, tags: list[str], **fields: str) -> dict[str, str]:
    """``Network.HooksDict()``: NETWORK_NAME, _UUID, _TAGS and the fields it has."""
    env = {
        "NETWORK_NAME": name,
        "NETWORK_UUID": f"11111111-0000-4000-8000-{abs(hash(name)) % 10**12:012d}",
        "NETWORK_TAGS": " ".join(tags),
    }
    env.update({f"NETWORK_{key.upper()}": value for key, value in fields.items()})
    return env


class Guest:
    """A QEMU TCG guest on one TAP, driven through a shell on its serial port."""

    def __init__(self, netns: Netns, name: str, nics: list[tuple[str, str]], workdir: Path) -> None:
        """``nics``: (TAP, MAC) of eth0, eth1, ..."""
        self.netns, self.name, self.nics = netns, name, nics
        self.socket_path = workdir / f"{name}.serial"
        self.log = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.seen = b""  # everything read, for failure messages
        self.counter = 0

    def start(self, kernel: Path, initrd: Path) -> None:
        nics = []
        for i, (tap, mac) in enumerate(self.nics):
            nics += ["-netdev", f"tap,id=n{i},ifname={tap},script=no,downscript=no"]
            nics += ["-device", f"virtio-net-pci,netdev=n{i},mac={mac}"]
        command = ["qemu-system-x86_64", "-accel", "tcg", "-smp", "1", "-m", "160"]
        command += ["-nodefaults", "-display", "none", "-no-reboot"]
        command += ["-kernel", str(kernel), "-initrd", str(initrd)]
        command += ["-append", "console=ttyS0 quiet panic=-1"]
        command += ["-chardev", f"socket,id=s0,path={self.socket_path},server=on,wait=off"]
        self.process = self.netns.popen([*command, "-serial", "chardev:s0", *nics], self.log)

    def connect(self, timeout: float = 30) -> None:
        """Open the serial socket at once: QEMU drops what the guest prints before."""
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(str(self.socket_path))
                return
            except OSError:
                self.sock.close()
                exited = self.process is not None and self.process.poll() is not None
                if exited or time.monotonic() > deadline:
                    raise AssertionError(
                        f"{self.name}: no serial: {self.log.read_text()}"
                    ) from None
                time.sleep(0.05)

    def wait_booted(self, timeout: float) -> None:
        self.read_until(rb"@@BOOTED", timeout)

    def read_until(self, pattern: bytes, timeout: float) -> re.Match[bytes]:
        assert self.sock is not None
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.buffer)
            if found:
                self.buffer = self.buffer[found.end() :]
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no {pattern!r} in: {self.seen[-3000:]!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                raise AssertionError(f"{self.name}: serial closed: {self.seen[-3000:]!r}")
            self.buffer += chunk
            self.seen += chunk

    def sh(self, command: str, timeout: float = 30) -> tuple[int, str]:
        """Run ``command`` in the guest's shell: (exit status, output)."""
        assert self.sock is not None
        self.counter += 1
        marker = f"@@DONE-{self.counter}"
        self.sock.sendall(f"{command}; echo {marker} $?\n".encode())
        found = self.read_until(rf"(?s)(.*?){marker} (\d+)".encode(), timeout)
        return int(found.group(2)), found.group(1).decode(errors="replace").replace("\r", "")

    def dhcp(self, nic: str = "eth0", timeout: float = 40) -> tuple[int, str]:
        return self.sh(f"udhcpc -i {nic} -s /udhcpc.sh -t 8 -T 2 -A 3 -n -q", timeout)

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
