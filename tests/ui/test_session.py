"""How the web UI's page gets its token: only through the session, only to a request
that carries the session's CSRF token from this origin; and how its shell is served."""

from __future__ import annotations

import re

import httpx

from nefos.identity.service import Identity

CSRF = re.compile(r'name="nefos-csrf" content="([^"]+)"')
FORM_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ORIGIN = "http://127.0.0.1:8000"


async def logged_in(client: httpx.AsyncClient, identity: Identity, email: str) -> str:
    """Log in through the form as a browser does; the shell's CSRF token."""
    await identity.create_user(email, password="pw")
    form_csrf = FORM_CSRF.search((await client.get("/ui/login")).text).group(1)
    form = {"email": email, "password": "pw", "next": "", "csrf": form_csrf}
    response = await client.post("/ui/login", data=form, headers={"Origin": ORIGIN})
    assert response.status_code == 303 and response.headers["location"] == "/ui/"
    shell = await client.get("/ui/")
    assert shell.status_code == 200
    return CSRF.search(shell.text).group(1)


async def test_root_and_anonymous_shell_lead_to_the_login(client: httpx.AsyncClient):
    root = await client.get("/")
    assert root.status_code == 302 and root.headers["location"] == "/ui/"
    shell = await client.get("/ui/")
    assert shell.status_code == 303
    assert shell.headers["location"] == "/ui/login?next=%2Fui%2F"
    token = await client.post("/ui/session/token", headers={"Origin": ORIGIN})
    assert token.status_code == 403  # no session, so no CSRF token either


async def test_shell_runs_only_its_own_scripts(client: httpx.AsyncClient, identity: Identity):
    await logged_in(client, identity, "ann@example.org")
    shell = await client.get("/ui/")
    policy = shell.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "connect-src 'self' ws://127.0.0.1:*;" in policy  # and the console proxy
    assert "unsafe" not in policy and "frame-ancestors 'none'" in policy
    assert shell.headers["cache-control"] == "no-store"
    assert '<script type="module" src="/ui/assets/app.js">' in shell.text
    assert "<script>" not in shell.text  # no inline code, which the policy would block
    app = await client.get("/ui/assets/app.js")
    assert app.status_code == 200 and "javascript" in app.headers["content-type"]
    vendor = await client.get("/ui/assets/vendor/preact-11.2.0.mjs")
    assert vendor.status_code == 200 and "export{" in vendor.text


async def test_the_page_gets_a_session_token_of_its_own(
    client: httpx.AsyncClient, identity: Identity
):
    csrf = await logged_in(client, identity, "ben@example.org")
    answer = await client.post(
        "/ui/session/token", headers={"X-CSRF-Token": csrf, "Origin": ORIGIN}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user"]["email"] == "ben@example.org"
    caller = await identity.authenticate(body["token"])
    assert str(caller.user_id) == body["user"]["id"]
    user = await identity.get_user("ben@example.org")
    api_token, _ = await identity.api_token(user.id)
    assert body["token"] != api_token  # renewing the API token leaves the page working
    quotas = await client.get("/account/v1.0/quotas", headers={"X-Auth-Token": body["token"]})
    assert quotas.status_code == 200 and body["project"] in quotas.json()
    again = await client.post("/ui/session/token", headers={"X-CSRF-Token": csrf})
    assert again.json()["token"] == body["token"]  # a reload reuses it


async def test_token_refused_without_the_csrf_header_or_from_another_site(
    client: httpx.AsyncClient, identity: Identity
):
    csrf = await logged_in(client, identity, "cy@example.org")
    refusals = [
        {},  # a plain cross-site POST cannot set the header
        {"X-CSRF-Token": csrf + "x"},
        {"X-CSRF-Token": csrf, "Origin": "https://evil.example.net"},
        {"X-CSRF-Token": csrf, "Origin": "null"},
        {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"},
        {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-site"},
    ]
    for headers in refusals:
        answer = await client.post("/ui/session/token", headers=headers)
        assert answer.status_code == 403, headers
        assert "token" not in answer.json()
    allowed = {"X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin", "Origin": ORIGIN}
    assert (await client.post("/ui/session/token", headers=allowed)).status_code == 200
    assert (await client.get("/ui/session/token")).status_code == 405  # never by a link


async def test_logout_revokes_the_pages_token(client: httpx.AsyncClient, identity: Identity):
    csrf = await logged_in(client, identity, "dee@example.org")
    token = (await client.post("/ui/session/token", headers={"X-CSRF-Token": csrf})).json()
    headers = {"X-Auth-Token": token["token"]}
    assert (await client.get("/account/v1.0/quotas", headers=headers)).status_code == 200
    out = await client.post("/ui/logout", data={"csrf": csrf}, headers={"Origin": ORIGIN})
    assert out.status_code == 303
    assert (await client.get("/account/v1.0/quotas", headers=headers)).status_code == 401
    after = await client.post("/ui/session/token", headers={"X-CSRF-Token": csrf})
    assert after.status_code == 403  # the session, and its CSRF token, are gone
