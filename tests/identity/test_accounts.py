"""Sign-up, verification, moderation and password reset over the account API, with a
real SMTP server (aiosmtpd) taking the mail: the good path and the bad cases."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import update

from nefos.core.config import Settings, ensure_data_dir
from nefos.identity.models import AccountToken
from nefos.identity.service import Identity, digest
from nefos.server.engines import Engines
from tests.conftest import free_port, nefos_in_process
from tests.mailbox import Mailbox, body, link, smtp_server

ACCOUNT = "/account/v1.0"
PASSWORD = "correct horse battery"
TERMS = "Use this cloud for your studies and research only.\n"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """One per test: each database kind's run of a test gets its own mail."""
    with smtp_server() as running:
        yield running


def mail_settings(tmp_path: Path, database_url: str, port: int, **extra: object) -> Settings:
    terms = tmp_path / "terms.txt"
    terms.write_text(TERMS)
    return ensure_data_dir(
        Settings(
            data_dir=tmp_path / "data",
            database_url=database_url,
            log_level="WARNING",
            signup_auto_activate=False,
            mail={"host": "127.0.0.1", "port": port, "retry_seconds": [0.3, 0.3]},
            signup={"terms_file": terms, "terms_version": "2026-1"},
            **extra,
        )
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str, mailbox: Mailbox) -> Settings:
    return mail_settings(tmp_path, database_url, mailbox.port)


def token_of(mail_link: str) -> str:
    """The token in a link of a mail (``/ui/welcome#/verify/<token>``)."""
    return urlsplit(mail_link).fragment.rsplit("/", 1)[1]


async def sign_up(client: httpx.AsyncClient, address: str, **fields: object) -> httpx.Response:
    body = {
        "email": address,
        "name": "Grace Hopper",
        "password": PASSWORD,
        "accept_terms": "2026-1",
        **fields,
    }
    return await client.post(f"{ACCOUNT}/signup", json=body)


async def password_token(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(
        "/identity/v2.0/tokens",
        json={"auth": {"passwordCredentials": {"username": email, "password": password}}},
    )


@pytest.fixture
async def admin(identity: Identity) -> dict[str, str]:
    _, token = await identity.create_user(
        "moderator@example.org", "an admin password", "Moderator", admin=True, verified=True
    )
    return {"X-Auth-Token": token}


def fault(response: httpx.Response) -> dict[str, object]:
    (only,) = response.json().values()
    return only


async def test_sign_up_verify_moderate_and_log_in(
    client: httpx.AsyncClient, mailbox: Mailbox, admin: dict[str, str], identity: Identity
) -> None:
    info = (await client.get(f"{ACCOUNT}/signup")).json()["signup"]
    assert info["terms"] == {"version": "2026-1", "text": TERMS}
    assert info["moderated"] is True and info["enabled"] is True

    made = await sign_up(client, "grace@example.org")
    assert made.status_code == 202, made.text
    assert made.json()["mail_sent"] is True
    assert made.json()["user"]["state"] == "unverified"
    assert made.json()["user"]["terms_version"] == "2026-1"
    mail = await mailbox.arrival("grace@example.org", "Confirm your e-mail")
    verify_link = link(mail)
    assert "/ui/welcome#/verify/" in verify_link

    refused = await password_token(client, "grace@example.org", PASSWORD)
    assert refused.status_code == 401
    assert "confirm your e-mail address" in refused.text

    verified = await client.post(f"{ACCOUNT}/signup/verify", json={"token": token_of(verify_link)})
    assert verified.status_code == 200, verified.text
    assert verified.json()["user"]["state"] == "pending"
    again = await client.post(f"{ACCOUNT}/signup/verify", json={"token": token_of(verify_link)})
    assert again.status_code == 404
    assert "used already" in fault(again)["message"]

    told = await mailbox.arrival("moderator@example.org", "waits for approval")
    assert "grace@example.org" in body(told) and "/ui/#/admin/users" in body(told)
    waiting = await password_token(client, "grace@example.org", PASSWORD)
    assert waiting.status_code == 401 and "waits for an administrator" in waiting.text

    listed = await client.get(f"{ACCOUNT}/users/pending", headers=admin)
    assert [u["email"] for u in listed.json()["users"]] == ["grace@example.org"]
    user_id = listed.json()["users"][0]["id"]
    done = await client.post(f"{ACCOUNT}/users/{user_id}/activate", headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["user"]["state"] == "active" and done.json()["mail_sent"] is True
    ready = await mailbox.arrival("grace@example.org", "ready")
    assert link(ready).endswith("/ui/login")
    assert (await client.get(f"{ACCOUNT}/users/pending", headers=admin)).json()["users"] == []

    logged_in = await password_token(client, "grace@example.org", PASSWORD)
    assert logged_in.status_code == 200, logged_in.text
    twice = await client.post(f"{ACCOUNT}/users/{user_id}/activate", headers=admin)
    assert twice.status_code == 409


async def test_reject_tells_the_user_why(
    client: httpx.AsyncClient, mailbox: Mailbox, admin: dict[str, str]
) -> None:
    await sign_up(client, "eve@example.org")
    verify_link = link(await mailbox.arrival("eve@example.org", "Confirm"))
    await client.post(f"{ACCOUNT}/signup/verify", json={"token": token_of(verify_link)})
    rejected = await client.post(
        f"{ACCOUNT}/users/eve@example.org/reject",
        headers=admin,
        json={"reason": "Only students of this university"},
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["user"]["state"] == "rejected"
    told = await mailbox.arrival("eve@example.org", "not approved")
    assert "Only students of this university" in body(told)
    refused = await password_token(client, "eve@example.org", PASSWORD)
    assert refused.status_code == 401 and "not approved" in refused.text


async def test_moderation_is_for_administrators(
    client: httpx.AsyncClient, identity: Identity, mailbox: Mailbox
) -> None:
    await sign_up(client, "waiting@example.org")
    _, token = await identity.create_user("mallory@example.org", "mallory's password")
    mallory = {"X-Auth-Token": token}
    for method, path in [
        ("GET", "/users/pending"),
        ("POST", "/users/waiting@example.org/activate"),
        ("POST", "/users/waiting@example.org/reject"),
        ("POST", "/users/mallory@example.org/activate"),
    ]:
        answer = await client.request(method, f"{ACCOUNT}{path}", headers=mallory)
        assert answer.status_code == 403, (path, answer.text)
        assert "forbidden" in answer.json()
        anonymous = await client.request(method, f"{ACCOUNT}{path}")
        assert anonymous.status_code == 401
    assert (await identity.get_user("waiting@example.org")).signup_state == "unverified"


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"email": ""}, "email", "type your e-mail"),
        ({"email": "grace at example"}, "email", "not an e-mail address"),
        ({"name": "  "}, "name", "type your name"),
        ({"name": "a\x07b"}, "name", "control characters"),
        ({"password": ""}, "password", "choose a password"),
        ({"password": "short"}, "password", "at least 8 characters; this has 5"),
        ({"password": "aaaaaaaaaaaa"}, "password", "too easy"),
        ({"password": "someone@example.org"}, "password", "too easy"),
        ({"accept_terms": None}, "terms", "accept them"),
        ({"accept_terms": "2025-9"}, "terms", "changed while you read"),
    ],
)
async def test_sign_up_names_the_field_at_fault(
    client: httpx.AsyncClient,
    identity: Identity,
    fields: dict[str, object],
    field: str,
    words: str,
) -> None:
    refused = await sign_up(client, "someone@example.org", **fields)
    assert refused.status_code == 400, refused.text
    assert fault(refused)["data"] == {"field": field}
    assert words in fault(refused)["message"]
    assert (await identity.find_users("someone@example.org"))[0] == []


