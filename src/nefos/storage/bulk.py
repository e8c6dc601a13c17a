"""Swift's bulk delete as one operation: a list of ``/container[/object]`` paths of
one account, deleted as its owner, objects first so their containers can empty.

Each path is its own transaction, as Swift deletes each on its own: a refused path
is reported and the rest go on, until ``max_failures`` paths have been refused; then
the rest are left alone and the result says so (Swift's ``max_failed_deletes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from nefos.core import errors
from nefos.storage.containers import Containers
from nefos.storage.writes import Writer


@dataclass
class BulkDeleted:
    """What a bulk delete did: paths deleted, paths not there, paths refused with
    why, and whether it stopped at ``max_failures`` refusals."""

    deleted: int = 0
    not_found: int = 0
    failures: list[tuple[str, errors.NefosError]] = field(default_factory=list)
    stopped: bool = False


class BulkDeleter:
    def __init__(self, containers: Containers, writer: Writer) -> None:
        self.containers = containers
        self.writer = writer

    async def bulk_delete(
        self, user: str, account: str, paths: Sequence[str], max_failures: int
    ) -> BulkDeleted:
        """Delete ``paths`` (as the body gave them, each ``/container[/object]``) in
        ``account``; only its owner may (PermissionDenied before anything is done)."""
        if user != account:
            raise errors.PermissionDenied("Only the account's owner may do this")
        done = BulkDeleted()
        objects = [p for p in paths if "/" in p.strip("/")]
        containers = [p for p in paths if "/" not in p.strip("/")]
        for path in [*objects, *containers]:
            container, _, name = path.strip("/").partition("/")
            try:
                if not container:
                    raise errors.InvalidInput("No container")
                if name:
                    await self.writer.delete_object(account, container, name, muser=user)
                else:
                    await self.containers.delete_container(account, container)
                done.deleted += 1
            except errors.NotFound:
                done.not_found += 1
            except errors.NefosError as error:
                done.failures.append((path, error))
                if len(done.failures) >= max_failures:  # as Swift: even on the last path
                    done.stopped = True
                    break
        return done
