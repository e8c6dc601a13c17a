"""OpenStack Swift all-in-one on loopback, as the baseline for bench/swift_compare.py.

Swift comes from PyPI into its own virtual environment (``bench/.swift-venv``, made on
first use), so its pins (eventlet, greenlet, PasteDeploy...) never meet nefos's. The
cluster is the SAIO shape reduced to one node: one ring device per ring, one replica,
account, container and object servers and a proxy with tempauth (``admin:admin`` /
``admin``) and memcached, every listener on 127.0.0.1 and a free port.

Everything durability-related is left at Swift's defaults (``fsync`` of each object
and of its directory before the object server answers, ``mb_per_sync = 512``), and so
are the worker counts (``workers = auto``: one per CPU), so the comparison is durable
against durable with Swift as it ships. ``mount_check`` is off because the device is a
directory, not a mount. The data must sit on a real filesystem with user xattrs (Swift
keeps object metadata there), not tmpfs.

Each server runs in its own session; stopping signals those process groups by id
and nothing else.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
VENV = HERE / ".swift-venv"
USER, KEY = "admin:admin", "admin"
SERVERS = ("account", "container", "object")
PROXY_PIPELINE = (
    "catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl "
    "ratelimit tempauth copy container-quotas account-quotas slo dlo versioned_writes "
    "symlink proxy-logging proxy-server"
)
PROXY_FILTERS = {
    "catch_errors": "catch_errors",
    "gatekeeper": "gatekeeper",
    "healthcheck": "healthcheck",
    "proxy-logging": "proxy_logging",
    "listing_formats": "listing_formats",
    "bulk": "bulk",
    "tempurl": "tempurl",
    "ratelimit": "ratelimit",
    "copy": "copy",
    "container-quotas": "container_quotas",
    "account-quotas": "account_quotas",
    "slo": "slo",
    "dlo": "dlo",
    "versioned_writes": "versioned_writes",
    "symlink": "symlink",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_venv() -> Path:
    """Swift's own venv; installed from PyPI once, reused afterwards."""
    marker = VENV / ".installed"
    if not marker.exists():
        print(f"installing swift into {VENV} (first run only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "swift"], check=True)
        marker.touch()
    return VENV / "bin"


def swift_version(bin_dir: Path) -> str:
    out = subprocess.run(
        [str(bin_dir / "python"), "-c", "import swift; print(swift.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def check_xattrs(directory: Path) -> None:
    """Swift stores object metadata in user xattrs; fail early where they are missing."""
    probe = directory / ".xattr-probe"
    probe.touch()
    try:
        os.setxattr(probe, "user.swift.probe", b"1")
    except OSError as error:
        raise SystemExit(f"{directory}: no user xattrs ({error}); Swift cannot run there") from None
    finally:
        probe.unlink()


def ini(sections: dict[str, dict[str, str]]) -> str:
    return "".join(
        f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in body.items()) + "\n"
        for name, body in sections.items()
    )


class SwiftAIO:
    """A one-replica Swift cluster under ``root``; ``start()`` returns the auth URL."""

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "etc"
        self.devices = root / "srv"
        self.logs = root / "log"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ports = {name: free_port() for name in (*SERVERS, "proxy", "memcached")}
        self.bin = ensure_venv()
        self.version = swift_version(self.bin)

    @property
    def data_dir(self) -> Path:
        """What the object, container and account servers store (for ``du``)."""
        return self.devices

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}/auth/v1.0"

    def _write_config(self) -> None:
        for path in (self.conf, self.devices / "d1", self.logs, self.root / "cache"):
            path.mkdir(parents=True, exist_ok=True)
        check_xattrs(self.devices / "d1")
        (self.conf / "swift.conf").write_text(
            ini(
                {
                    "swift-hash": {
                        "swift_hash_path_prefix": "nefos-bench",
                        "swift_hash_path_suffix": "nefos-bench",
                    },
                    "storage-policy:0": {"name": "Policy-0", "default": "yes"},
                }
            )
        )
        common = {
            "swift_dir": str(self.conf),
            "devices": str(self.devices),
            "mount_check": "false",
            "bind_ip": "127.0.0.1",
            "user": getpass.getuser(),
        }
        for server in SERVERS:
            (self.conf / f"{server}-server.conf").write_text(
                ini(
                    {
                        "DEFAULT": {**common, "bind_port": str(self.ports[server])},
                        "pipeline:main": {"pipeline": f"healthcheck recon {server}-server"},
                        f"app:{server}-server": {"use": f"egg:swift#{server}"},
                        "filter:healthcheck": {"use": "egg:swift#healthcheck"},
                        "filter:recon": {
                            "use": "egg:swift#recon",
                            "recon_cache_path": str(self.root / "cache"),
                        },
                    }
                )
            )
        proxy = {
            "DEFAULT": {
                "swift_dir": str(self.conf),
                "bind_ip": "127.0.0.1",
                "bind_port": str(self.ports["proxy"]),
                "user": getpass.getuser(),
            },
            "pipeline:main": {"pipeline": PROXY_PIPELINE},
            "app:proxy-server": {
                "use": "egg:swift#proxy",
                "account_autocreate": "true",
                "allow_account_management": "true",
            },
            "filter:tempauth": {
                "use": "egg:swift#tempauth",
                "user_admin_admin": "admin .admin .reseller_admin",
            },
            "filter:cache": {
                "use": "egg:swift#memcache",
                "memcache_servers": f"127.0.0.1:{self.ports['memcached']}",
            },
        }
        for name, egg in PROXY_FILTERS.items():
            proxy[f"filter:{name}"] = {"use": f"egg:swift#{egg}"}
        (self.conf / "proxy-server.conf").write_text(ini(proxy))

    def _build_rings(self) -> None:
        builder = str(self.bin / "swift-ring-builder")
        for server in SERVERS:
            path = str(self.conf / f"{server}.builder")
            run = [builder, path]
            subprocess.run([*run, "create", "10", "1", "1"], check=True, capture_output=True)
            device = f"r1z1-127.0.0.1:{self.ports[server]}/d1"
            subprocess.run([*run, "add", device, "1"], check=True, capture_output=True)
            # rebalance exits 1 for warnings (a one-device ring always has some)
            done = subprocess.run([*run, "rebalance"], capture_output=True, text=True)
            if done.returncode not in (0, 1):
                raise SystemExit(f"swift-ring-builder rebalance failed:\n{done.stdout}")

    def _spawn(self, name: str, command: list[str]) -> None:
        with (self.logs / f"{name}.log").open("wb") as sink:
            self.processes.append(
                subprocess.Popen(
                    command,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def start(self) -> str:
        memcached = shutil.which("memcached")
        if memcached is None:
            raise SystemExit("memcached is needed for Swift's tempauth: apt-get install memcached")
        self._write_config()
        self._build_rings()
        as_root = ["-u", "root"] if os.geteuid() == 0 else []
        port = str(self.ports["memcached"])
        self._spawn("memcached", [memcached, "-l", "127.0.0.1", "-p", port, "-U", "0", *as_root])
        for server in (*SERVERS, "proxy"):
            conf = str(self.conf / f"{server}-server.conf")
            self._spawn(server, [str(self.bin / f"swift-{server}-server"), conf])
        self._wait()
        return self.auth_url

    def _wait(self) -> None:
        deadline = time.monotonic() + 60
        headers = {"X-Auth-User": USER, "X-Auth-Key": KEY}
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    self.stop()
                    raise SystemExit(f"a Swift server exited; see {self.logs}")
            try:
                # The proxy logs in once memcached answers; the account, container and
                # object servers may still be starting (a first PUT then got a 503).
                checks = [f"http://127.0.0.1:{self.ports[s]}/healthcheck" for s in SERVERS]
                if httpx.get(self.auth_url, headers=headers, timeout=2).status_code == 200 and all(
                    httpx.get(url, timeout=2).status_code == 200 for url in checks
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit(f"Swift did not answer in 60 s; see {self.logs}")

    def stop(self) -> None:
        """SIGTERM to each started process group (a Swift parent and its workers)."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):  # workers may outlive a parent
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def __enter__(self) -> SwiftAIO:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
