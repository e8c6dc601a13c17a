"""nefos against OpenStack Swift on the same machine, same workloads, one run (issue 4).

Starts a Swift all-in-one (``bench/swift_aio.py``: one replica, tempauth, loopback)
and ``nefos up``, one after the other on data directories on the same disk, and drives
both with python-swiftclient through the same code:

* 256 MiB PUT of new random data, PUT of the same bytes under a new name (nefos already
  holds every block; Swift writes them again), and GET of it: one stream, as a client
  uploads one file;
* 1,000 objects of 4 KiB: PUT, GET, HEAD, DELETE from client threads (``--threads``)
  in a few processes (``--processes``), each thread with its own connection, as a sync
  tool would;
* a 1 GiB file re-uploaded with one byte changed: nefos through the Pithos hashmap
  protocol (PUT ?hashmap, 409 with the missing hashes, POST ?update of those blocks,
  PUT again), Swift by sending the file again, as it has no delta upload; bytes sent;
* ten server-side copies of a 1 GiB file (PUT with X-Copy-From): bytes on disk;
* ``dd ... conv=fsync`` on the same disk: what durable writes can reach at all.

``--write-limit MBPS`` (root) caps the disk's writes for the benchmark, dd and both
servers (a block-I/O cgroup that everything it starts inherits): the issue's targets
assume a disk of about 370 MB/s, and a faster one leaves the CPU (the body's MD5 on
one core) as the limit of any server that answers Swift's ETag.

Both servers acknowledge a write only once it is on disk (Swift fsyncs each object by
default; nefos's file store fsyncs each block and map), so throughput is durable against
durable. Server CPU seconds per workload are printed too: on a two-core machine they
show where the time goes.

    .venv/bin/python bench/swift_compare.py [--quick] [--targets swift,nefos]

Needs memcached (Swift's tempauth keeps tokens there) and, on first run, PyPI for the
Swift venv in ``bench/.swift-venv``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import swiftclient
from swift_aio import KEY, USER, SwiftAIO, free_port

from nefos.blocks import BLOCK_SIZE, hashmap

NEFOS = str(Path(sys.executable).with_name("nefos"))
REPO = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
GiB = 1024 * MiB
CONTAINER = "bench"
OCTETS = "application/octet-stream"
SETTLE_SECONDS = 3


@dataclass(frozen=True)
class Sizes:
    big: int  # the new-data / stored-blocks / GET object
    small_count: int
    small_size: int
    file: int  # the re-uploaded and copied file
    copies: int


FULL = Sizes(big=256 * MiB, small_count=1000, small_size=4096, file=GiB, copies=10)
QUICK = Sizes(big=32 * MiB, small_count=200, small_size=4096, file=64 * MiB, copies=10)


@dataclass
class Target:
    """A running server: where it is, how to log in, what it stores, its processes."""

    name: str
    auth_url: str
    user: str
    key: str
    data_dir: Path
    process_groups: set[int]
    delta_upload: bool  # speaks the Pithos hashmap protocol
    url: str = ""
    token: str = ""


@dataclass
class Result:
    value: float
    unit: str
    seconds: float = 0.0
    cpu: float = 0.0  # server CPU seconds during the workload
    note: str = ""
    extra: dict[str, float] = field(default_factory=dict)


# -- measuring ------------------------------------------------------------------------


def cpu_seconds(groups: set[int]) -> float:
    """User + system CPU of every live process in the given process groups."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) in groups:  # pgrp; utime, stime are fields 14 and 15
            total += int(fields[11]) + int(fields[12])
    return total / tick


