"""Self-tests for the loopback OIDC provider.

The provider is the yardstick for nefos's login tests, so it must itself be checked
against the specs: a provider that is wrong in the same way as nefos would let bugs
through silently.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.identity.oidc_provider import OidcProvider

CLIENT_ID = "nefos-test"
CLIENT_SECRET = "s3cret"
REDIRECT_URI = "http://127.0.0.1:9/auth/callback"


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with OidcProvider(CLIENT_ID, CLIENT_SECRET) as idp:
        yield idp


def _verify_id_token(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """Verify with a JOSE library, not the provider's own code, so signing bugs surface."""
    try:
        from joserfc import jwt
        from joserfc.jwk import KeySet
    except ImportError:
        from authlib.jose import JsonWebKey
        from authlib.jose import jwt as authlib_jwt

        return dict(authlib_jwt.decode(token, JsonWebKey.import_key_set(jwks)))
    return dict(jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"]).claims)


def _authorize(
    provider: OidcProvider, *, nonce: str = "n-0S6_WzA2Mj", **extra: str
) -> dict[str, list[str]]:
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email profile",
        "state": "af0ifjsldkj",
        "nonce": nonce,
        **extra,
    }
    response = httpx.get(f"{provider.issuer}/authorize", params=params, follow_redirects=False)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    return parse_qs(location.query)


def _exchange(provider: OidcProvider, code: str, **extra: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    return httpx.post(
        f"{provider.issuer}/token",
        data={**form, **extra},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )


def test_discovery_document(provider: OidcProvider) -> None:
    doc = httpx.get(provider.metadata_url).json()
    issuer = provider.issuer
    assert issuer.startswith("http://127.0.0.1:")
    assert doc["issuer"] == issuer
    assert doc["authorization_endpoint"] == f"{issuer}/authorize"
    assert doc["token_endpoint"] == f"{issuer}/token"
    assert doc["jwks_uri"] == f"{issuer}/jwks"
    assert doc["userinfo_endpoint"] == f"{issuer}/userinfo"
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"openid", "email", "profile"} <= set(doc["scopes_supported"])
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert {"sub", "email", "name", "nonce"} <= set(doc["claims_supported"])

    jwks = httpx.get(doc["jwks_uri"]).json()
    (key,) = jwks["keys"]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256"
    assert key["kid"] and "d" not in key


