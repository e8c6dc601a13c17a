"""Keystone v2.0/v3 and the account API over HTTP, in process."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import httpx
import pytest
from sqlalchemy import text

from nefos.identity.service import Identity
from tests.identity.test_web import login as web_login
from tests.quotas.test_projects_api import approved, caller

V3 = "/identity/v3/auth/tokens"


def password_body(user: dict, password: str, scope: object | None = None) -> dict:
    auth: dict = {
        "identity": {"methods": ["password"], "password": {"user": {**user, "password": password}}}
    }
    if scope is not None:
        auth["scope"] = scope
    return {"auth": auth}


@pytest.fixture
async def alice(identity: Identity) -> tuple[str, str]:
    user, token = await identity.create_user("alice@example.org", password="wonderland")
    return str(user.id), token


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


# -- Keystone v3 ------------------------------------------------------------------------


async def test_v3_password_by_name_with_project_by_name(client: httpx.AsyncClient, alice):
    uuid, _ = alice
    body = password_body(
        {"name": "alice@example.org", "domain": {"name": "Default"}},
        "wonderland",
        {"project": {"name": "alice@example.org", "domain": {"name": "Default"}}},
    )
    response = await client.post(V3, json=body)
    assert response.status_code == 201, response.text
    subject = response.headers["X-Subject-Token"]
    token = response.json()["token"]
    assert token["user"] == {
        "id": uuid,
        "name": "alice@example.org",
        "domain": {"id": "default", "name": "Default"},
        "password_expires_at": None,
    }
    assert token["project"]["id"] == uuid
    assert token["project"]["name"] == f"system:{uuid}"
    assert token["methods"] == ["password"]
    assert [r["name"] for r in token["roles"]] == ["member", "reader"]  # member implies reader
    assert parse_time(token["expires_at"]) > parse_time(token["issued_at"])
    types = {entry["type"]: entry for entry in token["catalog"]}
    for wanted in (
        "identity",
        "account",
        "compute",
        "network",
        "volume",
        "volumev3",
        "block-storage",
        "image",
        "object-store",
    ):
        assert wanted in types, wanted
    endpoint = types["object-store"]["endpoints"][0]
    assert endpoint["interface"] == "public"
    assert endpoint["region"] == "RegionOne"
    assert endpoint["url"].endswith(f"/object-store/v1/{uuid}")
    assert types["account"]["name"] == "astakos_account"
    # The new token works everywhere a token is taken.
    check = await client.get(V3, headers={"X-Auth-Token": subject, "X-Subject-Token": subject})
    assert check.status_code == 200


async def test_v3_password_by_id_with_project_by_id_and_unscoped(client: httpx.AsyncClient, alice):
    uuid, _ = alice
    scoped = await client.post(
        V3, json=password_body({"id": uuid}, "wonderland", {"project": {"id": uuid}})
    )
    assert scoped.status_code == 201
    default = await client.post(V3, json=password_body({"id": uuid}, "wonderland"))
    assert default.status_code == 201
    assert default.json()["token"]["project"]["id"] == uuid
    no_catalog = await client.post(
        V3 + "?nocatalog", json=password_body({"id": uuid}, "wonderland", "unscoped")
    )
    assert "catalog" not in no_catalog.json()["token"]


async def test_v3_api_token_works_as_password(client: httpx.AsyncClient, alice):
    uuid, token = alice
    response = await client.post(V3, json=password_body({"id": uuid}, token))
    assert response.status_code == 201


async def test_v3_token_method_keeps_expiry(client: httpx.AsyncClient, alice):
    uuid, api_token = alice
    response = await client.post(
        V3, json={"auth": {"identity": {"methods": ["token"], "token": {"id": api_token}}}}
    )
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    assert token["methods"] == ["token"]
    assert token["user"]["id"] == uuid
    assert parse_time(token["expires_at"]) - dt.datetime.now(dt.UTC) > dt.timedelta(days=29)


async def test_v3_validate_check_revoke(client: httpx.AsyncClient, alice, identity: Identity):
    uuid, api_token = alice
    issued = await client.post(V3, json=password_body({"id": uuid}, "wonderland"))
    subject = issued.headers["X-Subject-Token"]
    headers = {"X-Auth-Token": api_token, "X-Subject-Token": subject}
    shown = await client.get(V3, headers=headers)
    assert shown.status_code == 200
    assert shown.json()["token"]["audit_ids"] == issued.json()["token"]["audit_ids"]
    assert (await client.head(V3, headers=headers)).status_code == 200
    # Someone else may not look at alice's token; an admin may.
    _, bob = await identity.create_user("bob@example.org")
    peek = await client.get(V3, headers={"X-Auth-Token": bob, "X-Subject-Token": subject})
    assert peek.status_code == 403
    assert peek.json()["error"]["code"] == 403
    _admin, admin_token = await identity.create_user("root@example.org", admin=True)
    admin_view = await client.get(
        V3, headers={"X-Auth-Token": admin_token, "X-Subject-Token": subject}
    )
    assert admin_view.status_code == 200
    assert (await client.delete(V3, headers=headers)).status_code == 204
    gone = await client.get(V3, headers=headers)
    assert gone.status_code == 404
    assert gone.json()["error"]["title"] == "Not Found"
    assert (await client.head(V3, headers=headers)).status_code == 404
    # The API token used as X-Auth-Token is untouched.
    assert (await client.get("/identity/v3/auth/catalog", headers=headers)).status_code == 200


async def test_v3_missing_subject_and_missing_auth(client: httpx.AsyncClient, alice):
    _, api_token = alice
    missing = await client.get(V3, headers={"X-Auth-Token": api_token})
    assert missing.status_code == 400
    anonymous = await client.get(V3, headers={"X-Subject-Token": api_token})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["title"] == "Unauthorized"
    assert "WWW-Authenticate" in anonymous.headers


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (password_body({"name": "alice@example.org"}, "wrong"), 401),
        (password_body({"name": "nobody@example.org"}, "wonderland"), 401),
        (
            password_body({"name": "alice@example.org", "domain": {"name": "Other"}}, "wonderland"),
            401,
        ),
        (
            password_body(
                {"name": "alice@example.org"}, "wonderland", {"project": {"name": "someone-elses"}}
            ),
            401,
        ),
        (
            password_body(
                {"name": "alice@example.org"}, "wonderland", {"domain": {"id": "default"}}
            ),
            401,
        ),
        ({"auth": {"identity": {"methods": ["totp"], "totp": {}}}}, 401),
        ({"auth": {"identity": {"methods": []}}}, 400),
        ({"auth": {"identity": {"methods": ["password"]}}}, 400),
        ({"auth": {"identity": {"methods": ["token"]}}}, 400),
        ({"auth": {"identity": {"methods": ["token"], "token": {"id": "bogus"}}}}, 401),
        ({"auth": {"identity": {"methods": "password"}}}, 400),
        ({"auth": []}, 400),
        ({}, 400),
        (password_body({}, "wonderland"), 400),
        (password_body({"name": 12}, "wonderland"), 400),
    ],
)
async def test_v3_bad_requests(client: httpx.AsyncClient, alice, body, status):
    response = await client.post(V3, json=body)
    assert response.status_code == status, response.text
    fault = response.json()["error"]
    assert fault["code"] == status and fault["message"]


async def test_v3_malformed_json(client: httpx.AsyncClient):
    response = await client.post(
        V3, content=b'{"auth": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400


# -- Keystone v2.0, as kamaki sends it ---------------------------------------------------


async def test_v2_token_request_like_kamaki(client: httpx.AsyncClient, alice):
    uuid, token = alice
    response = await client.post(
        "/identity/v2.0/tokens",
        json={"auth": {"token": {"id": token}, "tenantName": uuid}},
    )
    assert response.status_code == 200, response.text
    access = response.json()["access"]
    assert access["token"]["id"] == token
    assert access["token"]["tenant"]["id"] == uuid
    parse_time(access["token"]["expires"])
    assert access["user"]["id"] == uuid
    assert access["user"]["roles_links"] == []
    services = {s["type"]: s for s in access["serviceCatalog"]}
    assert services["account"]["name"] == "astakos_account"
    store = services["object-store"]["endpoints"][0]
    assert store["publicURL"].endswith("/object-store/v1")
    assert store["versionId"] == "v1"
    assert services["compute"]["endpoints"][0]["publicURL"].endswith("/compute/v2.0")
    assert "SNF:uiURL" in services["identity"]["endpoints"][0]


async def test_v2_password_credentials_take_the_token(client: httpx.AsyncClient, alice):
    uuid, token = alice
    response = await client.post(
        "/identity/v2.0/tokens",
        json={"auth": {"passwordCredentials": {"username": uuid, "password": token}}},
    )
    assert response.status_code == 200
    assert response.json()["access"]["token"]["id"] == token
    by_password = await client.post(
        "/identity/v2.0/tokens",
        json={
            "auth": {
                "passwordCredentials": {"username": "alice@example.org", "password": "wonderland"}
            }
        },
    )
    assert by_password.status_code == 200
    new = by_password.json()["access"]["token"]["id"]
    assert new != token
    assert (await client.get(f"/identity/v2.0/tokens/{new}")).status_code == 200


async def test_v2_without_body_gives_the_catalog(client: httpx.AsyncClient):
    response = await client.post("/identity/v2.0/tokens")
    assert response.status_code == 200
    assert "token" not in response.json()["access"]
    assert response.json()["access"]["serviceCatalog"]


async def test_v2_faults(client: httpx.AsyncClient, alice):
    _uuid, token = alice
    bad = await client.post("/identity/v2.0/tokens", json={"auth": {"token": {"id": "nope"}}})
    assert bad.status_code == 401
    assert bad.json()["unauthorized"]["code"] == 401
    other_tenant = await client.post(
        "/identity/v2.0/tokens", json={"auth": {"token": {"id": token}, "tenantName": "x"}}
    )
    assert other_tenant.status_code == 400
    assert "badRequest" in other_tenant.json()
    empty = await client.post("/identity/v2.0/tokens", json={"auth": {}})
    assert empty.status_code == 400
    typed = await client.post("/identity/v2.0/tokens", json={"auth": {"token": {"id": 5}}})
    assert typed.status_code == 400


async def test_v2_validate(client: httpx.AsyncClient, alice):
    uuid, token = alice
    ok = await client.get(f"/identity/v2.0/tokens/{token}")
    assert ok.status_code == 200
    assert ok.json()["access"]["user"]["id"] == uuid
    assert (await client.get(f"/identity/v2.0/tokens/{token}?belongsTo={uuid}")).status_code == 200
    assert (await client.get(f"/identity/v2.0/tokens/{token}?belongsTo=other")).status_code == 404
    missing = await client.get("/identity/v2.0/tokens/unknown")
    assert missing.status_code == 404
    assert missing.json()["itemNotFound"]["code"] == 404


async def test_expired_and_revoked_tokens(client: httpx.AsyncClient, identity: Identity, alice):
    user = await identity.get_user("alice@example.org")
    old = await identity.issue_token(user, lifetime=dt.timedelta(seconds=-5))
    for path in ("/identity/v3/auth/catalog",):
        response = await client.get(path, headers={"X-Auth-Token": old.token})
        assert response.status_code == 401
        assert "expired" in response.json()["error"]["message"]
    live = await identity.issue_token(user)
    await identity.revoke(live.token)
    response = await client.post(
        "/account/v1.0/user_catalogs", json={}, headers={"X-Auth-Token": live.token}
    )
    assert response.status_code == 401
    assert response.json()["unauthorized"]["message"] == "Invalid token"


async def test_disabled_user_is_refused_everywhere(
    client: httpx.AsyncClient, identity: Identity, alice
):
    uuid, token = alice
    await identity.set_active(uuid, False)
    assert (
        await client.post(V3, json=password_body({"id": uuid}, "wonderland"))
    ).status_code == 401
    assert (
        await client.post("/identity/v2.0/tokens", json={"auth": {"token": {"id": token}}})
    ).status_code == 401
    assert (await client.get(f"/identity/v2.0/tokens/{token}")).status_code == 404


# -- account API --------------------------------------------------------------------------


async def test_user_catalogs(client: httpx.AsyncClient, identity: Identity, alice):
    uuid, token = alice
    response = await client.post(
        "/account/v1.0/user_catalogs",
        json={"uuids": [uuid], "displaynames": ["alice@example.org", "ghost@example.org"]},
        headers={"X-Auth-Token": token},
    )
    assert response.status_code == 200
    assert response.json() == {
        "uuid_catalog": {uuid: "alice@example.org"},
        "displayname_catalog": {"alice@example.org": uuid},
    }
    # Synnefo also takes the token as a query parameter.
    query = await client.post(
        f"/account/v1.0/user_catalogs?X-Auth-Token={token}", json={"uuids": [uuid]}
    )
    assert query.status_code == 200


async def test_service_user_catalogs_needs_admin(
    client: httpx.AsyncClient, identity: Identity, alice
):
    uuid, token = alice
    refused = await client.post(
        "/account/v1.0/service/user_catalogs", json={}, headers={"X-Auth-Token": token}
    )
    assert refused.status_code == 403
    assert refused.json()["forbidden"]["code"] == 403
    _, admin_token = await identity.create_user("ops@example.org", admin=True)
    everyone = await client.post(
        "/account/v1.0/service/user_catalogs",
        json={"uuids": None, "displaynames": None},
        headers={"X-Auth-Token": admin_token},
    )
    assert everyone.status_code == 200
    assert uuid in everyone.json()["uuid_catalog"]


async def test_feedback(client: httpx.AsyncClient, alice, db):
    _, token = alice
    headers = {"X-Auth-Token": token}
    form = await client.post(
        "/account/v1.0/feedback",
        data={"feedback_msg": "great cloud", "feedback_data": "{}"},
        headers=headers,
    )
    assert form.status_code == 200
    as_json = await client.post(
        "/account/v1.0/feedback", json={"feedback_msg": "again"}, headers=headers
    )
    assert as_json.status_code == 200
    missing = await client.post("/account/v1.0/feedback", data={}, headers=headers)
    assert missing.status_code == 400
    anonymous = await client.post("/account/v1.0/feedback", data={"feedback_msg": "x"})
    assert anonymous.status_code == 401
    from sqlalchemy import text

    async with db.session() as s:
        messages = (await s.execute(text("SELECT message FROM feedback ORDER BY id"))).scalars()
        assert list(messages) == ["great cloud", "again"]


# -- version documents, limits, request ids ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "key"),
    [
        ("/identity", 300, "versions"),
        ("/identity/", 300, "versions"),
        ("/identity/v3", 200, "version"),
        ("/identity/v3/", 200, "version"),
        ("/identity/v2.0", 200, "version"),
        ("/account/v1.0", 200, "version"),
        ("/compute", 200, "versions"),
        ("/compute/v2.1", 200, "version"),
        ("/compute/v2.0/", 200, "version"),
        ("/network", 200, "versions"),
        ("/network/v2.0", 200, "resources"),
        ("/volume", 300, "versions"),
        ("/volume/v3", 200, "versions"),
        ("/image", 300, "versions"),
    ],
)
async def test_version_documents_are_public(client: httpx.AsyncClient, path, status, key):
    response = await client.get(path)
    assert response.status_code == status
    assert key in response.json()


async def test_compute_version_document_shape(client: httpx.AsyncClient):
    version = (await client.get("/compute/v2.1")).json()["version"]
    assert version["id"] == "v2.1" and version["min_version"] == "2.1"
    assert version["links"][0]["href"].endswith("/compute/v2.1/")
    identity = (await client.get("/identity")).json()["versions"]["values"]
    assert [v["id"] for v in identity] == ["v3.14", "v2.0"]


async def test_oversized_body_is_refused(client: httpx.AsyncClient, settings):
    big = b"x" * (settings.limits.json_body_bytes + 1)
    response = await client.post(V3, content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 413

    async def chunks():
        for _ in range(settings.limits.json_body_bytes // 65536 + 2):
            yield b"y" * 65536

    streamed = await client.post("/identity/v2.0/tokens", content=chunks())
    assert streamed.status_code == 413
    assert streamed.json()["overLimit"]["code"] == 413


async def test_a_content_length_is_ascii_digits(client: httpx.AsyncClient):
    """``\u00b2`` (Latin-1 byte 0xb2) is a digit to ``str.isdigit`` but not to ``int``;
    past int()'s digit limit a string of digits is no number either: 400, not 500."""
    for length in (b"\xb2", b"1" * 5000, b"+1", b" 1"):
        response = await client.post(
            "/identity/v2.0/tokens", headers={"Content-Length": length}, content=b""
        )
        assert response.status_code == 400, length
        assert response.json()["badRequest"]["message"] == "Invalid Content-Length"


