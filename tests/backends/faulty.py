"""The embedded backend with faults to inject, for tests: the production class injects
none. The compute fixtures build their engines with this one (``tests/compute/conftest.py``),
so a test reaches it as ``compute.cluster(backend)``."""

from __future__ import annotations

import random
from typing import Any

from nefos.backends.embedded import EmbeddedCluster, Plan
from nefos.backends.ops import NetworkOp, Op
from nefos.core.bus import Message


class FaultyEmbeddedCluster(EmbeddedCluster):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures: dict[str, list[str]] = {}
        self.drop_events = 0.0  # the share of events lost on the way

    def fail_next(self, opcode: str, message: str = "Injected failure") -> None:
        """Make the next job of ``opcode`` end in error with ``message``."""
        self.failures.setdefault(opcode, []).append(message)

    def change_behind_back(self, instance: str, **changes: Any) -> None:
        """Change an instance as an administrator would on the cluster itself,
        without telling nefos (for reconciler tests); ``running=None`` removes it."""
        self.state.read()
        if changes.get("running", True) is None:
            self.state.instances.pop(instance, None)
        else:
            self.state.instances.setdefault(instance, {"running": False, "vcpus": 1, "memory": 128})
            self.state.instances[instance].update(changes)
        self.state.write()

    def plan(self, op: Op | NetworkOp) -> Plan:
        real = super().plan(op)

        def effect() -> str | None:  # decided when the job runs, as a real failure is
            queued = self.failures.get(op.OPCODE)
            return queued.pop(0) if queued else real.effect()

        return Plan(effect, real.fields, real.depends)

    async def report(self, event: Message) -> None:
        if self.drop_events and random.random() < self.drop_events:
            return
        await super().report(event)
