"""Which state follows which job outcome: the one module that moves a server's state.

A server's state is its ``operstate`` (BUILD, STARTED, STOPPED, ERROR, DESTROYED) with
``deleted``, and its task: ``task`` (the action in flight), ``task_job_id`` (the job that
ends it) and ``serial`` (the commission that job decides). Four paths move them, each
through a function here and nowhere else:

* the effect path starts a task (:func:`require`, :func:`begin`), records its job
  (:func:`submitted`) or, when the backend refuses the job, ends it as the job's failure
  would (:func:`refused`);
* the update path applies job events (:func:`job_seen`, :func:`job_ended`), by the
  table :data:`ON_JOB`: opcode x how the job ended -> :class:`Outcome`;
* the reconciler applies what a backend shows though no event said so
  (:func:`observed`): a task ends done when the state shown is the one its job's
  success would have left.

The functions change the row only; the caller holds the row locked, writes the notes
and settles the commission whose serial they hand back.
"""

from __future__ import annotations

from dataclasses import dataclass

from nefos.backends.base import (
    OP_CREATE,
    OP_MODIFY,
    OP_REBOOT,
    OP_REMOVE,
    OP_SHUTDOWN,
    OP_STARTUP,
    SUCCESS,
)
from nefos.compute.models import Diagnostic, Server
from nefos.core import errors
from nefos.core.db import utcnow

# The job each task submits.
TASK_OPCODE = {
    "BUILD": OP_CREATE,
    "START": OP_STARTUP,
    "STOP": OP_SHUTDOWN,
    "REBOOT": OP_REBOOT,
    "DESTROY": OP_REMOVE,
    "RESIZE": OP_MODIFY,
}
# The states an action may start from (spec §2.4); a delete starts from any.
ALLOWED = {
    "START": ("STOPPED",),
    "STOP": ("STARTED",),
    "REBOOT": ("STARTED", "STOPPED"),
    "RESIZE": ("STOPPED",),
}
RUNNING_STATES = ("BUILD", "STARTED")  # the states that hold CPU and RAM

# How a finished job ended: ``MISSING`` is a failure because the instance is not on
# the cluster (Ganeti's "Instance '...' not known").
SUCCEEDED, FAILED, MISSING = "succeeded", "failed", "missing"


@dataclass(frozen=True)
class Outcome:
    """What a finished job does to its server: the state it leaves (None: unchanged),
    whether it is done (its task's commission is accepted), and the diagnostic it
    leaves (level and text, formatted with ``opcode`` and ``logmsg``)."""

    operstate: str | None
    done: bool
    note: tuple[str, str] | None = None


_FAILED = Outcome(None, False, ("WARNING", "{opcode} failed: {logmsg}"))

ON_JOB: dict[tuple[str, str], Outcome] = {
    (OP_CREATE, SUCCEEDED): Outcome("STARTED", True),
    (OP_CREATE, FAILED): Outcome("ERROR", False, ("ERROR", "Building the server failed: {logmsg}")),
    (OP_STARTUP, SUCCEEDED): Outcome("STARTED", True),
    (OP_STARTUP, FAILED): _FAILED,
    (OP_SHUTDOWN, SUCCEEDED): Outcome("STOPPED", True),
    (OP_SHUTDOWN, FAILED): _FAILED,
    (OP_REBOOT, SUCCEEDED): Outcome("STARTED", True),
    (OP_REBOOT, FAILED): _FAILED,
    (OP_MODIFY, SUCCEEDED): Outcome(None, True),  # the new flavor: nefos.compute.events
    (OP_MODIFY, FAILED): _FAILED,
    (OP_REMOVE, SUCCEEDED): Outcome("DESTROYED", True),
    (OP_REMOVE, MISSING): Outcome("DESTROYED", True),  # already gone: as good as removed
    (OP_REMOVE, FAILED): _FAILED,
}
# A job of another opcode (an administrator's, on the cluster) changes no state.
OTHER = {SUCCEEDED: Outcome(None, True), FAILED: _FAILED, MISSING: _FAILED}


def result_of(status: str, logmsg: str) -> str:
    """How a job with final ``status`` ended."""
    if status == SUCCESS:
        return SUCCEEDED
    return MISSING if "not known" in logmsg else FAILED


def outcome(opcode: str, result: str) -> Outcome:
    """The row of :data:`ON_JOB`; a missing instance is a plain failure where the
    table says nothing else."""
    found = ON_JOB.get((opcode, result))
    if found is None and result == MISSING:
        found = ON_JOB.get((opcode, FAILED))
    return found or OTHER[result]


