"""The transition table, enumerated: every opcode nefos submits, for each way its job
can end, leaves the state the table says, and the paths that move state agree."""

from __future__ import annotations

import pytest

from nefos.backends import base
from nefos.compute import transitions
from nefos.compute.models import Server
from nefos.compute.transitions import FAILED, MISSING, SUCCEEDED
from nefos.core import errors

EXPECTED = {  # opcode: (state on success, state on failure, state when the instance is gone)
    base.OP_CREATE: ("STARTED", "ERROR", "ERROR"),
    base.OP_STARTUP: ("STARTED", "STOPPED", "STOPPED"),
    base.OP_SHUTDOWN: ("STOPPED", "STOPPED", "STOPPED"),
    base.OP_REBOOT: ("STARTED", "STOPPED", "STOPPED"),
    base.OP_MODIFY: ("STOPPED", "STOPPED", "STOPPED"),
    base.OP_REMOVE: ("DESTROYED", "STOPPED", "DESTROYED"),
}


def server(operstate: str = "STOPPED", task: str | None = None, serial: int | None = None):
    return Server(id=1, operstate=operstate, task=task, task_job_id=None, serial=serial,
                  deleted=False, backendtime=0.0)  # fmt: skip


@pytest.mark.parametrize("opcode", sorted(EXPECTED))
def test_each_job_outcome_leaves_the_state_the_table_says(opcode: str):
    task = next(t for t, o in transitions.TASK_OPCODE.items() if o == opcode)
    for result, wanted in zip((SUCCEEDED, FAILED, MISSING), EXPECTED[opcode], strict=True):
        row = server(task=task, serial=41)
        transitions.submitted(row, task, 7)
        ended = transitions.job_ended(row, opcode, 7, result, 1.0)
        assert row.operstate == wanted, (opcode, result)
        assert row.deleted is (wanted == "DESTROYED")
        assert ended.ended_task and ended.serial == 41 and row.task is None
        assert ended.outcome.done is (result == SUCCEEDED or wanted == "DESTROYED")


def test_a_job_of_another_task_leaves_the_task_alone():
    row = server("STARTED", task="STOP", serial=5)
    transitions.submitted(row, "STOP", 9)
    ended = transitions.job_ended(row, base.OP_REBOOT, 8, SUCCEEDED, 1.0)
    assert not ended.ended_task and ended.serial is None
    assert (row.task, row.task_job_id, row.serial) == ("STOP", 9, 5)


def test_results_of_final_statuses():
    assert transitions.result_of(base.SUCCESS, "") == SUCCEEDED
    assert transitions.result_of(base.ERROR, "Instance 'snf-1' not known") == MISSING
    assert transitions.result_of(base.CANCELED, "") == FAILED


def test_a_refused_job_ends_its_task_as_its_failure_would():
    built = server("BUILD", task="BUILD")
    assert transitions.refused(built, "BUILD") is None
    assert built.operstate == "ERROR" and built.task is None
    stopping = server("STARTED", task="STOP", serial=3)
    assert transitions.refused(stopping, "STOP") == 3
    assert stopping.operstate == "STARTED" and stopping.serial is None


def test_a_state_shown_by_the_backend_ends_the_task_it_completes():
    for task, state, done in (
        ("START", "STARTED", True),
        ("STOP", "STARTED", False),
        ("REBOOT", "STARTED", True),
        ("RESIZE", "STOPPED", False),
        ("DESTROY", "DESTROYED", True),
        ("STOP", "DESTROYED", False),
    ):
        row = server("STOPPED" if task == "START" else "STARTED", task=task, serial=2)
        seen = transitions.observed(row, state)
        assert (seen.done, seen.serial, row.task, row.operstate) == (done, 2, None, state), task
        assert row.deleted is (state == "DESTROYED")


def test_actions_start_only_from_the_states_allowed():
    for task, allowed in transitions.ALLOWED.items():
        for state in ("STARTED", "STOPPED"):
            row = server(state)
            if state in allowed:
                transitions.require(row, task, state)
                assert transitions.begin(row, task, 1) is None and row.task == task
            else:
                with pytest.raises(errors.Conflict):
                    transitions.require(row, task, state)
    busy = server("STARTED", task="STOP", serial=4)
    with pytest.raises(errors.InvalidInput):
        transitions.require(busy, "REBOOT", "ACTIVE")
    transitions.require(busy, "DESTROY", "ACTIVE")
    assert transitions.begin(busy, "DESTROY", 5) == 4  # the overtaken task's commission