def test_full_code_flow(provider: OidcProvider) -> None:
    provider.login_as("user-1", "ada@example.org", "Ada Lovelace")
    query = _authorize(provider, nonce="nonce-123")
    assert query["state"] == ["af0ifjsldkj"]
    (code,) = query["code"]
    assert provider.issued_codes == 1

    response = _exchange(provider, code)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert body["scope"] == "openid email profile"
    assert provider.token_requests == 1

    jwks = httpx.get(f"{provider.issuer}/jwks").json()
    claims = _verify_id_token(body["id_token"], jwks)
    assert claims["iss"] == provider.issuer
    assert claims["aud"] == CLIENT_ID
    assert claims["nonce"] == "nonce-123"
    assert claims["sub"] == "user-1"
    assert claims["email"] == "ada@example.org"
    assert claims["email_verified"] is True
    assert claims["name"] == "Ada Lovelace"
    assert claims["iat"] <= claims["auth_time"] + 5 and claims["exp"] > claims["iat"]

    userinfo = httpx.get(
        f"{provider.issuer}/userinfo",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert userinfo.status_code == 200
    assert userinfo.json()["sub"] == "user-1"
    assert httpx.get(f"{provider.issuer}/userinfo").status_code == 401


def test_code_reuse_is_rejected(provider: OidcProvider) -> None:
    provider.login_as("user-1", "ada@example.org", "Ada Lovelace")
    (code,) = _authorize(provider)["code"]
    assert _exchange(provider, code).status_code == 200

    replay = _exchange(provider, code)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert provider.token_requests == 2


def test_wrong_client_secret_is_rejected(provider: OidcProvider) -> None:
    provider.login_as("user-1", "ada@example.org", "Ada Lovelace")
    (code,) = _authorize(provider)["code"]
    response = httpx.post(
        f"{provider.issuer}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(CLIENT_ID, "not-the-secret"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" in response.headers


def test_client_secret_post_and_redirect_mismatch(provider: OidcProvider) -> None:
    provider.login_as("user-1", "ada@example.org", "Ada Lovelace")
    (code,) = _authorize(provider)["code"]
    response = httpx.post(
        f"{provider.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:9/elsewhere",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_without_login_access_is_denied(provider: OidcProvider) -> None:
    query = _authorize(provider)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["af0ifjsldkj"]
    assert "code" not in query
    assert provider.issued_codes == 0


def test_unregistered_redirect_uri_is_not_followed() -> None:
    with OidcProvider(CLIENT_ID, CLIENT_SECRET, ["http://127.0.0.1:9/ok"]) as idp:
        idp.login_as("user-1", "ada@example.org", "Ada Lovelace")
        response = httpx.get(
            f"{idp.issuer}/authorize",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": "http://127.0.0.1:9/evil",
                "state": "x",
                "scope": "openid",
            },
        )
    assert response.status_code == 400
    assert "location" not in response.headers


def test_pkce_verifier_is_checked(provider: OidcProvider) -> None:
    provider.login_as("user-1", "ada@example.org", "Ada Lovelace")
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    (code,) = _authorize(provider, code_challenge=challenge, code_challenge_method="S256")["code"]
    bad = _exchange(provider, code, code_verifier=secrets.token_urlsafe(48))
    assert bad.json()["error"] == "invalid_grant"

    (code,) = _authorize(provider, code_challenge=challenge, code_challenge_method="S256")["code"]
    assert _exchange(provider, code, code_verifier=verifier).status_code == 200


def test_failure_switches_are_one_shot(provider: OidcProvider) -> None:
    provider.login_as("user-1", "ada@example.org", "Ada Lovelace")
    jwks = provider.jwks

    provider.tamper_next_id_token = True
    (code,) = _authorize(provider)["code"]
    tampered = _exchange(provider, code).json()["id_token"]
    with pytest.raises(Exception, match=r"(?i)signature"):
        _verify_id_token(tampered, jwks)

    provider.wrong_audience_next = True
    (code,) = _authorize(provider)["code"]
    assert _verify_id_token(_exchange(provider, code).json()["id_token"], jwks)["aud"] == (
        "someone-else"
    )

    (code,) = _authorize(provider)["code"]
    assert _verify_id_token(_exchange(provider, code).json()["id_token"], jwks)["aud"] == CLIENT_ID


def test_authlib_starlette_client_logs_in(provider: OidcProvider) -> None:
    """The provider exists for authlib's Starlette client, so prove that pairing works."""
    pytest.importorskip("itsdangerous")
    from authlib.integrations.starlette_client import OAuth
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route
    from starlette.testclient import TestClient

    callback = "http://testserver/callback"
    provider.redirect_uris = [callback]
    oauth = OAuth()
    oauth.register(
        "idp",
        server_metadata_url=provider.metadata_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
    )

    async def login(request: Request) -> Response:
        return await oauth.idp.authorize_redirect(request, callback)

    async def finish(request: Request) -> Response:
        try:
            token = await oauth.idp.authorize_access_token(request)
        except Exception as exc:
            return JSONResponse({"error": type(exc).__name__}, status_code=400)
        return JSONResponse(dict(token["userinfo"]))

    app = Starlette(
        routes=[Route("/login", login), Route("/callback", finish)],
        middleware=[Middleware(SessionMiddleware, secret_key="test")],
    )

    def run_login(client: TestClient) -> httpx.Response:
        # TestClient would route every redirect back into the app, so the hop to the
        # provider and back is made by hand.
        to_provider = client.get("/login", follow_redirects=False).headers["location"]
        back = httpx.get(to_provider, follow_redirects=False).headers["location"]
        return client.get(back)

    provider.login_as("user-7", "grace@example.org", "Grace Hopper")
    with TestClient(app) as client:
        ok = run_login(client)
        assert ok.status_code == 200, ok.text
        assert ok.json()["sub"] == "user-7"
        assert ok.json()["email"] == "grace@example.org"

        provider.tamper_next_id_token = True
        assert run_login(client).status_code == 400

        provider.wrong_audience_next = True
        assert run_login(client).status_code == 400