async def test_missing_body_fields_and_bad_json(client: httpx.AsyncClient) -> None:
    empty = await client.post(f"{ACCOUNT}/signup", json={})
    assert empty.status_code == 400 and fault(empty)["data"] == {"field": "email"}
    broken = await client.post(f"{ACCOUNT}/signup", content=b"{not json")
    assert broken.status_code == 400
    wrong_type = await client.post(f"{ACCOUNT}/signup", json={"email": 5})
    assert wrong_type.status_code == 400


async def test_duplicate_email_is_refused(
    client: httpx.AsyncClient, identity: Identity, mailbox: Mailbox
) -> None:
    await identity.create_user("taken@example.org", "some password")
    refused = await sign_up(client, "Taken@Example.org")
    assert refused.status_code == 409
    assert fault(refused)["data"] == {"field": "email"}
    assert mailbox.to("taken@example.org") == []
    first = await sign_up(client, "twice@example.org")
    assert first.status_code == 202
    second = await sign_up(client, "twice@example.org", name="Somebody Else")
    assert second.status_code == 409
    assert (await identity.get_user("twice@example.org")).display_name == "Grace Hopper"


async def test_expired_and_unknown_links(
    client: httpx.AsyncClient, mailbox: Mailbox, engines: Engines
) -> None:
    await sign_up(client, "late@example.org")
    token = token_of(link(await mailbox.arrival("late@example.org", "Confirm")))
    async with engines.db.transaction() as s:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        await s.execute(
            update(AccountToken).where(AccountToken.digest == digest(token)).values(expires_at=past)
        )
    expired = await client.post(f"{ACCOUNT}/signup/verify", json={"token": token})
    assert expired.status_code == 400 and "expired" in fault(expired)["message"]
    for bad in ["", "x" * 600, "not-a-token"]:
        answer = await client.post(f"{ACCOUNT}/signup/verify", json={"token": bad})
        assert answer.status_code in (400, 404), answer.text

    # a new link replaces the old; the answer is the same for an unknown address
    asked = await client.post(f"{ACCOUNT}/signup/resend", json={"email": "late@example.org"})
    unknown = await client.post(f"{ACCOUNT}/signup/resend", json={"email": "nobody@example.org"})
    assert asked.status_code == unknown.status_code == 202
    assert asked.json() == unknown.json()
    fresh = token_of(link(await mailbox.arrival("late@example.org", "Confirm", nth=2)))
    assert fresh != token
    verified = await client.post(f"{ACCOUNT}/signup/verify", json={"token": fresh})
    assert verified.status_code == 200
    # a verify token is no reset token, and the other way round
    assert (await client.post(f"{ACCOUNT}/signup/verify", json={"token": token})).status_code == 404