async def test_a_nul_is_refused_before_the_database(client: httpx.AsyncClient, identity, db):
    """No name, id or value holds a NUL, and PostgreSQL cannot even store or compare
    one (a 500 there, while SQLite took it): a NUL in a URL, a JSON string or a form is
    refused in the API's fault format, and nothing is written."""
    _, token = await identity.create_user("nul@example.org", password="pw-secret-1")
    auth = {"X-Auth-Token": token}

    async def feedback_rows() -> int:
        async with db.session() as s:
            return await s.scalar(text("SELECT count(*) FROM feedback"))

    refused = [
        await client.get("/account/v1.0/projects", params={"name": "a\0b"}, headers=auth),
        await client.get("/identity/v3/users/a%00b", headers=auth),
        await client.get("/compute/v2.1/os-keypairs/k%00", headers=auth),
        await client.post("/account/v1.0/feedback", json={"feedback_msg": "hi\0"}, headers=auth),
        await client.post("/account/v1.0/feedback", data={"feedback_msg": "hi\0"}, headers=auth),
        await client.post(
            "/account/v1.0/user_catalogs", json={"displaynames": ["a\0"]}, headers=auth
        ),
        await client.post("/identity/v3/auth/tokens", json=password_body({"name": "nul\0"}, "x")),
    ]
    for response in refused:
        assert response.status_code == 400, (response.request.url, response.text)
        body = response.json()
        fault = body.get("error") or body.get("badRequest")
        assert fault["code"] == 400 and "NUL" in fault["message"]
    login = await web_login(client, "nul\0@example.org", "x")
    assert login.status_code == 401
    assert await feedback_rows() == 0


