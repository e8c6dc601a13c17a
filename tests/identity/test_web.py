"""Web login: local form, OpenID Connect against a real provider, Shibboleth headers,
and the attacks a browser can be made to carry out against them."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from nefos.core import errors
from nefos.core.config import OidcProvider as OidcSettings
from nefos.core.config import Settings, ensure_data_dir
from nefos.identity.service import Identity
from nefos.server.app import create_app
from nefos.server.engines import Engines
from tests.identity.oidc_provider import OidcProvider

TOKEN = re.compile(r'<code class="token" id="token">([^<]+)</code>')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CLIENT_CALLBACK = "http://127.0.0.1:9999/callback"
EVIL = "https://evil.example.net"


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with OidcProvider("nefos-client", "client-secret") as running:
        yield running


@pytest.fixture
def web_settings(tmp_path: Path, database_url: str, provider: OidcProvider) -> Settings:
    return ensure_data_dir(
        Settings(
            data_dir=tmp_path / "data",
            database_url=database_url,
            log_level="WARNING",
            oidc=[
                OidcSettings(
                    name="campus",
                    title="Campus ID",
                    issuer=provider.issuer,
                    client_id="nefos-client",
                    client_secret="client-secret",
                )
            ],
            shibboleth={"enabled": True, "trusted_proxies": ["127.0.0.1/32"]},
            weblogin_clients=[CLIENT_CALLBACK],
        )
    )


@pytest.fixture
async def web(web_settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Identity]]:
    engines = Engines(web_settings)
    await engines.start()
    app = create_app(web_settings, engines)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=web_settings.base_url) as client:
        yield client, engines.identity
    await engines.close()


async def csrf_of(client: httpx.AsyncClient, page: str = "/ui/login") -> str:
    return CSRF.search((await client.get(page)).text).group(1)


async def login(
    client: httpx.AsyncClient, email: str, password: str, next_url: str = ""
) -> httpx.Response:
    """The browser's way: load the form (its CSRF token), then post it."""
    form = {"email": email, "password": password, "next": next_url}
    return await client.post("/ui/login", data={**form, "csrf": await csrf_of(client)})


async def test_local_login_shows_and_renews_the_token(web):
    client, identity = web
    user, token = await identity.create_user("ann@example.org", password="pw")
    page = await client.get("/ui/login")
    assert page.status_code == 200 and 'name="password"' in page.text
    assert "Campus ID" in page.text
    response = await login(client, "ann@example.org", "pw")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/"  # the web UI's dashboard
    account = await client.get("/ui/account")
    assert account.status_code == 200
    assert TOKEN.search(account.text).group(1) == token
    assert str(user.id) in account.text
    csrf = CSRF.search(account.text).group(1)
    refused = await client.post("/ui/account/renew-token", data={"csrf": "forged"})
    assert refused.status_code == 403
    assert (await identity.authenticate(token)).user_id == user.id
    renewed = await client.post("/ui/account/renew-token", data={"csrf": csrf})
    assert renewed.status_code == 303
    new_token = TOKEN.search((await client.get("/ui/account")).text).group(1)
    assert new_token != token
    assert (await identity.authenticate(new_token)).user_id == user.id
    with pytest.raises(errors.NotAuthenticated, match="Invalid token"):
        await identity.authenticate(token)


async def test_wrong_password_and_logged_out_account(web):
    client, identity = web
    await identity.create_user("ben@example.org", password="pw")
    response = await login(client, "ben@example.org", "nope")
    assert response.status_code == 401
    assert "wrong" in response.text
    redirect = await client.get("/ui/account")
    assert redirect.status_code == 303
    assert redirect.headers["location"].startswith("/ui/login?next=")


async def test_logout(web):
    client, identity = web
    await identity.create_user("cy@example.org", password="pw")
    await login(client, "cy@example.org", "pw")
    csrf = CSRF.search((await client.get("/ui/account")).text).group(1)
    assert (await client.post("/ui/logout", data={"csrf": csrf})).status_code == 303
    assert (await client.get("/ui/account")).status_code == 303