async def test_password_reset(
    client: httpx.AsyncClient, mailbox: Mailbox, identity: Identity
) -> None:
    user, api_token = await identity.create_user("ada@example.org", "the old password", "Ada")
    session = (await password_token(client, "ada@example.org", "the old password")).json()
    old_session_token = session["access"]["token"]["id"]

    unknown = await client.post(f"{ACCOUNT}/password/reset", json={"email": "nobody@example.org"})
    known = await client.post(f"{ACCOUNT}/password/reset", json={"email": "ada@example.org"})
    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    mail = await mailbox.arrival("ada@example.org", "new nefos password")
    token = token_of(link(mail))
    assert "/ui/welcome#/reset/" in link(mail)
    await asyncio.sleep(0.3)  # whatever was sent for the unknown address has arrived
    assert mailbox.to("nobody@example.org") == []

    weak = await client.post(
        f"{ACCOUNT}/password/reset/confirm", json={"token": token, "password": "abc"}
    )
    assert weak.status_code == 400 and fault(weak)["data"] == {"field": "password"}
    done = await client.post(
        f"{ACCOUNT}/password/reset/confirm", json={"token": token, "password": "a brand new one"}
    )
    assert done.status_code == 200, done.text
    reused = await client.post(
        f"{ACCOUNT}/password/reset/confirm", json={"token": token, "password": "yet another one"}
    )
    assert reused.status_code == 404

    for old in (api_token, old_session_token):
        gone = await client.get("/identity/v3/auth/catalog", headers={"X-Auth-Token": old})
        assert gone.status_code == 401
    assert (await password_token(client, "ada@example.org", "the old password")).status_code == 401
    assert (await password_token(client, "ada@example.org", "a brand new one")).status_code == 200
    new_token, _ = await identity.api_token(user.id)
    assert new_token is not None and new_token != api_token


async def test_reset_requests_are_throttled(client: httpx.AsyncClient, settings: Settings) -> None:
    limit = settings.login_throttle.per_account
    answers = [
        (await client.post(f"{ACCOUNT}/password/reset", json={"email": "who@example.org"}))
        for _ in range(limit + 1)
    ]
    assert [a.status_code for a in answers[:limit]] == [202] * limit
    assert answers[-1].status_code == 429
    assert "Retry-After" in answers[-1].headers
    assert "password resets" in fault(answers[-1])["message"]


async def test_a_relay_that_is_down_is_retried(tmp_path: Path, database_url: str) -> None:
    """The relay refuses the first try: the account is whole and unverified, the
    answer says so, and the mail arrives once the relay is back."""
    from nefos.server.app import create_app

    port = free_port()
    settings = mail_settings(tmp_path, database_url, port)
    engines = Engines(settings)
    await engines.start()
    try:
        app = create_app(settings, engines)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as client:
            made = await sign_up(client, "patient@example.org")
            assert made.status_code == 202
            assert made.json()["mail_sent"] is False
            user = await engines.identity.get_user("patient@example.org")
            assert user.signup_state == "unverified"
            with smtp_server(port) as late:
                mail = await late.arrival("patient@example.org", "Confirm")
                verified = await client.post(
                    f"{ACCOUNT}/signup/verify", json={"token": token_of(link(mail))}
                )
                assert verified.status_code == 200
    finally:
        await engines.close()


def test_nefos_user_activate_and_reject(
    settings: Settings, mailbox: Mailbox, database_url: str
) -> None:
    async def pending_pair() -> None:
        engines = Engines(settings)
        try:
            for email in ("cli-yes@example.org", "cli-no@example.org"):
                await engines.accounts.sign_up(email, "Someone", PASSWORD, "2026-1")
                token = token_of(link(await mailbox.arrival(email, "Confirm")))
                await engines.accounts.verify(token)
        finally:
            await engines.close()

    asyncio.run(pending_pair())
    env = {
        "NEFOS_DATA_DIR": str(settings.data_dir),
        "NEFOS_DATABASE_URL": database_url,
        "NEFOS_MAIL__HOST": "127.0.0.1",
        "NEFOS_MAIL__PORT": str(mailbox.port),
    }
    listed = nefos_in_process("user", "pending", env=env)
    assert "cli-yes@example.org" in listed.stdout and "cli-no@example.org" in listed.stdout
    done = nefos_in_process("user", "activate", "cli-yes@example.org", env=env)
    assert "cli-yes@example.org is active" in done.stdout
    assert "ready" in str(mailbox.wait("cli-yes@example.org", "ready")["Subject"])
    no = nefos_in_process(
        "user", "reject", "cli-no@example.org", "--reason", "Not a student", env=env
    )
    assert "rejected" in no.stdout
    assert "Not a student" in body(mailbox.wait("cli-no@example.org", "not approved"))
    again = nefos_in_process("user", "reject", "cli-no@example.org", env=env, check=False)
    assert again.returncode != 0 and "rejected" in again.stderr
