"""Nova's quota sets (``os-quota-sets``) over nefos's quotas.

Nova names per-project limits; nefos holds them per project and per member, in its own
resources and units. Four Nova keys are holdings (the same ones ``/limits`` reports);
the others are fixed by nefos's code or settings, and read-only here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from nefos.compute.keypairs import MAX_KEYPAIRS
from nefos.compute.service import MAX_PERSONALITY, MAX_PERSONALITY_SIZE
from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.numbers import INT64_MIN, ascii_int
from nefos.quotas.models import NO_SOURCE
from nefos.quotas.service import MAX_QUANTITY, Quotas, project_holder, user_holder

MiB = 1 << 20
# Nova key -> (nefos resource, units of it per Nova unit)
HELD = {
    "instances": ("cyclades.vm", 1),
    "cores": ("cyclades.total_cpu", 1),
    "ram": ("cyclades.total_ram", MiB),
    "floating_ips": ("cyclades.floating_ip", 1),
}


@dataclass(frozen=True)
class QuotaItem:
    limit: int
    in_use: int
    reserved: int  # taken by commissions not yet decided


def fixed(settings: Settings) -> dict[str, int]:
    """The keys nefos does not hold as quotas; 0 for what nefos has none of yet."""
    return {
        "key_pairs": MAX_KEYPAIRS,
        "metadata_items": settings.compute.max_metadata,
        "injected_files": MAX_PERSONALITY,
        "injected_file_content_bytes": MAX_PERSONALITY_SIZE,
        "injected_file_path_bytes": 255,
        "server_groups": 0,
        "server_group_members": 0,
        "security_groups": 0,
        "security_group_rules": 0,
        "fixed_ips": -1,
        "networks": 0,
    }


async def quota_set(
    quotas: Quotas, settings: Settings, project: uuid.UUID, user: uuid.UUID | None
) -> dict[str, QuotaItem]:
    """The project's limits, or with ``user`` that member's in the project. A holding
    that does not exist (not a member, no such project) reads as a limit of 0."""
    holder = project_holder(project) if user is None else user_holder(user)
    source = NO_SOURCE if user is None else project_holder(project)
    found = {h.resource: h for h in await quotas.holdings([holder]) if h.source == source}
    items: dict[str, QuotaItem] = {}
    for key, (resource, unit) in HELD.items():
        holding = found.get(resource)
        if holding is None:
            items[key] = QuotaItem(0, 0, 0)
            continue
        items[key] = QuotaItem(
            holding.limit // unit,
            holding.usage_min // unit,
            (holding.usage_max - holding.usage_min) // unit,
        )
    for key, value in fixed(settings).items():
        items[key] = QuotaItem(value, 0, 0)
    return items


def defaults(quotas: Quotas, settings: Settings) -> dict[str, int]:
    """What a new user's system project starts with (``[quota_defaults]``)."""
    found = {key: quotas.default_limit(resource) // unit for key, (resource, unit) in HELD.items()}
    return {**found, **fixed(settings)}


def parse_update(settings: Settings, body: dict[str, object]) -> dict[str, int]:
    """The nefos limits a quota-set update asks for; 400 naming anything else."""
    changes: dict[str, int] = {}
    read_only = fixed(settings)
    for key, value in body.items():
        if key == "force":
            continue
        if key in read_only:
            raise errors.InvalidInput(
                f"Quota {key} is fixed by nefos ({read_only[key]}) and cannot be set"
            )
        if key not in HELD:
            raise errors.InvalidInput(f"Bad key(s) {key} in quota_set")
        if isinstance(value, str):  # Nova takes "10" as 10
            value = ascii_int(value, INT64_MIN)
        if not isinstance(value, int) or isinstance(value, bool):
            raise errors.InvalidInput(f"Quota {key} must be an integer")
        resource, unit = HELD[key]
        if not 0 <= value <= MAX_QUANTITY // unit:
            raise errors.InvalidInput(
                f"Quota {key} must be between 0 and {MAX_QUANTITY // unit} "
                "(nefos quotas have no unlimited -1)"
            )
        changes[resource] = value * unit
    return changes


async def update(
    quotas: Quotas, project: uuid.UUID, user: uuid.UUID | None, changes: dict[str, int]
) -> None:
    for resource, limit in changes.items():
        if user is None:
            await quotas.set_project_quota(project, resource, limit)
        else:
            await quotas.set_member_quota(user, project, resource, limit)
