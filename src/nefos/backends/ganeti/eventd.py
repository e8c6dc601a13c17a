"""``nefos ganeti eventd``: Ganeti job progress to the bus (Synnefo's snf-ganeti-eventd).

It runs on the cluster's master node, next to the job queue (``/var/lib/ganeti/queue``),
where Ganeti keeps each job as a JSON file ``job-N`` and replaces it, by renaming a new
copy onto it, at every change. The daemon watches the directory (inotify, or the files'
stat every 0.2 s where inotify is missing) and, for each operation on an instance named
``snf-...``, publishes each new op status to ``ganeti.snf.event.op`` in the shape of
spec §2.6 (see :mod:`nefos.backends.base`); ops on networks named ``nefos-net-...`` go
to ``ganeti.snf.event.network`` (type ``ganeti-network-status``, ``network`` for
``instance``). NIC changes travel in ``job_fields["nics"]`` (what the job was asked:
nefos names every NIC and gives its network, address and MAC); what an instance really
has is the reconciler's to compare.

Delivery is at least once, as the dispatcher expects (it drops repeats and events older
than what it knows): the daemon remembers the last status it published per job and op,
publishes a status again only if publishing it failed, and on start replays the current
state of unfinished jobs and of those finished in the last minutes, so a restart or a
bus outage loses nothing. Statuses a job passed through between two reads are skipped,
never reordered: a job file only ever moves forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from nefos.backends.base import (
    FINAL,
    INSTANCE_PREFIX,
    NETWORK_PREFIX,
    NETWORK_ROUTING_KEY,
    OP_CREATE,
    OP_ROUTING_KEY,
)
from nefos.backends.ganeti import inotify
from nefos.core.bus import AmqpBus, Bus, Message, create_bus

log = logging.getLogger("nefos.ganeti.eventd")

QUEUE_DIR = Path("/var/lib/ganeti/queue")
JOB_FILE = re.compile(r"^job-(\d+)$")
OP_STATUSES = ("queued", "waiting", "running", "canceling", "success", "error", "canceled")
FIELDS = ("beparams", "disks", "nics", "hvparams")
_SECRET_INPUT = ("osparams_secret", "osparams_private", "reason")
_WATCH = (
    inotify.IN_MOVED_TO
    | inotify.IN_CLOSE_WRITE
    | inotify.IN_MOVED_FROM
    | inotify.IN_DELETE
    | inotify.IN_DELETE_SELF
    | inotify.IN_MOVE_SELF
)

Publish = Callable[[str, Message], Awaitable[None]]


# -- from a job file to messages (pure) ---------------------------------------------------


def _timestamp(value: Any) -> list[int] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        return [int(value[0]), int(value[1])]
    return None


def event_time(job: dict[str, Any], op: dict[str, Any]) -> list[int]:
    """When the op reached its status, by the timestamp Ganeti stamps for that status
    (as Synnefo's eventd picks it), so events of one job are strictly ordered."""
    status = op.get("status")
    chosen = {
        "queued": job.get("received_timestamp"),
        "waiting": op.get("start_timestamp"),
        "canceling": op.get("start_timestamp"),
        "running": op.get("exec_timestamp"),
    }.get(status, op.get("end_timestamp"))
    for candidate in (chosen, job.get("end_timestamp"), job.get("received_timestamp")):
        found = _timestamp(candidate)
        if found is not None:
            return found
    now = time.time()
    return [int(now), int((now % 1) * 1_000_000)]


def error_message(result: Any) -> str:
    """Ganeti encodes a failed op's exception as ``[class, [message, kind]]``."""
    if isinstance(result, list) and len(result) == 2 and isinstance(result[0], str):
        args = result[1]
        if isinstance(args, list) and args:
            return f"{result[0]}: {args[0]}"
        return str(result[0])
    return "" if result is None else str(result)


def _logmsg(op: dict[str, Any]) -> str:
    """A failed op's error; a finished op's whole log (its warnings, e.g. that a NIC
    was not hotplugged, matter to the update path); else the latest entry."""
    if op.get("status") == "error":
        return error_message(op.get("result"))
    lines = [
        str(entry[3]).strip()
        for entry in op.get("log") or []
        if isinstance(entry, list) and len(entry) >= 4
    ]
    if op.get("status") in FINAL:
        return "\n".join(lines)[-4000:]
    return lines[-1] if lines else ""


def _job_fields(request: dict[str, Any], status: str) -> dict[str, Any]:
    if request.get("OP_ID") == OP_CREATE and status in ("error", "canceled"):
        # A failed build is diagnosed from everything that was asked.
        fields = {k: v for k, v in request.items() if k not in _SECRET_INPUT}
    else:
        fields = {k: request[k] for k in FIELDS if k in request}
    beparams = fields.get("beparams")
    if isinstance(beparams, dict) and "maxmem" in beparams and "memory" not in beparams:
        # Ganeti 2.6+ says maxmem; the update path reads a flavor from vcpus and memory.
        fields["beparams"] = {**beparams, "memory": beparams["maxmem"]}
    return fields


def routing_key(message: Message) -> str:
    return NETWORK_ROUTING_KEY if message["type"] == "ganeti-network-status" else OP_ROUTING_KEY


def op_message(job: dict[str, Any], op: dict[str, Any], cluster: str) -> Message | None:
    """The event for one op in its current status, or None if it is not nefos's: an op
    on an instance named ``snf-...`` (``ganeti-op-status``) or on a network named
    ``nefos-net-...`` (``ganeti-network-status``)."""
    request = op.get("input") or {}
    instance = request.get("instance_name")
    network = request.get("network_name")
    status = op.get("status")
    if status not in OP_STATUSES:
        return None
    if isinstance(instance, str) and instance.startswith(INSTANCE_PREFIX):
        kind, name = "op", instance
    elif isinstance(network, str) and network.startswith(NETWORK_PREFIX):
        kind, name = "network", network
    else:
        return None
    message: Message = {
        "type": f"ganeti-{kind}-status",
        "instance" if kind == "op" else "network": name,
        "operation": request.get("OP_ID"),
        "status": status,
        "jobId": int(job["id"]),
        "cluster": cluster,
        "logmsg": _logmsg(op),
        "result": op.get("result") if status in FINAL else None,
        "event_time": event_time(job, op),
        "job_fields": _job_fields(request, status),
    }
    if request.get("tags"):
        message["tags"] = request["tags"]
    return message


def finished(job: dict[str, Any]) -> bool:
    return all(op.get("status") in FINAL for op in job.get("ops") or [])


# -- where changes come from ----------------------------------------------------------------


@dataclass
class Changes:
    changed: set[int] = field(default_factory=set)
    gone: set[int] = field(default_factory=set)
    rescan: bool = False  # events were lost: look at every file again
    lost: bool = False  # the directory itself went away (cluster destroyed or re-created)


def _job_id(name: str) -> int | None:
    match = JOB_FILE.match(name)
    return int(match.group(1)) if match else None


class _InotifySource:
    def __init__(self, directory: Path) -> None:
        self._inotify = inotify.Inotify(directory, _WATCH)

    async def next(self) -> Changes:
        changes = Changes()
        for event in await self._inotify.read():
            if event.mask & inotify.IN_Q_OVERFLOW:
                changes.rescan = True
            if event.mask & (inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF | inotify.IN_IGNORED):
                changes.lost = True
            job_id = _job_id(event.name)
            if job_id is None:
                continue
            if event.mask & (inotify.IN_MOVED_TO | inotify.IN_CLOSE_WRITE):
                changes.changed.add(job_id)
                changes.gone.discard(job_id)
            elif event.mask & (inotify.IN_MOVED_FROM | inotify.IN_DELETE):
                changes.gone.add(job_id)
                changes.changed.discard(job_id)
        return changes

    def close(self) -> None:
        self._inotify.close()


class _PollSource:
    """Where inotify is missing: the job files' identity and times, compared."""

    def __init__(self, directory: Path, interval: float) -> None:
        self._directory = directory
        self._interval = interval
        self._seen = self._stat()

    def _stat(self) -> dict[int, tuple[int, int, int]]:
        found: dict[int, tuple[int, int, int]] = {}
        with os.scandir(self._directory) as entries:
            for entry in entries:
                job_id = _job_id(entry.name)
                if job_id is None:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    st = entry.stat(follow_symlinks=False)
                    found[job_id] = (st.st_ino, st.st_mtime_ns, st.st_size)
        return found

    async def next(self) -> Changes:
        await asyncio.sleep(self._interval)
        try:
            now = self._stat()
        except FileNotFoundError:
            return Changes(lost=True)
        changes = Changes(
            changed={j for j, sig in now.items() if self._seen.get(j) != sig},
            gone=set(self._seen) - set(now),
        )
        self._seen = now
        return changes

    def close(self) -> None:
        pass


# -- the daemon -------------------------------------------------------------------------


@dataclass
class _Published:
    received: list[int] | None  # tells a job from a later one with the same id
    statuses: dict[int, str] = field(default_factory=dict)  # op index -> last published


class QueueWatcher:
    """Follows one job queue and publishes each new op status once it is there.

    ``replay_seconds``: on start (and when the queue directory comes back), jobs that
    finished this recently are published again, unfinished ones always; older finished
    jobs only count as published. ``use_inotify=False`` forces polling (tests).
    """

    def __init__(
        self,
        queue_dir: Path,
        cluster: str,
        publish: Publish,
        replay_seconds: float = 600.0,
        poll_interval: float = 0.2,
        use_inotify: bool = True,
        retry_seconds: float = 1.0,
    ) -> None:
        self.queue_dir = Path(queue_dir)
        self.cluster = cluster
        self.publish = publish
        self.replay_seconds = replay_seconds
        self.poll_interval = poll_interval
        self.use_inotify = use_inotify
        self.retry_seconds = retry_seconds
        self.mode = ""  # "inotify" or "poll", once watching
        self.published_count = 0
        self._published: dict[int, _Published] = {}
        self._dirty: set[int] = set()
        self.ready = asyncio.Event()  # set once the first scan is done (tests, logs)

    def _open_source(self) -> _InotifySource | _PollSource:
        if self.use_inotify:
            try:
                source: _InotifySource | _PollSource = _InotifySource(self.queue_dir)
                self.mode = "inotify"
                return source
            except FileNotFoundError:
                raise
            except OSError as exc:
                log.warning("inotify unavailable (%s); polling %s", exc, self.queue_dir)
        self.mode = "poll"
        return _PollSource(self.queue_dir, self.poll_interval)

    async def run(self) -> None:
        """Watch until cancelled; a queue directory that goes away is waited for."""
        while True:
            while not self.queue_dir.is_dir():  # noqa: ASYNC110 (no watch tells when it appears)
                await asyncio.sleep(1.0)
            try:
                source = self._open_source()
            except FileNotFoundError:
                continue  # gone again between the check and the watch
            try:
                await self._follow(source)
            except FileNotFoundError:
                pass  # gone while scanning
            finally:
                source.close()
            log.warning("job queue %s went away; waiting for it", self.queue_dir)
            self._published.clear()
            self._dirty.clear()

    async def _follow(self, source: _InotifySource | _PollSource) -> None:
        # The watch is in place before the scan, so no change falls between the two.
        self._scan()
        log.info("watching %s (%s) for cluster %s", self.queue_dir, self.mode, self.cluster)
        self.ready.set()
        while True:
            await self._flush()
            if self._dirty:  # the bus refused: retry soon, taking new changes meanwhile
                with contextlib.suppress(TimeoutError):
                    changes = await asyncio.wait_for(source.next(), self.retry_seconds)
                    if self._apply(changes):
                        return
                continue
            if self._apply(await source.next()):
                return

    def _apply(self, changes: Changes) -> bool:
        """Record what changed; True if the directory is gone."""
        if changes.lost:
            return True
        for job_id in changes.gone:
            self._published.pop(job_id, None)  # archived or deleted: it will not return
            self._dirty.discard(job_id)
        self._dirty |= changes.changed
        if changes.rescan:
            self._scan()
        return False

    def _scan(self) -> None:
        """Every job file: replay what is unfinished or recent, remember the rest."""
        horizon = time.time() - self.replay_seconds
        for path in self.queue_dir.iterdir():
            job_id = _job_id(path.name)
            if job_id is None:
                continue
            job = self._read(job_id)
            if job is None:
                continue
            ended = _timestamp(job.get("end_timestamp"))
            if not finished(job) or ended is None or ended[0] >= horizon:
                self._dirty.add(job_id)
            elif job_id not in self._published:
                record = _Published(_timestamp(job.get("received_timestamp")))
                for index, op in enumerate(job.get("ops") or []):
                    record.statuses[index] = str(op.get("status"))
                self._published[job_id] = record

    def _read(self, job_id: int) -> dict[str, Any] | None:
        try:
            job = json.loads((self.queue_dir / f"job-{job_id}").read_text())
        except FileNotFoundError:
            return None  # archived between the event and now
        except (OSError, ValueError) as exc:
            log.warning("cannot read job %s: %s", job_id, exc)
            return None
        return job if isinstance(job, dict) and "id" in job else None

    async def _flush(self) -> None:
        """Publish what changed in each dirty job, oldest job first; a job whose
        publishing failed stays dirty, with what was not sent still unsent."""
        for job_id in sorted(self._dirty):
            job = self._read(job_id)
            if job is not None:
                try:
                    await self._publish_job(job_id, job)
                except Exception as exc:  # the bus is down: keep it for the retry
                    log.warning("publishing job %s failed: %s; will retry", job_id, exc)
                    return
            self._dirty.discard(job_id)

    async def _publish_job(self, job_id: int, job: dict[str, Any]) -> None:
        received = _timestamp(job.get("received_timestamp"))
        record = self._published.get(job_id)
        if record is None or record.received != received:  # new, or the id was reused
            record = self._published[job_id] = _Published(received)
        for index, op in enumerate(job.get("ops") or []):
            status = str(op.get("status"))
            if record.statuses.get(index) == status:
                continue
            message = op_message(job, op, self.cluster)
            if message is not None:
                await self.publish(routing_key(message), message)
                self.published_count += 1
                log.debug("job %s %s %s", job_id, message["operation"], status)
            record.statuses[index] = status


# -- the process ---------------------------------------------------------------------------


def open_bus(url: str, exchange: str | None = None) -> Bus:
    """The deployment's bus; ``exchange`` names another AMQP exchange than nefos's own
    (tests, or several deployments on one broker)."""
    if urlsplit(url).scheme.lower() == "memory":
        raise ValueError("the event daemon runs apart from nefos: give an amqp:// bus URL")
    if exchange:
        return AmqpBus(url, exchange=exchange)
    return create_bus(url)


async def serve(
    bus: Bus,
    cluster: str,
    queue_dir: Path = QUEUE_DIR,
    replay_seconds: float = 600.0,
    use_inotify: bool = True,
) -> None:
    """Run until SIGTERM or SIGINT, then stop between two publishes and disconnect."""
    await bus.start()
    watcher = QueueWatcher(
        queue_dir, cluster, bus.publish, replay_seconds=replay_seconds, use_inotify=use_inotify
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    task = asyncio.create_task(watcher.run(), name="nefos-ganeti-eventd")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopping):
            pending.cancel()
        await asyncio.gather(task, stopping, return_exceptions=True)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await bus.close()
    failure = None if task.cancelled() else task.exception()
    if failure is not None:
        raise failure
    log.info("stopped after publishing %d events", watcher.published_count)