def du(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (what ``du -s -B1`` says)."""
    subprocess.run(["sync", "-f", str(path)], check=False)
    out = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def timed(target: Target, work: Callable[[], object]) -> tuple[float, float]:
    """Wall seconds and server CPU seconds of ``work``."""
    cpu = cpu_seconds(target.process_groups)
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    return seconds, cpu_seconds(target.process_groups) - cpu


def settle(directory: Path) -> None:
    """Flush, then wait for the freed blocks' discards to pass.

    The virtual disk here is thin: writing blocks that were freed a moment ago (not yet
    discarded) runs at 1 GB/s or more, writing fresh ones at a few hundred MB/s. Every
    timed write, dd's and the servers', starts from this same settled state.
    """
    subprocess.run(["sync", "-f", str(directory)], check=False)
    time.sleep(SETTLE_SECONDS)


def dd_limit(directory: Path, size: int) -> dict[str, float]:
    """Durable sequential write speed of the disk under ``directory``, by dd.

    Zeros with O_DIRECT are what the issue names, but a virtual disk may recognise zeros
    and skip them; so random bytes, fsynced, are the limit for the targets: the faster
    of writing them through the page cache (as Swift does) and around it (as nefos
    writes big blocks), each the median of three.
    """
    count = max(size // (4 * MiB), 1)
    scratch = directory / "dd.out"
    source = Path("/dev/shm") if Path("/dev/shm").is_dir() else directory
    random_file = source / f"nefos-bench-random-{os.getpid()}"
    random_file.write_bytes(os.urandom(count * 4 * MiB))
    runs = {
        "random, buffered": ([f"if={random_file}"], 3),
        "random, O_DIRECT": ([f"if={random_file}", "oflag=direct"], 3),
        "zeros, O_DIRECT": (["if=/dev/zero", "oflag=direct"], 1),
    }
    rates: dict[str, float] = {}
    try:
        for name, (args, repeat) in runs.items():
            samples = []
            for _ in range(repeat):
                settle(directory)
                command = ["dd", *args, f"of={scratch}", "bs=4M", f"count={count}", "conv=fsync"]
                err = subprocess.run(command, capture_output=True, text=True, check=True).stderr
                seconds = float(re.search(r"copied, ([\d.]+) s", err).group(1))
                samples.append(count * 4 * MiB / seconds / 1e6)
                scratch.unlink()
            rates[name] = statistics.median(samples)
    finally:
        random_file.unlink(missing_ok=True)
        scratch.unlink(missing_ok=True)
    return rates


def sha256_rate() -> float:
    """MB/s of SHA-256 on one core: nefos names every block it stores by it."""
    data = os.urandom(64 * MiB)
    start = time.perf_counter()
    hashmap(data)
    return len(data) / (time.perf_counter() - start) / 1e6


# -- clients --------------------------------------------------------------------------


def connect(target: Target) -> swiftclient.Connection:
    """A connection with the target's token and no retries: a failure is a failure."""
    return swiftclient.Connection(preauthurl=target.url, preauthtoken=target.token, retries=0)


def login(target: Target) -> None:
    conn = swiftclient.Connection(
        authurl=target.auth_url, user=target.user, key=target.key, auth_version="1", retries=0
    )
    target.url, target.token = conn.get_auth()
    conn.close()


def raw(
    conn: swiftclient.Connection, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """A request swiftclient has no call for (the hashmap protocol), on its connection."""
    if conn.http_conn is None:
        conn.http_conn = conn.http_connection()
    parsed, http = conn.http_conn
    headers = {"X-Auth-Token": conn.token, **headers}
    http.request(method, f"{parsed.path}/{path}", body, headers)
    response = http.getresponse()
    data = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


# -- workloads ------------------------------------------------------------------------


def median_result(samples: list[tuple[float, float]], size: int) -> Result:
    """MB/s of the median run (wall seconds, server CPU seconds) of several."""
    seconds, cpu = sorted(samples)[len(samples) // 2]
    rates = ", ".join(f"{size / s / 1e6:,.0f}" for s, _ in samples)
    return Result(size / seconds / 1e6, "MB/s", seconds, cpu, note=f"runs {rates} MB/s")


def big_objects(target: Target, blobs: list[bytes]) -> dict[str, Result]:
    """New data, the same data again under other names, then GET; median of the runs."""
    conn = connect(target)
    size = len(blobs[0])
    new, again, got = [], [], []
    for i, data in enumerate(blobs):
        settle(target.data_dir)
        put = lambda i=i, data=data: conn.put_object(  # noqa: E731
            CONTAINER, f"big-new-{i}", data, content_type=OCTETS
        )
        new.append(timed(target, put))
    for i, data in enumerate(blobs):
        settle(target.data_dir)
        put = lambda i=i, data=data: conn.put_object(  # noqa: E731
            CONTAINER, f"big-again-{i}", data, content_type=OCTETS
        )
        again.append(timed(target, put))
    for i in range(len(blobs)):

        def get(i: int = i) -> None:
            _, body = conn.get_object(CONTAINER, f"big-new-{i}", resp_chunk_size=MiB)
            received = sum(len(chunk) for chunk in body)
            if received != size:
                raise SystemExit(f"{target.name}: GET returned {received} of {size} bytes")

        got.append(timed(target, get))
    for i, data in enumerate(blobs):  # untimed: the bytes are right
        if conn.get_object(CONTAINER, f"big-again-{i}")[1] != data:
            raise SystemExit(f"{target.name}: GET of big-again-{i} returned other bytes")
    conn.close()
    return {
        "put_new": median_result(new, size),
        "put_stored": median_result(again, size),
        "get": median_result(got, size),
    }


SMALL_OPS = ("put", "get", "head", "delete")


def small_objects(target: Target, sizes: Sizes, threads: int, processes: int) -> dict[str, Result]:
    """PUT, GET, HEAD, DELETE of many small objects, one op each, from ``threads``
    client threads spread over ``processes`` forked client processes.

    One Python process of swiftclient threads spends about a millisecond of CPU per
    request under its one GIL, so it caps at roughly a thousand requests a second
    whatever the server does: the client, not the server, would be measured. Each
    process takes every ``processes``-th name; all start each op together and the op
    ends when the last of them is done.
    """
    names = [f"small/{i:05d}" for i in range(sizes.small_count)]
    pool_data = os.urandom(sizes.small_count * sizes.small_size)
    payload = {
        name: pool_data[i * sizes.small_size : (i + 1) * sizes.small_size]
        for i, name in enumerate(names)
    }
    context = multiprocessing.get_context("fork")
    start = context.Barrier(processes + 1)
    finish = context.Barrier(processes + 1)
    replies = context.SimpleQueue()

    def client(share: list[str], threads: int) -> None:
        local = threading.local()
        opened: list[swiftclient.Connection] = []

        def conn() -> swiftclient.Connection:
            if not hasattr(local, "conn"):
                local.conn = connect(target)
                opened.append(local.conn)
            return local.conn

        def put(name: str) -> None:
            conn().put_object(CONTAINER, name, payload[name], content_type=OCTETS)

        def get(name: str) -> None:
            _, body = conn().get_object(CONTAINER, name)
            if body != payload[name]:
                raise RuntimeError(f"GET {name} returned other bytes")

        def head(name: str) -> None:
            if int(conn().head_object(CONTAINER, name)["content-length"]) != sizes.small_size:
                raise RuntimeError(f"HEAD {name}: wrong Content-Length")

        def delete(name: str) -> None:
            conn().delete_object(CONTAINER, name)

        calls = {"put": put, "get": get, "head": head, "delete": delete}
        try:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda _: conn().head_account(), range(threads * 4)))  # warm
                for op in SMALL_OPS:
                    latencies: list[float] = []

                    def one(
                        name: str,
                        call: Callable[[str], None] = calls[op],
                        out: list[float] = latencies,
                    ) -> None:
                        began = time.perf_counter()
                        call(name)
                        out.append(time.perf_counter() - began)

                    start.wait()
                    list(pool.map(one, share))
                    finish.wait()
                    replies.put(latencies)
        except BaseException as error:
            replies.put(f"{type(error).__name__}: {error}")
            start.abort()
            finish.abort()
            raise
        finally:
            for c in opened:
                c.close()

    per_process = [threads // processes + (i < threads % processes) for i in range(processes)]
    workers = [
        context.Process(target=client, args=(names[i::processes], n), daemon=True)
        for i, n in enumerate(per_process)
    ]
    for worker in workers:
        worker.start()
    results = {}
    try:
        for op in SMALL_OPS:
            start.wait(timeout=600)
            cpu = cpu_seconds(target.process_groups)
            began = time.perf_counter()
            finish.wait(timeout=600)
            seconds = time.perf_counter() - began
            cpu = cpu_seconds(target.process_groups) - cpu
            latencies = []
            for _ in workers:
                reply = replies.get()
                if isinstance(reply, str):
                    raise SystemExit(f"{target.name}: small {op.upper()}: {reply}")
                latencies += reply
            latencies.sort()
            results[f"small_{op}"] = Result(
                len(names) / seconds,
                "ops/s",
                seconds,
                cpu,
                extra={
                    "p50_ms": latencies[len(latencies) // 2] * 1000,
                    "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
                },
            )
    except threading.BrokenBarrierError:
        said = []
        while not replies.empty():
            said.append(replies.get())
        problems = "; ".join(reply for reply in said if isinstance(reply, str))
        raise SystemExit(f"{target.name}: small objects: {problems or 'a client died'}") from None
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
    return results


def copies(target: Target, data: bytes, sizes: Sizes) -> dict[str, Result]:
    """Upload a file, then copy it server-side ``copies`` times; bytes on disk each time."""
    conn = connect(target)
    before = du(target.data_dir)
    settle(target.data_dir)
    seconds, cpu = timed(
        target, lambda: conn.put_object(CONTAINER, "file", data, content_type=OCTETS)
    )
    one = du(target.data_dir) - before
    results = {"file_put": Result(len(data) / seconds / 1e6, "MB/s", seconds, cpu)}

    def copy_all() -> None:
        for i in range(sizes.copies):
            headers = {"X-Copy-From": f"/{CONTAINER}/file"}
            conn.put_object(CONTAINER, f"copy-{i}", None, content_type=OCTETS, headers=headers)

    settle(target.data_dir)
    seconds, cpu = timed(target, copy_all)
    total = du(target.data_dir) - before
    results["copies"] = Result(
        total / one,
        "x one",
        seconds,
        cpu,
        note=f"{one / MiB:,.0f} MiB → {total / MiB:,.0f} MiB",
        extra={"one_bytes": one, "all_bytes": total},
    )
    conn.close()
    return results


def reupload(target: Target, changed: bytes) -> Result:
    """The file again with one byte changed: the hashmap protocol where there is one."""
    conn = connect(target)
    settle(target.data_dir)
    if not target.delta_upload:
        seconds, cpu = timed(
            target, lambda: conn.put_object(CONTAINER, "file", changed, content_type=OCTETS)
        )
        conn.close()
        return Result(len(changed), "bytes", seconds, cpu, note="whole file (no delta upload)")

    sent = 0
    requests = 0

    def upload() -> None:
        nonlocal sent, requests
        info = conn.head_container(CONTAINER)
        block_size = int(info.get("x-container-block-size", BLOCK_SIZE))
        if block_size != BLOCK_SIZE or info.get("x-container-block-hash", "sha256") != "sha256":
            raise SystemExit(f"{target.name}: container blocks are {block_size}/{info}")
        hashes = hashmap(changed)
        body = json.dumps({"bytes": len(changed), "hashes": hashes}).encode()
        path = f"{quote(CONTAINER)}/file?hashmap&format=json"
        status, _, reply = raw(conn, "PUT", path, body, **{"Content-Type": OCTETS})
        sent, requests = sent + len(body), requests + 1
        if status == 409:
            index = {h: i for i, h in enumerate(hashes)}
            for missing in json.loads(reply):
                i = index[missing]
                block = changed[i * BLOCK_SIZE : (i + 1) * BLOCK_SIZE]
                status, _, answer = raw(
                    conn,
                    "POST",
                    f"{quote(CONTAINER)}?update&format=json",
                    block,
                    **{"Content-Type": OCTETS},
                )
                sent, requests = sent + len(block), requests + 1
                if status not in (200, 201, 202) or json.loads(answer) != [missing]:
                    raise SystemExit(f"{target.name}: block POST: {status} {answer[:300]!r}")
            status, _, reply = raw(conn, "PUT", path, body, **{"Content-Type": OCTETS})
            sent, requests = sent + len(body), requests + 1
        if status != 201:
            raise SystemExit(f"{target.name}: hashmap PUT: {status} {reply[:300]!r}")

    seconds, cpu = timed(target, upload)
    _, body = conn.get_object(CONTAINER, "file")
    if body != changed:
        raise SystemExit(f"{target.name}: the re-uploaded file reads back other bytes")
    conn.close()
    return Result(sent, "bytes", seconds, cpu, note=f"hashmap protocol, {requests} requests")


def run_all(
    target: Target, sizes: Sizes, clients: tuple[int, int], big: list[bytes], file: bytes
) -> dict[str, Result]:
    """Every workload, in an order where each finds what it needs stored."""
    login(target)
    conn = connect(target)
    conn.put_container(CONTAINER)
    conn.close()
    results = big_objects(target, big)
    results |= small_objects(target, sizes, *clients)
    results |= copies(target, file, sizes)
    middle = len(file) // 2
    changed = file[:middle] + bytes([file[middle] ^ 0xFF]) + file[middle + 1 :]
    results["reupload"] = reupload(target, changed)
    return results


# -- servers --------------------------------------------------------------------------


def start_nefos(root: Path) -> tuple[subprocess.Popen[bytes], Target]:
    """``nefos up`` on its own data directory; the admin it prints is who logs in."""
    port = free_port()
    data_dir = root / "nefos"
    output = root / "nefos-up.out"
    env = {k: v for k, v in os.environ.items() if k not in ("NEFOS_DATA_DIR", "NEFOS_CONFIG")}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [NEFOS, "up", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"nefos up exited:\n{output.read_text()}")
        try:
            if httpx.get(f"{url}/identity/v3", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        stop_group(process)
        raise SystemExit(f"nefos up did not answer:\n{output.read_text()}")
    printed = dict(
        line.strip().split(":", 1)
        for line in output.read_text().splitlines()
        if line.startswith("  ") and ":" in line
    )
    target = Target(
        name="nefos",
        auth_url=f"{url}/object-store/v1",
        user=printed["e-mail"].strip(),
        key=printed["token"].strip(),
        data_dir=data_dir,
        process_groups={process.pid},
        delta_upload=True,
    )
    return process, target


def object_store_ready(target: Target) -> str:
    """Empty when nefos's TempAuth-style login answers; else what it said."""
    headers = {"X-Auth-User": target.user, "X-Auth-Key": target.key}
    try:
        reply = httpx.get(target.auth_url, headers=headers, timeout=5)
    except httpx.HTTPError as error:
        return str(error)
    if reply.status_code in (200, 204) and "x-storage-url" in reply.headers:
        return ""
    return f"GET {target.auth_url} -> {reply.status_code} {reply.text[:200]!r}"


def stop_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# -- report ---------------------------------------------------------------------------

Check = Callable[[float | None, float | None, dict[str, float]], bool | None]


def at_least(factor: float) -> Check:
    """nefos at ``factor`` times Swift or more (throughputs)."""
    return lambda s, n, _: None if s is None or n is None else n >= factor * s


def put_new_check(s: float | None, n: float | None, m: dict[str, float]) -> bool | None:
    return None if n is None else n >= 0.95 * m["disk"]


def reupload_check(s: float | None, n: float | None, m: dict[str, float]) -> bool | None:
    return None if n is None else n <= 0.005 * m["file"]


def copies_check(s: float | None, n: float | None, m: dict[str, float]) -> bool | None:
    return None if n is None else n <= 1.01


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    target: str = ""
    check: Check | None = None


def rows(sizes: Sizes, threads: int) -> list[Row]:
    big = f"{sizes.big // MiB} MiB"
    small = f"{sizes.small_count:,} x {sizes.small_size // 1024} KiB"
    file = f"{sizes.file // MiB:,} MiB" if sizes.file < GiB else f"{sizes.file // GiB} GiB"
    return [
        Row("put_new", f"{big} PUT, new data (MB/s)", ">= 0.95 x disk", put_new_check),
        Row("put_stored", f"{big} PUT, blocks stored (MB/s)", ">= 2.5 x Swift", at_least(2.5)),
        Row("get", f"{big} GET (MB/s)", ">= 3 x Swift", at_least(3)),
        *[
            Row(f"small_{op}", f"{small} {op.upper()} (ops/s)", ">= 3 x Swift", at_least(3))
            for op in ("put", "get", "head", "delete")
        ],
        Row("reupload", f"{file}, 1 byte changed, re-upload (bytes sent)", "<= 0.5 % of file",
            reupload_check),
        Row("copies", f"{file} + {sizes.copies} copies (disk, x one)", "<= 1.01 x one",
            copies_check),
        Row("file_put", f"{file} PUT, new data (MB/s)"),
    ]  # fmt: skip


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "bytes" or value >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def report(
    sizes: Sizes, threads: int, results: dict[str, dict[str, Result]], measures: dict[str, float]
) -> None:
    """The comparison table (markdown, for RESULTS.md), then where the time went."""
    swift, nefos = results.get("swift", {}), results.get("nefos", {})
    print("\n| workload | Swift | nefos | nefos/Swift | target | |")
    print("|---|---|---|---|---|---|")
    for row in rows(sizes, threads):
        s = swift[row.key].value if row.key in swift else None
        n = nefos[row.key].value if row.key in nefos else None
        unit = (swift.get(row.key) or nefos.get(row.key) or Result(0, "")).unit
        ratio = f"{n / s:.2f}" if s and n is not None else "-"
        if row.key == "reupload" and n is not None:
            ratio += f" ({100 * n / sizes.file:.2f} % of file)"
        verdict = ""
        if row.check:
            verdict = {True: "pass", False: "FAIL", None: "n/a"}[row.check(s, n, measures)]
        cells = [row.label, fmt(s, unit), fmt(n, unit), ratio, row.target, verdict]
        print(f"| {' | '.join(cells)} |")
    print("\n| workload | Swift s | Swift server CPU s | nefos s | nefos server CPU s | notes |")
    print("|---|---|---|---|---|---|")
    for row in rows(sizes, threads):
        cells, notes = [row.label], []
        for name, res in (("Swift", swift), ("nefos", nefos)):
            r = res.get(row.key)
            cells += [fmt(r.seconds), fmt(r.cpu)] if r else ["-", "-"]
            if r:
                extra = [f"{k} {v:.1f}" for k, v in r.extra.items() if not k.endswith("bytes")]
                details = "; ".join(x for x in (r.note, ", ".join(extra)) if x)
                if details:
                    notes.append(f"{name}: {details}")
        print(f"| {' | '.join(cells)} | {' / '.join(notes)} |")


def machine(root: Path) -> dict[str, str]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    df = subprocess.run(
        ["df", "--output=source,fstype,size", str(root)], capture_output=True, text=True
    ).stdout.splitlines()[-1]
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "CPUs": f"{os.cpu_count()} x {model}",
        "memory": f"{mem:.0f} GiB",
        "disk": f"{df.split()[0]} ({df.split()[1]}, {df.split()[2]}) at {root.parent}",
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "nefos": commit,
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _whole_disk(path: str) -> str:
    """``major:minor`` of the disk holding ``path`` (throttles apply to whole disks)."""
    device = os.stat(path).st_dev
    block = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}").resolve()
    if (block / "partition").exists():
        block = block.parent
    return (block / "dev").read_text().strip()


def cap_writes(directory: str, mbps: float) -> str:
    """Move this process, and so all it starts from now on, into a cgroup whose writes
    to the disk of ``directory`` are throttled (cgroup v2 ``io.max``, else v1 blkio)."""
    disk, rate = _whole_disk(directory), int(mbps * 1e6)
    controllers = Path("/sys/fs/cgroup/cgroup.controllers")
    if controllers.exists() and "io" in controllers.read_text().split():
        group = Path("/sys/fs/cgroup/nefos-bench")
        group.mkdir(exist_ok=True)
        (group / "io.max").write_text(f"{disk} wbps={rate}\n")
    else:
        group = Path("/sys/fs/cgroup/blkio/nefos-bench")
        group.mkdir(exist_ok=True)
        (group / "blkio.throttle.write_bps_device").write_text(f"{disk} {rate}\n")
    (group / "cgroup.procs").write_text(f"{os.getpid()}\n")
    return f"{group}, device {disk}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--threads", type=int, default=16, help="client threads, small objects")
    parser.add_argument(
        "--processes", type=int, default=2, help="client processes the threads are spread over"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each big-object workload")
    parser.add_argument("--targets", default="swift,nefos", help="comma-separated")
    parser.add_argument("--dir", default="/var/tmp", help="where the data dirs go (a real disk)")
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    parser.add_argument(
        "--write-limit",
        type=float,
        metavar="MBPS",
        help="cap the disk's writes (MB/s) for everything the benchmark runs (root)",
    )
    args = parser.parse_args()
    if args.write_limit:
        where = cap_writes(args.dir, args.write_limit)
        print(f"disk writes capped at {args.write_limit:,.0f} MB/s ({where})")
    sizes = QUICK if args.quick else FULL
    targets = args.targets.split(",")
    root = Path(tempfile.mkdtemp(prefix="nefos-swift-bench-", dir=args.dir))
    began = time.monotonic()
    keep = args.keep
    try:
        info = machine(root)
        for k, v in info.items():
            print(f"{k}: {v}")
        if os.getloadavg()[0] > 0.5:
            print("warning: the machine is busy; these numbers compare poorly with others")
        rates = dd_limit(root, sizes.file)
        for name, rate in rates.items():
            print(f"disk, dd bs=4M conv=fsync, {name}: {rate:,.0f} MB/s")
        disk = max(rates["random, buffered"], rates["random, O_DIRECT"])
        measures = {"disk": disk, "file": sizes.file}
        print(f"SHA-256 on one core: {sha256_rate():,.0f} MB/s")
        big = [os.urandom(sizes.big) for _ in range(args.repeat)]
        file = os.urandom(sizes.file)
        results: dict[str, dict[str, Result]] = {}
        clients = (args.threads, args.processes)
        if "swift" in targets:
            aio = SwiftAIO(root / "swift")
            print(f"Swift {aio.version}: all-in-one, 1 replica, workers = auto", flush=True)
            aio.start()
            try:
                groups = {p.pid for p in aio.processes}
                target = Target(
                    "swift", aio.auth_url, USER, KEY, aio.data_dir, groups, delta_upload=False
                )
                results["swift"] = run_all(target, sizes, clients, big, file)
            finally:
                # Swift's files are deleted with the rest at the end, not now: on an ext4
                # without a journal, as here, a file created within a minute or more of
                # many deletions costs up to 1 ms more CPU (bench/RESULTS.md).
                aio.stop()
            print(f"Swift done at {time.monotonic() - began:.0f} s", flush=True)
        if "nefos" in targets:
            process, target = start_nefos(root)
            print("nefos: nefos up, one process, embedded defaults", flush=True)
            try:
                problem = object_store_ready(target)
                if problem:
                    print(f"nefos object store not ready, nefos skipped: {problem}")
                else:
                    results["nefos"] = run_all(target, sizes, clients, big, file)
            finally:
                stop_group(process)
            print(f"nefos done at {time.monotonic() - began:.0f} s", flush=True)
        report(sizes, args.threads, results, measures)
        print(
            f"\nBig objects: one stream, median of {args.repeat} runs. Small objects: "
            f"{args.threads} threads in {args.processes} processes, one connection each. "
            f"Limit for new-data PUT: dd of random data, conv=fsync, buffered or O_DIRECT "
            f"(the faster), "
            f"{measures['disk']:,.0f} MB/s. "
            f"Total {time.monotonic() - began:.0f} s."
        )
    except BaseException:
        keep = True  # the servers' logs are there
        raise
    finally:
        if keep:
            print(f"data and logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
