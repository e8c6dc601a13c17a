"""A guest's ``dd`` on a volume served by ``nefos volumed``, beside a raw file (issue 22).

    scripts/ganeti-dev.sh guest-initramfs /var/tmp/nefos-guest     # once
    .venv/bin/python bench/volumed_guest.py [--rounds 3] [--initrd /var/tmp/nefos-guest/initrd.img]

Boots the test guest (Debian's kernel, the busybox initramfs, QEMU under TCG: this
machine's KVM boots no guest kernel) with four virtio disks, each ``cache=none``: a 1 GiB
source of random bytes, a preallocated raw file, a 10 GiB volume through volumed, and an
NBD server that stores nothing (``bench/nbd_floor.py``). In the guest, for each target in
turn, round after round:

* write: ``dd if=/dev/vda of=TARGET bs=4M count=256 iflag=direct oflag=direct
  conv=fsync`` (the source is read around the guest's cache, so the guest's CPU, slow
  under TCG, copies nothing);
* read: ``dd if=TARGET of=/dev/null bs=4M count=256 iflag=direct``.

Times come from the guest's ``/proc/uptime`` (10 ms). Prints each target's median seconds
and its throughput over the raw file's. The floor is what QEMU's NBD client costs with no
server work at all.
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path

from nbd_floor import floor_server
from served_volume import random_file, raw_file, served_volume

TARGETS = {"raw file": "/dev/vdb", "volumed": "/dev/vdc", "NBD floor": "/dev/vdd"}


class Guest:
    """The guest's shell on its serial port (``nefos.shell=ttyS0``)."""

    def __init__(self, kernel: Path, initrd: Path, disks: list[str], serial: Path):
        drives = []
        for disk in disks:
            drives += ["-drive", f"file={disk},format=raw,if=virtio,cache=none"]
        self.qemu = subprocess.Popen(
            ["qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-nographic", "-nodefaults",
             "-kernel", str(kernel), "-initrd", str(initrd),
             "-append", "console=ttyS0 nefos.shell=ttyS0 quiet",
             "-serial", f"unix:{serial},server=on,wait=off", *drives],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        while not serial.exists():
            time.sleep(0.05)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(serial))
        self.sock.settimeout(300)
        self.seen = b""
        self.wait_for(rb"NEFOS-GUEST-READY")

    def wait_for(self, pattern: bytes) -> bytes:
        while (found := re.search(pattern, self.seen)) is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("the guest's console closed")
            self.seen += chunk
        before, self.seen = self.seen[: found.end()], self.seen[found.end() :]
        return before

    def timed(self, command: str) -> float:
        """Seconds ``command`` took in the guest; its status must be 0."""
        self.sock.sendall(
            f"a=$(cat /proc/uptime); {command} >/dev/null 2>&1; s=$?; b=$(cat /proc/uptime);"
            f" echo TIMED $s $a $b\n".encode()
        )
        answer = self.wait_for(rb"TIMED \d+ [\d.]+ [\d.]+ [\d.]+ [\d.]+").decode()
        status, start, _, end, _ = answer.rsplit("TIMED ", 1)[1].split()
        if status != "0":
            raise SystemExit(f"{command} failed in the guest ({status})")
        return float(end) - float(start)

    def stop(self) -> None:
        self.qemu.kill()
        self.qemu.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    parser.add_argument("--initrd", type=Path, default=Path("/var/tmp/nefos-guest/initrd.img"))
    options = parser.parse_args()
    kernels = sorted(Path("/boot").glob("vmlinuz-*"))
    if not kernels or not options.initrd.exists() or not shutil.which("qemu-system-x86_64"):
        raise SystemExit("needs scripts/ganeti-dev.sh install, then guest-initramfs (see --help)")
    with served_volume(options.dir) as served, floor_server(served.run_dir / "f.sock") as floor:
        source = random_file(served.work / "source.raw")
        raw = raw_file(served.work / "raw.img")
        disks = [str(source), str(raw), served.uri, floor]
        started = time.perf_counter()
        guest = Guest(kernels[-1], options.initrd, disks, served.work / "serial.sock")
        try:
            print(f"guest booted in {time.perf_counter() - started:.1f} s (TCG)\n")
            times = {name: {"write": [], "read": []} for name in TARGETS}
            for _ in range(options.rounds):
                for name, device in TARGETS.items():
                    times[name]["write"].append(guest.timed(
                        f"dd if=/dev/vda of={device} bs=4M count=256 iflag=direct "
                        "oflag=direct conv=fsync"
                    ))  # fmt: skip
                    times[name]["read"].append(
                        guest.timed(f"dd if={device} of=/dev/null bs=4M count=256 iflag=direct")
                    )
        finally:
            guest.stop()
    for what in ("write", "read"):
        raw_median = statistics.median(times["raw file"][what])
        print(f"guest's dd, sequential {what} of 1 GiB (median of {options.rounds}):")
        for name in TARGETS:
            median = statistics.median(times[name][what])
            ratio = raw_median / median
            print(f"  {name:10} {median:.2f} s, throughput / the raw file's {ratio:.2f}")
        print()


if __name__ == "__main__":
    main()
