"""``nefos volumed`` against a raw local file, through QEMU's own tools (issue 22).

    .venv/bin/python bench/volumed.py [--runs 3] [--dir /var/tmp] [--random-writes 1000]
        [--only write,read,random,snapshot] [--volumed-args "--dirty-mib 64"]

Sets up a throwaway deployment (SQLite, file store under ``--dir``) and a volumed on it,
then times, ``--runs`` times each and alternating with the raw file, on the same disk:

* sequential write of 1 GiB of random bytes: ``qemu-img convert -n -t none`` into a
  10 GiB volume, and into a preallocated raw file (flushed at the end by qemu-img);
* sequential read of that 1 GiB: ``qemu-img bench -t none`` (4 MiB requests, depth 8);
* 4 KiB writes at random 4 KiB-aligned offsets of the first GiB, one at a time, then a
  flush: ``qemu-io -t writeback`` fed the commands on its standard input;
* snapshots of the 10 GiB volume (its first GiB written: 256 entries and 2,304 zero
  blocks), through volumed's control channel as Ganeti's ``snapshot`` script asks it:
  the first right after the writes (it seals the extents they left), then four more.

Prints each command, the median seconds and MiB/s or IOPS of each, and volumed/raw
ratios. Two references put the NBD hop itself on the table, each timed against the raw
file in the same way: ``--qemu-nbd``, QEMU's own NBD server (``qemu-nbd``) serving a raw
file on the same disk; ``--nbd-floor``, a server that stores nothing
(``bench/nbd_floor.py``): no NBD server can be faster here.

QEMU's NBD client writes into a unix socket whose send buffer is the kernel's
``net.core.wmem_default`` (printed first); ``--wmem-default BYTES`` sets it for the run
and puts the old value back (root; docs/volumes.md, "Tuning a node").

Needs qemu-utils (``scripts/ganeti-dev.sh install``).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

from nbd_floor import floor_server
from served_volume import GiB, MiB, random_file, raw_file, served_volume

from nefos.volume import extstorage

WMEM_DEFAULT = Path("/proc/sys/net/core/wmem_default")


def run(*args: str, stdin: bytes | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(args, input=stdin, capture_output=True, timeout=900)
    took = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{args} failed: {done.stdout[-2000:]!r} {done.stderr[-2000:]!r}")
    return took


VOLUMED_PID: list[int] = []  # the volumed being timed, for its CPU seconds


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used (Linux's /proc): on a shared machine, the
    wall time of a run varies with the neighbours' load much more than this does."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_pair(runs: int, a: list[str], b: list[str], stdin: bytes | None = None) -> tuple:
    """Medians of ``a`` and ``b`` run in turn, the median of the pairwise ratios, and
    the median CPU seconds volumed spent on each run of ``a``."""
    times_a, times_b, cpu = [], [], []
    for _ in range(runs):
        before = cpu_seconds(VOLUMED_PID[0])
        times_a.append(run(*a, stdin=stdin))
        cpu.append(cpu_seconds(VOLUMED_PID[0]) - before)
        times_b.append(run(*b, stdin=stdin))
    ratios = [x / y for x, y in zip(times_a, times_b, strict=True)]
    median = statistics.median
    return median(times_a), median(times_b), median(ratios), median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    parser.add_argument("--random-writes", type=int, default=1000)
    parser.add_argument(
        "--volumed-args", type=str.split, default=[], help="more options for volumed"
    )
    parser.add_argument(
        "--only",
        default="write,read,random,snapshot",
        help="comma-separated parts to time (read alone still writes the volume once)",
    )
    parser.add_argument(
        "--qemu-nbd", action="store_true", help="also time qemu-nbd over a raw file"
    )
    parser.add_argument(
        "--nbd-floor", action="store_true", help="also time an NBD server that stores nothing"
    )
    parser.add_argument(
        "--wmem-default", type=int, help="net.core.wmem_default for the run (bytes, root)"
    )
    options = parser.parse_args()
    old_wmem = WMEM_DEFAULT.read_text().strip()
    if options.wmem_default:
        WMEM_DEFAULT.write_text(str(options.wmem_default))
    try:
        print(f"net.core.wmem_default: {WMEM_DEFAULT.read_text().strip()} bytes")
        measure(options)
    finally:
        if options.wmem_default:
            WMEM_DEFAULT.write_text(old_wmem)


def measure(options: argparse.Namespace) -> None:
    for tool in ("qemu-img", "qemu-io"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: scripts/ganeti-dev.sh install")
    with served_volume(options.dir, options.volumed_args) as served:
        VOLUMED_PID.append(served.volumed.pid)
        work, run_dir, disk, uri = served.work, served.run_dir, served.disk, served.uri
        source, raw = random_file(work / "source.raw"), raw_file(work / "raw.img")
        print(f"volume: {uri}\nraw file: {raw} (the same file system)\n")
        # -t none: the raw file is written around the page cache (O_DIRECT), as the file
        # store writes blocks; else its 1 GiB lands in memory and only the flush waits.
        convert = ["qemu-img", "convert", "-n", "-t", "none", "-f", "raw", "-O", "raw"]
        write_v, write_r = [*convert, str(source), uri], [*convert, str(source), str(raw)]
        parts = set(options.only.split(","))
        if "write" in parts:
            report("sequential write, 1 GiB", write_v, write_r, options.runs, GiB)
        else:
            run(*write_v)
            run(*write_r)
        read = ["qemu-img", "bench", "-t", "none", "-f", "raw", "-c", "256", "-s", "4M", "-d", "8"]
        if "read" in parts:
            report("sequential read, 1 GiB", [*read, uri], [*read, str(raw)], options.runs, GiB)
        if options.qemu_nbd:
            qemu_nbd_reference(work, run_dir, source, raw, convert, read, options.runs)
        if options.nbd_floor:
            with floor_server(run_dir / "floor.sock") as floor:
                reference("an NBD server that stores nothing", floor, source, raw, convert,
                          read, options.runs)  # fmt: skip
        if "random" in parts:
            rng = random.Random(1)
            commands = "".join(
                f"write -P {rng.randrange(1, 255)} {rng.randrange(GiB // 4096) * 4096} 4k\n"
                for _ in range(options.random_writes)
            )
            script = (commands + "flush\n").encode()
            io = ["qemu-io", "-t", "writeback", "-f", "raw"]
            v, r, ratio, cpu = median_pair(options.runs, [*io, uri], [*io, str(raw)], script)
            count = options.random_writes
            print(f"random 4 KiB writes, {count} then a flush: {' '.join(io)} TARGET < commands")
            rates = (
                f"volumed {v:.2f} s ({count / v:,.0f} IOPS), raw {r:.2f} s ({count / r:,.0f} IOPS)"
            )
            print(f"  {rates}")
            print(f"  time volumed/raw {ratio:.2f}; volumed's CPU {cpu:.2f} s\n")

        snapshots = []
        for number in range(5 if "snapshot" in parts else 0):
            started = time.perf_counter()
            extstorage.request(run_dir, "snapshot", {**disk, "VOL_SNAPSHOT_NAME": f"s{number}"})
            snapshots.append(time.perf_counter() - started)
        if snapshots:
            # The first one seals the extents the runs above wrote (hashes and stores
            # them as blocks); the next ones find every entry a block already.
            first, rest = snapshots[0], snapshots[1:]
            print("snapshot of the 10 GiB volume (control channel, as Ganeti's script):")
            print(f"  first, right after the writes: {first:.3f} s")
            print(f"  next four: median {statistics.median(rest):.3f} s ({min(rest):.3f}-"
                  f"{max(rest):.3f})")  # fmt: skip


def qemu_nbd_reference(
    work: Path, run_dir: Path, source: Path, raw: Path, convert: list, read: list, runs: int
) -> None:
    """The same write and read against qemu-nbd serving a raw file, alternating with
    the raw file itself: the NBD hop's own cost, with QEMU's C server."""
    served = raw_file(work / "served.img")
    sock = run_dir / "qemu-nbd.sock"
    server = subprocess.Popen(
        ["qemu-nbd", f"--socket={sock}", "--cache=writeback", "-f", "raw", "-x", "exp",
         "-t", str(served)],
    )  # fmt: skip
    try:
        while not sock.exists():
            time.sleep(0.05)
        uri = f"nbd+unix:///exp?socket={sock}"
        reference("qemu-nbd --cache=writeback over a raw file", uri, source, raw, convert,
                  read, runs)  # fmt: skip
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def reference(
    name: str, uri: str, source: Path, raw: Path, convert: list, read: list, runs: int
) -> None:
    """The sequential write and read through ``uri``, alternating with the raw file."""
    for what, over_nbd, direct in (
        ("sequential write", [*convert, str(source), uri], [*convert, str(source), str(raw)]),
        ("sequential read", [*read, uri], [*read, str(raw)]),
    ):
        times_n, times_r = [], []
        for _ in range(runs):
            times_n.append(run(*over_nbd))
            times_r.append(run(*direct))
        ratios = [r / n for n, r in zip(times_n, times_r, strict=True)]
        n, r = statistics.median(times_n), statistics.median(times_r)
        print(f"{what}, 1 GiB, {name}:")
        print(f"  {n:.2f} s ({GiB / MiB / n:,.0f} MiB/s), raw {r:.2f} s")
        print(f"  throughput over NBD/raw {statistics.median(ratios):.2f}\n")


def report(what: str, volumed: list[str], raw: list[str], runs: int, size: int) -> None:
    v, r, ratio, cpu = median_pair(runs, volumed, raw)
    print(f"{what}: {' '.join(volumed[:-1])} TARGET")
    print(f"  volumed {v:.2f} s ({size / MiB / v:,.0f} MiB/s), raw {r:.2f} s "
          f"({size / MiB / r:,.0f} MiB/s)")  # fmt: skip
    print(f"  throughput volumed/raw {1 / ratio:.2f} (median of pairwise ratios)")
    print(f"  volumed's CPU {cpu:.2f} s per run (median)\n")


if __name__ == "__main__":
    main()
