"""A Ganeti node's data plane for tests: a real ``nefos volumed`` process on the test's
deployment, its control channel, and QEMU's own tools pointed at it."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from nefos.core.config import Settings
from nefos.volume import extstorage
from tests.conftest import NEFOS


def need_qemu_tools() -> None:
    """qemu-img and qemu-io come from qemu-utils, which `make test` installs
    (scripts/ganeti-dev.sh install); CI must have them."""
    if not (shutil.which("qemu-img") and shutil.which("qemu-io")):
        if os.environ.get("CI"):
            pytest.fail("qemu-img/qemu-io missing: scripts/ganeti-dev.sh install")
        pytest.skip("qemu-utils is not installed (scripts/ganeti-dev.sh install)")


class Node:
    def __init__(self, settings: Settings, run_dir: Path, log: Path):
        self.settings = settings
        self.run_dir = run_dir
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.run_dir / extstorage.NBD_SOCKET

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "NEFOS_DATA_DIR": str(self.settings.data_dir),
            "NEFOS_DATABASE_URL": self.settings.database,
        }

    def start(self, *args: str) -> None:
        for name in (extstorage.NBD_SOCKET, extstorage.CONTROL_SOCKET):
            (self.run_dir / name).unlink(missing_ok=True)
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [NEFOS, "volumed", "--run-dir", str(self.run_dir), *args],
                env=self.env(),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while not (self.run_dir / extstorage.CONTROL_SOCKET).exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"volumed did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def kill(self, signum: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(timeout=30)
        self.process = None

    async def control(self, action: str, **env: str) -> dict[str, object]:
        return await asyncio.to_thread(extstorage.request, self.run_dir, action, env)

    def uri(self, volume: str) -> str:
        return f"nbd+unix:///{volume}?socket={self.socket}"


def qemu(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise AssertionError(f"{args} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def store_usage(root: Path) -> tuple[int, int]:
    """The file store's blocks and extents: how many, and their bytes on disk."""
    files = [
        p
        for p in [*root.glob("blocks/*/*/*"), *root.glob("extents/*/*")]
        if not p.name.startswith(".")
    ]
    return len(files), sum(p.stat().st_blocks * 512 for p in files)
