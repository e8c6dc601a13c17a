"""What a token from an application credential may do, read when the token is checked.

Its access rules become patterns over request paths: a rule's path is matched below
its service's prefix, so a compute rule's ``/v2.1/servers/*`` is the request path
``/compute/v2.1/servers/<id>``. ``*`` and ``{name}`` stand for one path segment, ``**``
for any number of them, as in Keystone's middleware. A rule for a service nefos does
not serve allows nothing here.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core.auth import AccessRule, Delegation
from nefos.identity.catalog import SERVICES
from nefos.identity.models import AccessRule as RuleRecord
from nefos.identity.models import ApplicationCredential, CredentialRule

SERVICE_PREFIXES = {s.type: "/" + s.v3_path.strip("/").split("/")[0] for s in SERVICES}
_PATH_TOKEN = re.compile(r"(?P<tag>\{[^}]*\})|(?P<any>\*\*)|(?P<one>\*)|(?P<literal>[^{*]+|.)")
_NOTHING = re.compile(r"(?!)")


def rule_pattern(service: str, path: str) -> re.Pattern[str]:
    """The request paths an access rule covers, matched whole."""
    prefix = SERVICE_PREFIXES.get(service)
    if prefix is None:
        return _NOTHING
    parts = [re.escape(prefix)]
    for token in _PATH_TOKEN.finditer(path):
        if token["any"]:
            parts.append(".*")
        elif token["one"] or token["tag"]:
            parts.append("[^/]+")
        else:
            parts.append(re.escape(token.group()))
    return re.compile("".join(parts))


async def load_delegation(s: AsyncSession, credential_id: uuid.UUID) -> Delegation | None:
    """What a token from this credential may do (``None``: the credential is gone)."""
    credential = await s.get(ApplicationCredential, credential_id)
    if credential is None:
        return None
    rules = await s.scalars(
        select(RuleRecord)
        .join(CredentialRule, CredentialRule.rule_id == RuleRecord.id)
        .where(CredentialRule.credential_id == credential_id)
    )
    return Delegation(
        credential_id=credential.id,
        name=credential.name,
        roles=tuple(credential.roles.split(",")),
        unrestricted=credential.unrestricted,
        access_rules=tuple(AccessRule(r.method, rule_pattern(r.service, r.path)) for r in rules),
    )