async def test_oversized_headers_are_refused(client: httpx.AsyncClient, settings):
    huge = "a" * (settings.limits.header_value_bytes + 1)
    response = await client.get(V3, headers={"X-Auth-Token": huge})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 400
    many = {f"X-Meta-{i}": "v" * 900 for i in range(30)}
    response = await client.get("/account/v1.0", headers=many)
    assert response.status_code == 400
    assert "badRequest" in response.json()


async def test_unknown_routes_and_methods_use_fault_format(client: httpx.AsyncClient):
    missing = await client.get("/account/v1.0/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["itemNotFound"]["code"] == 404
    wrong = await client.put(V3)
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == 405


async def test_request_id(client: httpx.AsyncClient):
    response = await client.get("/identity/v3")
    generated = response.headers["X-Openstack-Request-Id"]
    assert generated.startswith("req-")
    given = "req-12345678-1234-1234-1234-123456789abc"
    echoed = await client.get("/identity/v3", headers={"X-Openstack-Request-Id": given})
    assert echoed.headers["X-Openstack-Request-Id"] == given
    forged = await client.get("/identity/v3", headers={"X-Openstack-Request-Id": "evil\x01"})
    assert forged.headers["X-Openstack-Request-Id"] != "evil\x01"


async def test_v3_projects_users_domains(client: httpx.AsyncClient, identity: Identity, alice):
    uuid, token = alice
    headers = {"X-Auth-Token": token}
    mine = await client.get("/identity/v3/auth/projects", headers=headers)
    assert mine.status_code == 200
    assert [p["id"] for p in mine.json()["projects"]] == [uuid]
    assert mine.json()["projects"][0]["domain_id"] == "default"
    listed = await client.get(f"/identity/v3/users/{uuid}/projects", headers=headers)
    assert [p["name"] for p in listed.json()["projects"]] == [f"system:{uuid}"]
    shown = await client.get(f"/identity/v3/users/{uuid}", headers=headers)
    assert shown.json()["user"]["name"] == "alice@example.org"
    assert shown.json()["user"]["default_project_id"] == uuid
    project = await client.get(f"/identity/v3/projects/{uuid}", headers=headers)
    assert project.json()["project"]["id"] == uuid
    domain = await client.get("/identity/v3/domains/default", headers=headers)
    assert domain.json()["domain"]["name"] == "Default"
    assert (await client.get("/identity/v3/domains/other", headers=headers)).status_code == 404
    # Another user's records are not alice's to see; an admin sees them.
    bob, _ = await identity.create_user("bob@example.org")
    for path in (f"/identity/v3/users/{bob.id}", f"/identity/v3/users/{bob.id}/projects"):
        assert (await client.get(path, headers=headers)).status_code == 403
    assert (await client.get(f"/identity/v3/projects/{bob.id}", headers=headers)).status_code == 404
    _, admin = await identity.create_user("root@example.org", admin=True)
    as_admin = await client.get(f"/identity/v3/projects/{bob.id}", headers={"X-Auth-Token": admin})
    assert as_admin.status_code == 200
    missing = await client.get(
        "/identity/v3/users/00000000-0000-0000-0000-000000000000", headers={"X-Auth-Token": admin}
    )
    assert missing.status_code == 404
    assert (await client.get("/identity/v3/auth/projects")).status_code == 401


async def test_v3_project_and_user_listings(
    client: httpx.AsyncClient, identity: Identity, settings
):
    """Admins list every project and user (with Keystone's filters); a member lists only
    their own projects; a stranger sees nothing of the member's."""
    member = await caller(identity, "member")
    stranger = await caller(identity, "stranger")
    admin = await caller(identity, "admin", admin=True)
    shared = await approved(client, admin, admin, join_policy="auto")
    joined = await client.post(
        "/account/v1.0/projects/memberships",
        json={"join": {"project": shared}},
        headers=member.headers,
    )
    assert joined.status_code == 201, joined.text
    pending = await client.post(
        "/account/v1.0/projects",
        json={"name": "not-yet", "end_date": "2099-01-01T00:00:00Z"},
        headers=stranger.headers,
    )
    assert pending.status_code == 201, pending.text

    v3 = "/identity/v3"
    listing = await client.get(f"{v3}/projects", headers=admin.headers)
    assert listing.status_code == 200
    projects = {p["id"]: p for p in listing.json()["projects"]}
    assert {member.id, stranger.id, admin.id, shared} <= set(projects)
    assert pending.json()["id"] not in projects  # an application is not a project yet
    assert "truncated" not in listing.json()
    system = projects[member.id]
    assert system["name"] == f"system:{member.id}"
    assert set(system) == {
        "id", "name", "description", "domain_id", "parent_id", "enabled", "is_domain",
        "tags", "options", "links",
    }  # fmt: skip
    assert (system["domain_id"], system["enabled"], system["is_domain"]) == ("default", True, False)
    assert system["links"]["self"].endswith(f"{v3}/projects/{member.id}")

    by_name = await client.get(
        f"{v3}/projects", params={"name": f"system:{member.id}"}, headers=admin.headers
    )
    assert [p["id"] for p in by_name.json()["projects"]] == [member.id]
    for params in ({"name": "nobody"}, {"domain_id": "other"}, {"is_domain": "true"}):
        empty = await client.get(f"{v3}/projects", params=params, headers=admin.headers)
        assert empty.status_code == 200 and empty.json()["projects"] == [], params
    in_domain = await client.get(
        f"{v3}/projects", params={"domain_id": "default"}, headers=admin.headers
    )
    assert len(in_domain.json()["projects"]) == len(projects)

    # The member lists their own projects, by id or through the token; not everyone's.
    theirs = await client.get(f"{v3}/users/{member.id}/projects", headers=member.headers)
    assert [p["id"] for p in theirs.json()["projects"]] == [member.id, shared]
    auth = await client.get(f"{v3}/auth/projects", headers=member.headers)
    assert [p["id"] for p in auth.json()["projects"]] == [member.id, shared]
    assert (await client.get(f"{v3}/projects/{shared}", headers=member.headers)).status_code == 200
    for path in (f"{v3}/projects", f"{v3}/users", f"{v3}/projects?name=system:{member.id}"):
        refused = await client.get(path, headers=member.headers)
        assert refused.status_code == 403, path
        assert refused.json()["error"]["code"] == 403
        assert set(refused.json()["error"]) == {"code", "title", "message"}
    # The stranger sees neither the member's records nor the project they share.
    for path in (f"{v3}/users/{member.id}", f"{v3}/users/{member.id}/projects"):
        refused = await client.get(path, headers=stranger.headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == 403
    hidden = await client.get(f"{v3}/projects/{shared}", headers=stranger.headers)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == 404

    users = await client.get(f"{v3}/users", headers=admin.headers)
    assert users.status_code == 200
    by_id = {u["id"]: u for u in users.json()["users"]}
    assert {member.id, stranger.id, admin.id} <= set(by_id)
    shown = by_id[member.id]
    assert (shown["name"], shown["domain_id"], shown["enabled"]) == (member.email, "default", True)
    assert (shown["password_expires_at"], shown["options"]) == (None, {})
    assert shown["default_project_id"] == member.id
    named = await client.get(f"{v3}/users", params={"name": member.email}, headers=admin.headers)
    assert [u["id"] for u in named.json()["users"]] == [member.id]
    await identity.set_active(stranger.email, False)
    disabled = await client.get(f"{v3}/users", params={"enabled": "false"}, headers=admin.headers)
    assert [u["id"] for u in disabled.json()["users"]] == [stranger.id]
    other = await client.get(f"{v3}/users", params={"domain_id": "x"}, headers=admin.headers)
    assert other.json()["users"] == []
    for path in (
        f"{v3}/users/{uuid4()}",
        f"{v3}/projects/{uuid4()}",
        f"{v3}/users/{uuid4()}/projects",
    ):
        missing = await client.get(path, headers=admin.headers)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == 404, path
    # Non-ASCII digits are no id (int() and uuid.UUID() would take some).
    arabic_indic = "\u0661" * 32
    fancy = await client.get(f"{v3}/projects/{arabic_indic}", headers=admin.headers)
    assert fancy.status_code == 404

    # A listing never grows past the setting: it is cut and says so.
    settings.limits.identity_list = 2
    cut = await client.get(f"{v3}/users", headers=admin.headers)
    assert len(cut.json()["users"]) == 2 and cut.json()["truncated"] is True


async def test_implied_roles_in_tokens_and_the_role_api(
    client: httpx.AsyncClient, identity: Identity
):
    """Keystone's defaults: admin implies member, member implies reader; tokens list the
    implied roles too (v3 and v2.0), and the role records are for admins."""
    member = await caller(identity, "member")
    admin = await caller(identity, "admin", admin=True)
    for who, roles in ((member, ["member", "reader"]), (admin, ["admin", "member", "reader"])):
        token = who.headers["X-Auth-Token"]
        v3 = await client.get(V3, headers={**who.headers, "X-Subject-Token": token})
        assert [r["name"] for r in v3.json()["token"]["roles"]] == roles
        v2 = await client.get(f"/identity/v2.0/tokens/{token}")
        assert [r["name"] for r in v2.json()["access"]["user"]["roles"]] == roles

    inferences = await client.get("/identity/v3/role_inferences", headers=admin.headers)
    assert inferences.status_code == 200
    implied = {
        i["prior_role"]["name"]: [r["name"] for r in i["implies"]]
        for i in inferences.json()["role_inferences"]
    }
    assert implied == {"admin": ["member"], "member": ["reader"]}
    roles = await client.get("/identity/v3/roles", headers=admin.headers)
    assert [r["name"] for r in roles.json()["roles"]] == ["admin", "member", "reader"]
    named = await client.get("/identity/v3/roles?name=reader", headers=admin.headers)
    assert [r["id"] for r in named.json()["roles"]] == ["reader"]
    shown = await client.get("/identity/v3/roles/member", headers=admin.headers)
    assert shown.json()["role"]["domain_id"] is None
    missing = await client.get("/identity/v3/roles/owner", headers=admin.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    for path in ("/identity/v3/roles", "/identity/v3/roles/admin", "/identity/v3/role_inferences"):
        refused = await client.get(path, headers=member.headers)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == 403, path


# -- password guessing, on every path that takes a password ------------------------------


def v3_login(password: str) -> tuple[str, str, dict]:
    body = password_body({"name": "alice@example.org", "domain": {"id": "default"}}, password)
    return "POST", V3, {"json": body}


def v2_login(password: str) -> tuple[str, str, dict]:
    credentials = {"username": "alice@example.org", "password": password}
    return "POST", "/identity/v2.0/tokens", {"json": {"auth": {"passwordCredentials": credentials}}}


def tempauth_login(password: str) -> tuple[str, str, dict]:
    headers = {"X-Auth-User": "alice@example.org", "X-Auth-Key": password}
    return "GET", "/object-store/v1", {"headers": headers}


@pytest.mark.parametrize(
    "attempt, fault",
    [
        (v3_login, lambda r: r.json()["error"]["code"] == 429),
        (v2_login, lambda r: r.json()["overLimit"]["code"] == 429),
        (tempauth_login, lambda r: "Too many failed logins" in r.text),
    ],
    ids=["keystone-v3", "keystone-v2.0", "tempauth"],
)
async def test_password_guessing_is_slowed_on_every_api(
    client: httpx.AsyncClient, alice, settings, attempt, fault
):
    for _ in range(settings.login_throttle.per_account):
        method, url, kwargs = attempt("guess")
        assert (await client.request(method, url, **kwargs)).status_code == 401
    method, url, kwargs = attempt("wonderland")  # right, but too late
    refused = await client.request(method, url, **kwargs)
    assert refused.status_code == 429, refused.text
    assert fault(refused)
    assert 0 < int(refused.headers["Retry-After"]) <= settings.login_throttle.window_seconds
    assert "X-Subject-Token" not in refused.headers and "X-Auth-Token" not in refused.headers
