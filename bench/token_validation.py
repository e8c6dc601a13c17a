"""Token validation requests per second on one worker (target: at least 3,000).

Starts ``nefos up`` (one process, embedded defaults) on a fresh data directory and
loads it with wrk from a second process over loopback:

* ``GET /identity/v2.0/tokens/<token>``: what Synnefo services call per request;
* ``GET /identity/v3/auth/tokens`` with ``X-Auth-Token`` and ``X-Subject-Token``: what
  Keystone middleware calls (two tokens resolved, full v3 body with catalog).

Each runs with the credential cache on (the default, ``token_cache_seconds = 2``) and
off (every request asks the database), so both paths are on record.

    python bench/token_validation.py [--duration 10] [--connections 8]

Needs wrk (Debian package ``wrk``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

NEFOS = str(Path(sys.executable).with_name("nefos"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(data_dir: Path, port: int, cache_seconds: str) -> tuple[subprocess.Popen[bytes], str]:
    log = data_dir.parent / f"nefos-{port}.out"
    env = {**os.environ, "NEFOS_TOKEN_CACHE_SECONDS": cache_seconds}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [NEFOS, "up", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/identity/v3", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        process.kill()
        raise SystemExit(f"nefos up did not start:\n{log.read_text()}")
    return process, url


def wrk(url: str, duration: int, connections: int, headers: dict[str, str]) -> tuple[float, str]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"errors during the run:\n{output}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = re.search(r"Latency\s+(\S+)", output).group(1)
    return rate, latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "cloud"
        print("| endpoint | cache | requests/s | mean latency |")
        print("|---|---|---|---|")
        token = ""
        for cache_seconds in ("2", "0"):
            port = free_port()
            process, url = start(data_dir, port, cache_seconds)
            try:
                if not token:
                    out = (Path(tmp) / f"nefos-{port}.out").read_text()
                    token = re.search(r"token:\s+(\S+)", out).group(1)
                runs = [
                    ("GET /identity/v2.0/tokens/<id>", f"{url}/identity/v2.0/tokens/{token}", {}),
                    (
                        "GET /identity/v3/auth/tokens",
                        f"{url}/identity/v3/auth/tokens",
                        {"X-Auth-Token": token, "X-Subject-Token": token},
                    ),
                ]
                for name, target, headers in runs:
                    wrk(target, 2, args.connections, headers)  # warm up
                    rate, latency = wrk(target, args.duration, args.connections, headers)
                    cache = "on (2 s)" if cache_seconds != "0" else "off"
                    print(f"| {name} | {cache} | {rate:,.0f} | {latency} |")
            finally:
                process.terminate()
                process.wait(15)


if __name__ == "__main__":
    main()
