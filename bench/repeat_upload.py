"""PUTs of bodies that repeat stored data, in part or whole, against one ``nefos up``.

nefos puts a body's MD5 off when the body looks like a copy of a stored one (its size is
a stored body's and its blocks so far are stored; ``nefos.storage.upload``), and takes
the copy's MD5 at the end. This shows what that wins and what a lost bet costs, with
python-swiftclient sending 256 MiB bodies (median of ``--repeat`` runs):

* new: random bytes;
* repeat: the same bytes again, under another name;
* first 32 MiB new: the rest as stored;
* last 32 MiB new: the same size as the stored body (a disk image changed in place):
  the bet is made and lost;
* grown by 32 MiB: the stored bytes and more, a size no stored body has: no bet.

    .venv/bin/python bench/repeat_upload.py [--repeat 3] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import swiftclient
from swift_compare import object_store_ready, start_nefos, stop_group

MiB = 1 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each body")
    parser.add_argument("--dir", default="/var/tmp", help="where the data dir goes")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nefos-repeat-upload-", dir=args.dir))
    process, target = start_nefos(root)
    try:
        problem = object_store_ready(target)
        if problem:
            raise SystemExit(f"nefos's object store is not ready: {problem}")
        conn = swiftclient.Connection(authurl=target.auth_url, user=target.user, key=target.key)
        conn.put_container("c")
        rates: dict[str, list[float]] = {}
        for run in range(args.repeat):
            base = os.urandom(256 * MiB)
            bodies = {
                "new": base,
                "repeat": base,
                "first 32 MiB new": os.urandom(32 * MiB) + base[32 * MiB :],
                "last 32 MiB new": base[: 224 * MiB] + os.urandom(32 * MiB),
                # a size of its own in each run, so no earlier run's body has it
                "grown by 32 MiB": base + os.urandom(32 * MiB + run),
            }
            for name, body in bodies.items():
                subprocess.run(["sync"], check=True)
                time.sleep(1)
                began = time.monotonic()
                conn.put_object("c", f"{name}-{run}", body)
                rates.setdefault(name, []).append(len(body) / MiB / (time.monotonic() - began))
        conn.close()
        for name, runs in rates.items():
            shown = ", ".join(f"{rate:,.0f}" for rate in runs)
            print(f"{name:18} {statistics.median(runs):6,.0f} MiB/s (runs {shown})")
    finally:
        stop_group(process)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
