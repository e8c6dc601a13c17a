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
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from nbd_floor import floor_server

from nefos.volume import extstorage

GiB = 1 << 30
NEFOS = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "nefos")


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
    work = Path(tempfile.mkdtemp(prefix="nefos-gbench-", dir=options.dir))
    run_dir = Path(tempfile.mkdtemp(prefix="ngb-", dir="/tmp"))
    env = {**os.environ, "NEFOS_DATA_DIR": str(work / "data"), "NEFOS_LOG_LEVEL": "WARNING"}
    env.pop("NEFOS_DATABASE_URL", None)
    env.pop("NEFOS_CONFIG", None)
    volumed = guest = None
    try:
        subprocess.run([NEFOS, "db", "upgrade"], env=env, check=True, capture_output=True)
        made = subprocess.run(
            [NEFOS, "user", "create", "bench@example.org"],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        owner = next(line.split()[1] for line in made.stdout.splitlines() if "uuid:" in line)
        volumed = subprocess.Popen(
            [NEFOS, "volumed", "--run-dir", str(run_dir), "--log-level", "WARNING"], env=env
        )
        while not (run_dir / extstorage.CONTROL_SOCKET).exists():
            time.sleep(0.05)
        disk = {"VOL_NAME": "bench.ext.disk0", "VOL_SIZE": str(10 * 1024), "EXTP_OWNER": owner}
        extstorage.request(run_dir, "create", disk)
        answer = extstorage.request(run_dir, "attach", disk)
        volume = f"nbd+unix:///{answer['volume']}?socket={answer['socket']}"
        source, raw = work / "source.raw", work / "raw.img"
        with source.open("wb") as sink:
            for _ in range(GiB // (64 << 20)):
                sink.write(os.urandom(64 << 20))
        subprocess.run(
            ["qemu-img", "create", "-f", "raw", "-o", "preallocation=full", str(raw), "1G"],
            check=True, capture_output=True,
        )  # fmt: skip
        with floor_server(run_dir / "floor.sock") as floor:
            started = time.perf_counter()
            guest = Guest(kernels[-1], options.initrd, [str(source), str(raw), volume, floor],
                          work / "serial.sock")  # fmt: skip
            print(f"guest booted in {time.perf_counter() - started:.1f} s (TCG)\n")
            targets = {"raw file": "/dev/vdb", "volumed": "/dev/vdc", "NBD floor": "/dev/vdd"}
            times: dict[str, dict[str, list[float]]] = {
                t: {"write": [], "read": []} for t in targets
            }
            for _ in range(options.rounds):
                for name, device in targets.items():
                    times[name]["write"].append(guest.timed(
                        f"dd if=/dev/vda of={device} bs=4M count=256 iflag=direct "
                        "oflag=direct conv=fsync"
                    ))  # fmt: skip
                    times[name]["read"].append(
                        guest.timed(f"dd if={device} of=/dev/null bs=4M count=256 iflag=direct")
                    )
            guest.stop()
        for what in ("write", "read"):
            raw_median = statistics.median(times["raw file"][what])
            print(f"guest's dd, sequential {what} of 1 GiB (median of {options.rounds}):")
            for name in targets:
                median = statistics.median(times[name][what])
                ratio = raw_median / median
                print(f"  {name:10} {median:.2f} s, throughput / the raw file's {ratio:.2f}")
            print()
    finally:
        if guest is not None:
            guest.stop()
        if volumed is not None:
            volumed.send_signal(signal.SIGTERM)
            volumed.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
