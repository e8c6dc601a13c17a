"""File storage under stress as an operator would see it: deduplication on disk, and a
server killed with SIGKILL in the middle of concurrent uploads."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import NEFOS, Server, _start_server, _stop_server, free_port, wait_until_up

MIB = 1024 * 1024


def _disk_usage(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file())


def test_same_file_under_ten_names_is_stored_once(server: Server):
    base = f"{server.url}/object-store/v1/{server.admin_uuid}"
    blocks = server.data_dir / "storage"  # blocks and maps of the file store
    data = os.urandom(100 * MIB)
    with httpx.Client(headers={"X-Auth-Token": server.admin_token}, timeout=120) as http:
        assert http.put(f"{base}/dedup").status_code in (201, 202)
        before = _disk_usage(blocks) if blocks.exists() else 0
        for index in range(10):
            reply = http.put(f"{base}/dedup/copy-{index}", content=data)
            assert reply.status_code == 201
            assert reply.headers["ETag"] == hashlib.md5(data).hexdigest()
        grown = _disk_usage(blocks) - before
        assert 100 * MIB <= grown < 101 * MIB, grown
        account = http.head(base)
        assert int(account.headers["X-Account-Bytes-Used"]) >= 10 * 100 * MIB
        assert http.get(f"{base}/dedup/copy-7").content == data


def _restart(data_dir: Path, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    output = tmp_path / "restarted.out"
    env = {k: v for k, v in os.environ.items() if k not in ("NEFOS_DATA_DIR", "NEFOS_CONFIG")}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [NEFOS, "up", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(process, url, output)
    return process, url


@pytest.mark.parametrize("round_", range(2))
def test_sigkill_during_uploads_leaves_whole_versions(tmp_path: Path, round_: int):
    server = _start_server(tmp_path)
    restarted = None
    try:
        base = f"{server.url}/object-store/v1/{server.admin_uuid}"
        auth = {"X-Auth-Token": server.admin_token}
        old = {f"obj-{i}": os.urandom(6 * MIB + i) for i in range(8)}
        new = {name: os.urandom(len(data) + 1) for name, data in old.items()}
        with httpx.Client(headers=auth, timeout=60) as http:
            http.put(f"{base}/c")
            for name, data in old.items():
                assert http.put(f"{base}/c/{name}", content=data).status_code == 201

        def upload(name: str) -> None:
            try:
                with httpx.Client(headers=auth, timeout=60) as http:
                    http.put(f"{base}/c/{name}", content=new[name])
            except httpx.HTTPError:
                pass  # the server died under us: expected

        threads = [threading.Thread(target=upload, args=(name,)) for name in new]
        for thread in threads:
            thread.start()
        time.sleep(0.15 + 0.1 * round_)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        for thread in threads:
            thread.join()

        process, url = _restart(server.data_dir, tmp_path)
        restarted = process
        base = f"{url}/object-store/v1/{server.admin_uuid}"
        outcomes = set()
        with httpx.Client(headers=auth, timeout=60) as http:
            for name in old:
                got = http.get(f"{base}/c/{name}")
                assert got.status_code == 200
                assert got.content in (old[name], new[name]), name
                outcomes.add("new" if got.content == new[name] else "old")
        fsck = subprocess.run(
            [NEFOS, "storage", "fsck"],
            env={**os.environ, "NEFOS_DATA_DIR": str(server.data_dir)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    finally:
        if restarted is not None:
            restarted.terminate()
            restarted.wait(timeout=15)
        if server.process.poll() is None:
            _stop_server(server)
