"""Image listings are the database's work: what a user sees, filtered, sorted and paged
in a bounded number of statements, however many images there are (issue 19)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from nefos.images.api_v2_listing import parse_listing
from nefos.images.catalog import ImageQuery, Match
from nefos.images.service import Images
from nefos.server.engines import Engines
from tests.statements import statements


async def nothing() -> AsyncIterator[bytes]:
    yield b"x" * 10


@pytest.fixture
async def people(engines: Engines) -> dict[str, str]:
    found = {}
    for name in ("owner", "caller", "stranger"):
        user, _ = await engines.identity.create_user(f"{name}-{uuid.uuid4().hex[:6]}@example.org")
        found[name] = str(user.id)
    return found


async def shared_images(images: Images, owner: str, caller: str, count: int, tag: str) -> set:
    """``count`` images of each kind the caller sees (public, an accepted membership, a
    read grant on a directory above the file), and as many it does not (private,
    pending, a grant to someone else): their ids, the seen ones."""
    storage = images.storage
    await storage.create_container(owner, "pithos")
    seen = set()
    for n in range(count):
        public = await images.create(owner, name=f"{tag}-public-{n}", visibility="public")
        member = await images.create(owner, name=f"{tag}-member-{n}", tags=[tag])
        await images.set_members(owner, member.id, [caller], add=True)
        await images.set_member_status(caller, member.id, caller, "accepted")
        pending = await images.create(owner, name=f"{tag}-pending-{n}")
        await images.set_members(owner, pending.id, [caller], add=True)
        await images.create(owner, name=f"{tag}-private-{n}", visibility="private")
        folder = f"{tag}/{n}"
        for who, kind in ((caller, "granted"), (str(uuid.uuid4()), "other")):
            await storage.put_object(owner, "pithos", f"{folder}-{kind}", nothing())
            await storage.put_object(owner, "pithos", f"{folder}-{kind}/disk.img", nothing())
            await storage.set_sharing(owner, "pithos", f"{folder}-{kind}", [who], [])
            granted = await images.register(
                owner, f"pithos://{owner}/pithos/{folder}-{kind}/disk.img", f"{tag}-{kind}-{n}"
            )
            if kind == "granted":
                seen.add(granted.id)
        seen |= {public.id, member.id}
    return seen


async def test_a_page_costs_the_same_statements_for_few_and_many(engines: Engines, people):
    images = engines.images
    owner, caller = people["owner"], people["caller"]
    query = parse_listing([("limit", "1000")], engines.settings.limits)

    first = await shared_images(images, owner, caller, 2, "few")
    few, listed = await statements(engines, lambda: images.listing(caller, query))
    assert {i.id for i in listed} == first
    more = await shared_images(images, owner, caller, 20, "many")
    many, listed = await statements(engines, lambda: images.listing(caller, query))
    assert {i.id for i in listed} == first | more  # the same rules, decided in SQL
    assert many == few <= 3, (few, many)

    # The images the listing built are the ones a lookup builds, members and all.
    for image in listed:
        assert image == await images.get(caller, image.id)
    # Plankton's and compute's rule: a pending membership counts too.
    everything = {i.id for i in await images.visible(caller, None)}
    assert len(everything) == len(first | more) + 22
    assert {i.id for i in await images.visible(people["stranger"])} == {
        i.id for i in listed if i.visibility == "public"
    }


async def test_pages_by_marker_cost_the_same_and_cover_the_listing(engines: Engines, people):
    images = engines.images
    owner, caller = people["owner"], people["caller"]
    seen = await shared_images(images, owner, caller, 8, "paged")
    everything = parse_listing([("limit", "1000"), ("sort", "name:asc")], engines.settings.limits)
    whole = [i.id for i in await images.listing(caller, everything)]
    assert set(whole) == seen and len(whole) == len(seen)

    pages: list[list[uuid.UUID]] = []
    costs = []
    marker: list[tuple[str, str]] = []
    while True:
        params = [("limit", "5"), ("sort", "name:asc"), *marker]
        query = parse_listing(params, engines.settings.limits)
        cost, page = await statements(engines, lambda q=query: images.listing(caller, q))
        if not page:
            break
        pages.append([i.id for i in page])
        costs.append(cost)
        marker = [("marker", str(page[-1].id))]
    assert [i for page in pages for i in page] == whole
    assert len(pages) == -(-len(whole) // 5)
    # The first page has no marker to look up; every later one has, in one statement.
    assert set(costs[1:]) == {costs[0] + 1}, costs


async def test_filters_in_the_database_keep_glances_meanings(engines: Engines, people):
    images = engines.images
    owner = people["owner"]
    await images.create(owner, name="", visibility="private")
    queued = await images.create(owner, name="q", disk_format="raw", container_format="bare")
    limits = engines.settings.limits

    async def names(*params: tuple[str, str]) -> list[str]:
        return [i.name for i in await images.listing(owner, parse_listing(params, limits))]

    assert await names(("name", "")) == []  # Glance shows no name as null
    assert await names(("size_min", "0")) == []  # a queued image has no size yet
    assert await names(("size", "")) == ["q", ""]  # null is the empty text
    assert await names(("os_distro", "")) == ["q", ""]  # so is an absent property
    assert await names(("self", f"/v2/images/{queued.id}")) == ["q"]
    assert await names(("tags", "[]"), ("sort", "name:asc")) == ["", "q"]
    assert await names(("disk_format", "in:raw,qcow2")) == ["q"]
    by_owner = ImageQuery(conditions=(Match("owner", "eq", owner),))
    assert len(await images.listing(owner, by_owner)) == 2
