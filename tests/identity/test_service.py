"""Identity domain logic, on every database the run reaches."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Literal

import pytest
from argon2 import PasswordHasher, extract_parameters
from sqlalchemy import event, func, select, text

from nefos.core import errors
from nefos.core.db import Database
from nefos.identity import service as identity_service
from nefos.identity.models import AuthIdentity, Project, Token, User
from nefos.identity.service import Identity, digest


async def count(db: Database, model: type) -> int:
    async with db.session() as s:
        return await s.scalar(select(func.count()).select_from(model))


async def test_new_user_has_system_project_and_working_token(identity: Identity, db: Database):
    user, token = await identity.create_user("Alice@Example.org", password="pw", display_name="A")
    assert user.email == "alice@example.org"
    project = await identity.get_project(user.id)
    assert project.is_system and project.name == f"system:{user.id}"
    credentials = await identity.authenticate(token)
    assert credentials.user_id == user.id
    assert credentials.project_id == user.id
    assert credentials.expires_at - credentials.issued_at == dt.timedelta(days=30)
    assert len(token) == 43 and "=" not in token


async def test_tokens_are_stored_hashed(identity: Identity, db: Database):
    _, token = await identity.create_user("bob@example.org")
    async with db.session() as s:
        rows = (await s.execute(text("SELECT digest, sealed FROM tokens"))).all()
    assert rows and all(token not in (row.digest + (row.sealed or "")) for row in rows)
    assert rows[0].digest == digest(token)


async def test_duplicate_email_is_refused_and_nothing_half_written(
    identity: Identity, db: Database
):
    await identity.create_user("carol@example.org")
    with pytest.raises(errors.Conflict):
        await identity.create_user("CAROL@example.org", password="x")
    assert await count(db, User) == 1
    assert await count(db, Project) == 1
    assert await count(db, Token) == 1
    assert await count(db, AuthIdentity) == 0


@pytest.mark.parametrize("email", ["", "no-at-sign", "a b@c", "x@" + "y" * 260])
async def test_bad_email_is_refused(identity: Identity, email: str):
    with pytest.raises(errors.InvalidInput):
        await identity.create_user(email)


async def test_renewal_invalidates_the_old_token(identity: Identity):
    user, old = await identity.create_user("dave@example.org")
    new = await identity.renew_api_token(user.email)
    assert new != old
    with pytest.raises(errors.NotAuthenticated):
        await identity.authenticate(old)
    assert (await identity.authenticate(new)).user_id == user.id
    assert (await identity.api_token(user.id))[0] == new


async def test_expired_token_is_refused(identity: Identity):
    user, _ = await identity.create_user("erin@example.org")
    issued = await identity.issue_token(user, lifetime=dt.timedelta(seconds=-1))
    with pytest.raises(errors.NotAuthenticated, match="expired"):
        await identity.authenticate(issued.token)


async def test_deactivated_user_tokens_stop_and_resume(identity: Identity):
    user, token = await identity.create_user("frank@example.org", password="pw")
    await identity.set_active(user.email, False)
    with pytest.raises(errors.NotAuthenticated, match="not active"):
        await identity.authenticate(token)
    with pytest.raises(errors.NotAuthenticated):
        await identity.password_login(user.email, "pw")
    await identity.set_active(str(user.id), True)
    assert (await identity.authenticate(token)).user_id == user.id


async def test_password_login_takes_password_or_api_token(identity: Identity):
    user, token = await identity.create_user("gina@example.org", password="s3cret")
    assert (await identity.password_login("gina@example.org", "s3cret")).id == user.id
    assert (await identity.password_login(str(user.id), token)).id == user.id
    for wrong in ("nope", "", "x" * 5000):
        with pytest.raises(errors.NotAuthenticated):
            await identity.password_login(user.email, wrong)
    _other, other_token = await identity.create_user("hank@example.org")
    with pytest.raises(errors.NotAuthenticated):
        await identity.password_login(user.email, other_token)
    with pytest.raises(errors.NotAuthenticated):
        await identity.password_login("nobody@example.org", "s3cret")


async def test_user_without_password_has_no_local_login(identity: Identity):
    user, _ = await identity.create_user("ivy@example.org")
    with pytest.raises(errors.NotAuthenticated):
        await identity.password_login(user.email, "anything")
    await identity.set_password(user.email, "now-i-have-one")
    assert (await identity.password_login(user.email, "now-i-have-one")).id == user.id
    providers = {login.provider for login in await identity.identities(user.id)}
    assert providers == {"local"}


async def test_revoke(identity: Identity):
    user, _ = await identity.create_user("jack@example.org")
    issued = await identity.issue_token(user)
    await identity.revoke(issued.token)
    with pytest.raises(errors.NotAuthenticated):
        await identity.authenticate(issued.token)
    with pytest.raises(errors.NotFound):
        await identity.revoke(issued.token)


async def test_several_logins_link_to_one_user(identity: Identity, db: Database):
    user = await identity.external_login("oidc", "sub-1", "kim@example.org", "Kim")
    again = await identity.external_login("oidc", "sub-1", "changed@example.org", "Kim")
    assert again.id == user.id
    await identity.link(user.id, "shibboleth", "kim@uni.example")
    assert (await identity.external_login("shibboleth", "kim@uni.example", "", "")).id == user.id
    with pytest.raises(errors.Conflict):
        await identity.link(user.id, "oidc", "sub-1")
    assert await count(db, AuthIdentity) == 2
    assert await count(db, User) == 1


async def test_external_login_without_email_is_refused(identity: Identity, db: Database):
    with pytest.raises(errors.InvalidInput):
        await identity.external_login("oidc", "sub-2", "", "")
    assert await count(db, User) == 0


async def test_scope_project(identity: Identity):
    user, _ = await identity.create_user("lee@example.org")
    other, _ = await identity.create_user("mo@example.org")
    assert (await identity.scope_project(user)).id == user.id
    assert (await identity.scope_project(user, project_name="lee@example.org")).id == user.id
    assert (await identity.scope_project(user, project_name=f"system:{user.id}")).id == user.id
    assert (await identity.scope_project(user, project_id=str(user.id))).id == user.id
    for kwargs in (
        {"project_id": str(other.id)},
        {"project_name": f"system:{other.id}"},
        {"project_id": "not-a-uuid"},
        {"project_name": "missing"},
    ):
        with pytest.raises(errors.NotAuthenticated):
            await identity.scope_project(user, **kwargs)


async def test_user_catalogs(identity: Identity):
    a, _ = await identity.create_user("na@example.org")
    b, _ = await identity.create_user("nb@example.org")
    by_id, by_name = await identity.user_catalogs([str(a.id), "junk"], ["nb@example.org"])
    assert by_id == {str(a.id): "na@example.org"}
    assert by_name == {"nb@example.org": str(b.id)}
    everyone, _ = await identity.user_catalogs(None, None)
    assert set(everyone) == {str(a.id), str(b.id)}


async def test_first_admin_is_created_once(identity: Identity):
    created = await identity.ensure_admin()
    assert created is not None
    user, password, token = created
    assert user.is_admin
    assert (await identity.password_login(user.email, password)).id == user.id
    assert (await identity.authenticate(token)).is_admin
    assert await identity.ensure_admin() is None


async def test_cached_credentials_follow_this_process_changes(identity: Identity):
    user, token = await identity.create_user("olga@example.org")
    session = await identity.issue_token(user)
    for cached in (token, session.token):
        await identity.authenticate(cached)  # now in the cache
    await identity.revoke(session.token)
    with pytest.raises(errors.NotAuthenticated):
        await identity.authenticate(session.token)
    await identity.set_active(user.email, False)
    with pytest.raises(errors.NotAuthenticated):
        await identity.authenticate(token)


async def test_other_processes_changes_show_within_the_cache_time(db: Database, settings):

    ours = Identity(db, settings.model_copy(update={"token_cache_seconds": 0.3}))
    theirs = Identity(db, settings)  # another process: its own cache
    user, token = await ours.create_user("pia@example.org")
    await ours.authenticate(token)
    await theirs.set_active(user.email, False)
    assert (await ours.authenticate(token)).user_id == user.id  # still trusted
    await asyncio.sleep(0.35)
    with pytest.raises(errors.NotAuthenticated, match="not active"):
        await ours.authenticate(token)


async def test_requests_missing_the_cache_together_share_one_lookup(db: Database, settings):
    ours = Identity(db, settings.model_copy(update={"token_cache_seconds": 60}))
    user, token = await ours.create_user("rhea@example.org")
    lookups = 0

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        nonlocal lookups
        lookups += "FROM tokens" in statement

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        found = await asyncio.gather(*(ours.authenticate(token) for _ in range(20)))
        refused = await asyncio.gather(
            *(ours.authenticate("no-such-token") for _ in range(5)), return_exceptions=True
        )
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert {c.user_id for c in found} == {user.id}
    assert all(isinstance(r, errors.NotAuthenticated) for r in refused)
    assert lookups == 2  # one for the valid token, one for the bad one


async def test_cache_does_not_outlive_the_token(db: Database, settings):
    ours = Identity(db, settings.model_copy(update={"token_cache_seconds": 60}))
    user, _ = await ours.create_user("quin@example.org")
    issued = await ours.issue_token(user, lifetime=dt.timedelta(milliseconds=300))
    await ours.authenticate(issued.token)

    await asyncio.sleep(0.35)
    with pytest.raises(errors.NotAuthenticated, match="expired"):
        await ours.authenticate(issued.token)


class CountingHasher(PasswordHasher):
    """The suite's hasher, also noting every hash it verifies against."""

    def __init__(self, base: PasswordHasher):
        super().__init__(
            time_cost=base.time_cost,
            memory_cost=base.memory_cost,
            parallelism=base.parallelism,
            hash_len=base.hash_len,
            salt_len=base.salt_len,
            type=base.type,
        )
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


async def test_a_wrong_password_costs_the_same_for_any_email(
    identity: Identity, monkeypatch: pytest.MonkeyPatch
):
    """Timing oracle: if only known e-mails cost an argon2 verification, the time of a
    wrong login tells which e-mails have an account (144 ms against 1.4 ms)."""
    spy = CountingHasher(identity_service._hasher)
    monkeypatch.setattr(identity_service, "_hasher", spy)
    known, _ = await identity.create_user("quin@example.org", password="right")
    await identity.external_login("oidc", "sub-rae", "rae@example.org", "Rae")  # no password
    for ref in ("quin@example.org", "nobody@example.org", "rae@example.org", str(uuid.uuid4())):
        spy.verified.clear()
        with pytest.raises(errors.NotAuthenticated, match="user name or password is wrong"):
            await identity.password_login(ref, "guess")
        assert len(spy.verified) == 1, ref
        assert extract_parameters(spy.verified[0]) == extract_parameters(known.password_hash)