async def test_weblogin_hands_the_token_to_a_client(web):
    client, identity = web
    user, token = await identity.create_user("di@example.org", password="pw")
    target = "http://127.0.0.1:9999/callback"
    first = await client.get("/ui/weblogin", params={"next": target})
    assert first.status_code == 303  # to the login page, then back here
    login_next = parse_qs(urlsplit(first.headers["location"]).query)["next"][0]
    logged = await login(client, "di@example.org", "pw", login_next)
    assert logged.headers["location"] == login_next
    handoff = await client.get(login_next)
    assert handoff.status_code == 302
    location = urlsplit(handoff.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == target
    assert parse_qs(location.query) == {"uuid": [str(user.id)], "token": [token]}
    assert (await client.get("/ui/weblogin", params={"next": "javascript:x"})).status_code == 400


@pytest.mark.parametrize(
    "target",
    [
        f"{EVIL}/",
        "//evil.example.net/",
        "/\\evil.example.net/",
        "\\\\evil.example.net/",
        "/\t/evil.example.net/",
        "javascript:alert(document.cookie)",
    ],
)
async def test_login_next_is_never_an_open_redirect(web, target: str):
    client, identity = web
    await identity.create_user("ed@example.org", password="pw")
    response = await login(client, "ed@example.org", "pw", target)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/"


async def oidc_login(client: httpx.AsyncClient, provider: OidcProvider) -> httpx.Response:
    """Walk the browser's part of the code flow: nefos → provider → nefos callback."""
    start = await client.get("/ui/login/oidc/campus")
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    assert authorize.startswith(provider.issuer)
    async with httpx.AsyncClient() as browser:
        approved = await browser.get(authorize)
    assert approved.status_code == 302
    return await client.get(approved.headers["location"])


async def test_oidc_login_signs_up_then_logs_in(web, provider: OidcProvider):
    client, identity = web
    provider.login_as("sub-42", "fay@campus.example", "Fay")
    done = await oidc_login(client, provider)
    assert done.status_code == 303, done.text
    account = await client.get("/ui/account")
    assert "fay@campus.example" in account.text
    user = await identity.get_user("fay@campus.example")
    assert [(i.provider, i.identifier) for i in await identity.identities(user.id)] == [
        ("campus", "sub-42")
    ]
    assert provider.token_requests == 1
    # A second login finds the same user.
    client.cookies.clear()
    assert (await oidc_login(client, provider)).status_code == 303
    assert len(await identity.list_users()) == 1


async def test_oidc_login_links_to_the_logged_in_user(web, provider: OidcProvider):
    client, identity = web
    user, _ = await identity.create_user("gus@example.org", password="pw")
    await login(client, "gus@example.org", "pw")
    provider.login_as("sub-gus", "gus@campus.example", "Gus")
    assert (await oidc_login(client, provider)).status_code == 303
    logins = {(i.provider, i.identifier) for i in await identity.identities(user.id)}
    assert logins == {("local", "gus@example.org"), ("campus", "sub-gus")}
    client.cookies.clear()
    assert (await oidc_login(client, provider)).status_code == 303
    assert "gus@example.org" in (await client.get("/ui/account")).text


async def test_oidc_tampered_id_token_is_refused(web, provider: OidcProvider):
    client, identity = web
    provider.login_as("sub-bad", "mal@campus.example", "Mal")
    provider.tamper_next_id_token = True
    done = await oidc_login(client, provider)
    assert done.status_code == 401
    assert await identity.list_users() == []


async def test_oidc_denied_and_unknown_provider(web, provider: OidcProvider):
    client, _identity = web
    provider.logout()
    done = await oidc_login(client, provider)
    assert done.status_code == 401
    assert "access_denied" in done.text
    assert (await client.get("/ui/login/oidc/nowhere")).status_code == 404


async def test_shibboleth_from_trusted_proxy(web):
    client, identity = web
    headers = {"eppn": "hal@uni.example", "mail": "hal@uni.example", "displayName": "Hal"}
    response = await client.get("/ui/login/shibboleth", headers=headers)
    assert response.status_code == 303
    user = await identity.get_user("hal@uni.example")
    assert user.display_name == "Hal"
    missing = await client.get("/ui/login/shibboleth", headers={"mail": "x@uni.example"})
    assert missing.status_code == 401


async def test_shibboleth_headers_from_elsewhere_are_refused(web_settings: Settings):
    engines = Engines(web_settings)
    await engines.start()
    try:
        app = create_app(web_settings, engines)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://nefos") as client:
            response = await client.get(
                "/ui/login/shibboleth", headers={"eppn": "ivy@uni.example", "mail": "i@u.example"}
            )
        assert response.status_code == 403
        assert await engines.identity.list_users() == []
    finally:
        await engines.close()


# -- attacks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        f"{EVIL}/",
        "//evil.example.net/callback",
        "/\\evil.example.net/callback",
        "/\t/evil.example.net/callback",
        "javascript:alert(document.cookie)",
        "http://127.0.0.1:9999@evil.example.net/callback",  # user info before the host
        "http://127.0.0.1:9999.evil.example.net/callback",  # a prefix of the host name
        "https://127.0.0.1:9999/callback",  # another scheme
        "http://127.0.0.1:9998/callback",  # another port
        "http://127.0.0.1:9999/callbackfoo",  # outside the prefix's path
        "http://127.0.0.1:8000.evil.example.net/",  # the deployment's origin as a prefix
    ],
)
async def test_weblogin_hands_no_token_to_another_site(web, target: str):
    """The issue's attack: a link to /ui/weblogin?next=<attacker> that a logged-in user
    follows must not send the user's API token to the attacker."""
    client, identity = web
    _user, token = await identity.create_user("eve@example.org", password="pw")
    await login(client, "eve@example.org", "pw")
    handoff = await client.get("/ui/weblogin", params={"next": target})
    assert handoff.status_code == 400
    assert "location" not in handoff.headers
    assert token not in handoff.text
    client.cookies.clear()  # nor is the target carried through a login first
    anonymous = await client.get("/ui/weblogin", params={"next": target})
    assert anonymous.status_code == 400


