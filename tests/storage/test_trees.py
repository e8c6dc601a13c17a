"""Copies, moves and deletes of whole trees (``nefos.storage.trees``), with pages far
smaller than the trees, so that every one reads several pages and nothing is cut short."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from nefos.core import errors
from nefos.server.engines import Engines
from nefos.storage.service import Namespace, ObjectRecord

PAGE = 3
TREE = [f"d/{i:02}" for i in range(8)] + ["d/sub/x", "d/sub/y"]  # more than three pages


@pytest.fixture
def ns(engines: Engines) -> Namespace:
    return engines.storage


async def new_user(engines: Engines) -> str:
    user, _ = await engines.identity.create_user(f"t-{uuid.uuid4().hex[:6]}@example.org")
    return str(user.id)


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def names(ns: Namespace, account: str, prefix: str = "") -> list[str]:
    listed = await ns.list_objects(account, "c", prefix=prefix)
    return [entry.name for entry in listed]


async def planted(ns: Namespace, account: str) -> None:
    await ns.create_container(account, "c")
    await ns.put_object(account, "c", "d", one(b""), "application/directory")
    for name in [*TREE, "e"]:
        await ns.put_object(account, "c", name, one(name.encode()), meta={"k": name})


async def test_a_tree_copied_into_itself_is_copied_once_page_after_page(
    ns: Namespace, engines: Engines
):
    account = await new_user(engines)
    await planted(ns, account)
    done = await ns.copy_tree(
        account, account, "c", "d", account, "c", "d/copy", "/", meta={"m": "1"}, page=PAGE
    )
    assert done.name == "d/copy"  # the named object's copy
    copies = await names(ns, account, "d/copy/")
    assert copies == [name.replace("d/", "d/copy/", 1) for name in TREE]  # no copy of a copy
    copied = await ns.get_object(account, "c", "d/copy/sub/y")
    assert copied.meta == {"k": "d/sub/y", "m": "1"}
    assert await names(ns, account, "d/0") == TREE[:8]  # the source stays


async def test_a_tree_moves_whole_and_deletes_whole(ns: Namespace, engines: Engines):
    account = await new_user(engines)
    await planted(ns, account)
    moved = await ns.copy_tree(
        account, account, "c", "d", account, "c", "m", "/", move=True, page=PAGE
    )
    assert isinstance(moved, ObjectRecord) and moved.name == "m"
    assert await names(ns, account) == ["e", "m", *[n.replace("d/", "m/", 1) for n in TREE]]
    assert await ns.delete_tree(account, account, "c", "m", "/", page=PAGE) == len(TREE) + 1
    assert await names(ns, account) == ["e"]
    with pytest.raises(errors.NotFound):
        await ns.delete_tree(account, account, "c", "m", "/", page=PAGE)
    with pytest.raises(errors.NotFound):
        await ns.copy_tree(account, account, "c", "m", account, "c", "n", "/", page=PAGE)


async def test_an_emptied_container_loses_every_page(ns: Namespace, engines: Engines):
    account = await new_user(engines)
    await planted(ns, account)
    assert await ns.empty_container(account, "c", page=PAGE) == len(TREE) + 2
    assert await names(ns, account) == []
    assert (await ns.container(account, "c")).count == 0


async def test_a_refusal_anywhere_in_the_tree_changes_nothing(ns: Namespace, engines: Engines):
    """The rights on the last page are checked before the first page is touched."""
    account, other = await new_user(engines), await new_user(engines)
    await planted(ns, account)
    await ns.set_sharing(account, "c", "d", read=[], write=[other])  # the whole tree
    await ns.set_sharing(account, "c", "d/sub/y", read=[other], write=[])  # but this one
    before = await names(ns, account)
    with pytest.raises(errors.PermissionDenied):
        await ns.delete_tree(other, account, "c", "d", "/", page=PAGE)
    with pytest.raises(errors.PermissionDenied):
        await ns.copy_tree(
            other, account, "c", "d", account, "c", "d/mv", "/", move=True, page=PAGE
        )
    assert await names(ns, account) == before
    # Read rights suffice for a copy into the caller's own account, page after page.
    await ns.create_container(other, "c")
    await ns.copy_tree(other, account, "c", "d", other, "c", "mine", "/", page=PAGE)
    assert await names(ns, other) == ["mine", *[n.replace("d/", "mine/", 1) for n in TREE]]
    await ns.set_sharing(account, "c", "d/sub/y", read=[], write=[])  # inherits write again
    assert await ns.delete_tree(other, account, "c", "d", "/", page=PAGE) == len(TREE) + 1
    assert await names(ns, account) == ["e"]
