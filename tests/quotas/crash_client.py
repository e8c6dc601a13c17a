"""A calling service that dies in the middle of paying for a resource (run by a test).

    python crash_client.py DATABASE_URL DATA_DIR USER_UUID after-commit|before-commit

It issues a commission for one ``astakos.pending_app`` and creates a project row as
"the resource", using the real serials helper, then kills itself with SIGKILL either
after the resource change committed or before it did.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

from nefos.core.config import Settings, ensure_data_dir
from nefos.identity.models import Project
from nefos.quotas.serials import settled
from nefos.quotas.service import charge
from nefos.server.engines import Engines


async def main(database_url: str, data_dir: str, user: str, when: str) -> None:
    settings = ensure_data_dir(Settings(data_dir=Path(data_dir), database_url=database_url))
    engines = Engines(settings)
    async with settled(engines.db, engines.quotas, "astakos") as settlement:
        await settlement.issue(charge(user, user, "astakos.pending_app", 1), name="crash")
        async with settlement.transaction() as session:
            session.add(Project(id=uuid.uuid4(), name=f"crash-{when}", owner_id=uuid.UUID(user)))
            await session.flush()
            if when == "before-commit":
                os.kill(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)  # committed, not yet accepted


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