def completes(task: str, state: str) -> bool:
    """Whether a server shown in ``state`` is where ``task``'s job would have left it."""
    return outcome(TASK_OPCODE[task], SUCCEEDED).operstate == state


def _enter(server: Server, operstate: str | None) -> None:
    if operstate is not None:
        server.operstate = operstate
        if operstate == "DESTROYED":
            server.deleted = True


def _finish(server: Server) -> int | None:
    """End the server's task; returns the serial of the commission it held."""
    serial = server.serial
    server.task, server.task_job_id, server.serial = None, None, None
    return serial


# -- the effect path ---------------------------------------------------------------------


def require(server: Server, task: str, status: str) -> None:
    """Refuse ``task`` on ``server`` (shown as ``status``) unless its state allows it,
    in the order of spec §2.4; changes nothing."""
    if server.deleted:
        raise errors.InvalidInput(f"Server {server.id} is deleted")
    if task == "DESTROY":
        if server.task == "DESTROY":
            raise errors.Conflict(f"Server {server.id} is already being deleted")
        return
    if server.task is not None:
        if server.operstate == "BUILD":
            raise errors.Conflict(f"Server {server.id} is being built")
        raise errors.InvalidInput(f"Server {server.id} is busy ({server.task})")
    if server.operstate == "ERROR":
        raise errors.InvalidInput(f"Server {server.id} is in ERROR")
    if server.operstate == "BUILD":
        raise errors.Conflict(f"Server {server.id} is being built")
    if server.operstate not in ALLOWED[task]:
        raise errors.Conflict(f"Cannot {task.lower()} a server in state {status}")


def begin(server: Server, task: str, serial: int | None) -> int | None:
    """Record ``task`` with its commission; a delete overtakes an unfinished task,
    whose commission's serial comes back to be rejected."""
    if server.task is not None and task != "DESTROY":
        raise errors.Conflict(f"Server {server.id} is busy ({server.task})")
    previous = _finish(server)
    server.task, server.serial = task, serial
    server.updated = utcnow()
    return previous


def submitted(server: Server, task: str, job_id: int) -> None:
    """The backend took ``task``'s job (unless an event already told its id)."""
    if server.task == task and server.task_job_id is None:
        server.task_job_id = job_id


def refused(server: Server, task: str) -> int | None:
    """The backend refused ``task``'s job: the server ends as if the job had failed;
    returns the serial of the commission to reject."""
    _enter(server, outcome(TASK_OPCODE[task], FAILED).operstate)
    server.updated = utcnow()
    return _finish(server)


# -- the update path -----------------------------------------------------------------------


def job_seen(server: Server, opcode: str, status: str, job_id: int) -> None:
    """An event of a job, newer than what the server knows: the status shows, and
    the job is the task's if the event beat the submitter's record of it."""
    server.job_status, server.job_opcode = status, opcode
    server.updated = utcnow()
    if (
        server.task is not None
        and server.task_job_id is None
        and TASK_OPCODE.get(server.task) == opcode
    ):
        server.task_job_id = job_id


@dataclass(frozen=True)
class Ended:
    """A finished job as applied: its outcome, whether it ended the server's task, and
    the serial of the commission that task held (decided by ``outcome.done``)."""

    outcome: Outcome
    ended_task: bool
    serial: int | None


def job_ended(server: Server, opcode: str, job_id: int, result: str, event_time: float) -> Ended:
    """A job finished: the server takes the state :data:`ON_JOB` gives, and the task
    ends if this was its job."""
    server.backendtime = event_time
    found = outcome(opcode, result)
    _enter(server, found.operstate)
    if server.task_job_id != job_id:
        return Ended(found, False, None)
    return Ended(found, True, _finish(server))


# -- the reconciler ------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """A state shown by the backend, as applied: whether the server's task ended done,
    the serial of the commission it held, and whether the server ran before."""

    done: bool
    serial: int | None
    was_running: bool


def observed(server: Server, state: str) -> Observed:
    """The backend shows the server ``state`` (STARTED, STOPPED, or DESTROYED when it
    has no such instance) though no event said so: the server takes it, and its task
    ends, done if ``state`` is where the task's job would have left it."""
    done = server.task is not None and completes(server.task, state)
    was_running = server.operstate in RUNNING_STATES
    serial = _finish(server)
    _enter(server, state)
    server.updated = utcnow()
    return Observed(done, serial, was_running)


def diagnostic(server_id: int, level: str, message: str, source: str = "nefos") -> Diagnostic:
    """A note on the server for its owner (``SNF:diagnostics``), left beside a move."""
    return Diagnostic(server_id=server_id, level=level, source=source, message=message)
