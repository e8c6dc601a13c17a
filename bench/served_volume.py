"""What the volume benches stand on: a throwaway deployment, its ``nefos volumed`` and
one volume attached to it, plus the files they time it against."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nefos.volume import extstorage

MiB = 1 << 20
GiB = 1 << 30
NEFOS = str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "nefos")


@dataclass
class Served:
    work: Path  # the deployment's data, and room for the benches' own files
    run_dir: Path  # volumed's sockets
    volumed: subprocess.Popen[bytes]
    disk: dict[str, str]  # the volume as Ganeti's scripts name it (the control channel)
    uri: str  # the volume for QEMU


@contextlib.contextmanager
def served_volume(base: Path, volumed_args: list[str] | None = None) -> Iterator[Served]:
    """A deployment on SQLite and a file store under ``base``, its volumed, and a 10 GiB
    volume attached, made through the control channel as Ganeti's ``create`` and
    ``attach`` scripts make it; all of it removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="nefos-vbench-", dir=base))
    run_dir = Path(tempfile.mkdtemp(prefix="nvb-", dir="/tmp"))  # short: a socket's path
    env = {**os.environ, "NEFOS_DATA_DIR": str(work / "data"), "NEFOS_LOG_LEVEL": "WARNING"}
    env.pop("NEFOS_DATABASE_URL", None)
    env.pop("NEFOS_CONFIG", None)
    volumed = None
    try:
        subprocess.run([NEFOS, "db", "upgrade"], env=env, check=True, capture_output=True)
        made = subprocess.run(
            [NEFOS, "user", "create", "bench@example.org"],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        owner = next(line.split()[1] for line in made.stdout.splitlines() if "uuid:" in line)
        volumed = subprocess.Popen(
            [NEFOS, "volumed", "--run-dir", str(run_dir), "--log-level", "WARNING",
             *(volumed_args or [])],
            env=env,
        )  # fmt: skip
        while not (run_dir / extstorage.CONTROL_SOCKET).exists():
            if volumed.poll() is not None:
                raise SystemExit("volumed did not start")
            time.sleep(0.05)
        disk = {"VOL_NAME": "bench.ext.disk0", "VOL_SIZE": str(10 * 1024), "EXTP_OWNER": owner}
        extstorage.request(run_dir, "create", disk)
        answer = extstorage.request(run_dir, "attach", disk)
        uri = f"nbd+unix:///{answer['volume']}?socket={answer['socket']}"
        yield Served(work, run_dir, volumed, disk, uri)
    finally:
        if volumed is not None:
            volumed.send_signal(signal.SIGTERM)
            volumed.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)


def random_file(path: Path, size: int = GiB) -> Path:
    """``size`` random bytes (incompressible, no zero blocks for anyone to skip)."""
    with path.open("wb") as sink:
        for _ in range(size // (64 * MiB)):
            sink.write(os.urandom(64 * MiB))
    return path


def raw_file(path: Path, size: int = GiB) -> Path:
    """A raw image with every block allocated, as a fair target to write into."""
    subprocess.run(
        ["qemu-img", "create", "-f", "raw", "-o", "preallocation=full", str(path), str(size)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path