@pytest.mark.parametrize("target", ["/ui/account", "http://127.0.0.1:8000/ui/account"])
async def test_weblogin_hands_the_token_to_this_deployment(web, target: str):
    client, identity = web
    user, token = await identity.create_user("flo@example.org", password="pw")
    await login(client, "flo@example.org", "pw")
    handoff = await client.get("/ui/weblogin", params={"next": target})
    assert handoff.status_code == 302
    location = urlsplit(handoff.headers["location"])
    assert parse_qs(location.query) == {"uuid": [str(user.id)], "token": [token]}


async def test_cross_site_login_post_is_refused(web):
    """Login CSRF: another site's page posts the attacker's credentials to our form, so
    that the victim works (and uploads) in the attacker's account."""
    client, identity = web
    await identity.create_user("mallory@example.org", password="pw")
    form = {"email": "mallory@example.org", "password": "pw", "next": ""}
    blind = await client.post("/ui/login", data=form, headers={"Origin": EVIL})
    assert blind.status_code == 403
    no_token = await client.post("/ui/login", data=form)  # no Origin sent, no token
    assert no_token.status_code == 403
    csrf = await csrf_of(client)
    wrong_token = await client.post("/ui/login", data={**form, "csrf": csrf + "x"})
    assert wrong_token.status_code == 403
    # Even with a token read from the victim's form, another origin is refused.
    other_site = await client.post(
        "/ui/login", data={**form, "csrf": csrf}, headers={"Origin": EVIL}
    )
    assert other_site.status_code == 403
    null_origin = await client.post(
        "/ui/login", data={**form, "csrf": csrf}, headers={"Origin": "null"}
    )
    assert null_origin.status_code == 403
    assert (await client.get("/ui/account")).status_code == 303  # nobody logged in
    ours = await client.post(
        "/ui/login", data={**form, "csrf": csrf}, headers={"Origin": "http://127.0.0.1:8000"}
    )
    assert ours.status_code == 303
    assert (await client.get("/ui/account")).status_code == 200


async def test_cross_site_logout_and_renewal_are_refused(web):
    client, identity = web
    _user, token = await identity.create_user("gil@example.org", password="pw")
    await login(client, "gil@example.org", "pw")
    csrf = await csrf_of(client, "/ui/account")
    for path in ("/ui/account/renew-token", "/ui/logout"):
        refused = await client.post(path, data={"csrf": csrf}, headers={"Origin": EVIL})
        assert refused.status_code == 403
        assert (await client.post(path, data={})).status_code == 403
    account = await client.get("/ui/account")
    assert account.status_code == 200  # still logged in
    assert TOKEN.search(account.text).group(1) == token  # not renewed


def session_id(cookie: str) -> str:
    """What the signed cookie carries (signed, not sealed): the session's id."""
    payload = cookie.split(".")[0]
    return json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


async def test_old_cookie_is_refused_after_logout(web):
    """Someone who copied the session cookie (a shared computer, a proxy log) keeps
    nothing once the user has logged out."""
    client, identity = web
    _user, token = await identity.create_user("hu@example.org", password="pw")
    await login(client, "hu@example.org", "pw")
    stolen = client.cookies["nefos_session"]
    with pytest.raises(errors.NotAuthenticated):  # the session id is no API token
        await identity.authenticate(session_id(stolen))
    csrf = await csrf_of(client, "/ui/account")
    assert (await client.post("/ui/logout", data={"csrf": csrf})).status_code == 303
    client.cookies.clear()
    replay = {"Cookie": f"nefos_session={stolen}"}
    account = await client.get("/ui/account", headers=replay)
    assert account.status_code == 303
    assert account.headers["location"].startswith("/ui/login")
    handoff = await client.get("/ui/weblogin", params={"next": CLIENT_CALLBACK}, headers=replay)
    assert handoff.status_code == 303
    assert token not in handoff.headers["location"]


async def test_a_new_login_gets_a_new_session(web):
    """Session fixation: a session planted before the login is not the one after it."""
    client, identity = web
    await identity.create_user("io@example.org", password="pw")
    await login(client, "io@example.org", "pw")
    first = session_id(client.cookies["nefos_session"])
    await login(client, "io@example.org", "pw")
    second = session_id(client.cookies["nefos_session"])
    assert first != second
    assert await identity.web_session_user(first) is None
    assert (await identity.web_session_user(second)).email == "io@example.org"


async def test_pages_tell_browsers_not_to_frame_sniff_or_refer(web):
    client, identity = web
    await identity.create_user("jo@example.org", password="pw")
    page = await client.get("/ui/login")
    await login(client, "jo@example.org", "pw")
    account = await client.get("/ui/account")
    for response in (page, account):
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        assert "<style" not in response.text and "<script" not in response.text
    style = await client.get("/ui/static/nefos.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    api = await client.get("/identity/v3")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["referrer-policy"] == "no-referrer"


async def test_password_guessing_on_the_form_is_slowed(web, web_settings: Settings):
    client, identity = web
    await identity.create_user("kay@example.org", password="right")
    for _ in range(web_settings.login_throttle.per_account):
        assert (await login(client, "kay@example.org", "guess")).status_code == 401
    refused = await login(client, "kay@example.org", "right")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= web_settings.login_throttle.window_seconds
    assert "Too many failed logins" in refused.text
    assert (await client.get("/ui/account")).status_code == 303
