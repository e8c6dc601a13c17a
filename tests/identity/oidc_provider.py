"""A small, real OpenID Connect provider for tests, served on loopback.

nefos logs users in through authlib's Starlette client. Mocking authlib would only
prove that nefos calls the mock; running a genuine provider over HTTP exercises
discovery, the redirect dance, client authentication, PKCE and ID token signature
and claim validation exactly as production does. The provider auto-approves whoever
``login_as`` names, so no browser or HTML form is involved.

Only the stdlib, ``cryptography`` and a JOSE library (``joserfc``, falling back to
``authlib.jose``) are used, so the fixture adds no dependencies to the test suite.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["OidcProvider"]

# Hosts accepted as redirect targets when no explicit allow-list is configured.
# Anything else would let a test accidentally "redirect" a code off the machine.
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# Codes are meant to be exchanged within seconds; a short life makes a test that
# forgets to exchange promptly fail loudly instead of passing by luck.
_CODE_TTL_SECONDS = 60
_MAX_BODY_BYTES = 64 * 1024
_SUPPORTED_SCOPES = ["openid", "email", "profile"]
_SUPPORTED_CLAIMS = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "email",
    "email_verified",
    "name",
]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_to_b64url(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _s256(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


class _OAuthError(Exception):
    """Carries an RFC 6749 error out of deep validation code to one place that renders it."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class _Identity:
    sub: str
    email: str
    name: str
    auth_time: int


@dataclass(frozen=True)
class _CodeGrant:
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    identity: _Identity
    expires_at: float


@dataclass(frozen=True)
class _AccessGrant:
    identity: _Identity
    scope: str
    expires_at: float


@dataclass
class _State:
    codes: dict[str, _CodeGrant] = field(default_factory=dict)
    access_tokens: dict[str, _AccessGrant] = field(default_factory=dict)


class _Signer:
    """Hides which JOSE library is present so the provider works with either installed."""

    def __init__(self, private_key: rsa.RSAPrivateKey, kid: str) -> None:
        self._kid = kid
        try:
            from joserfc import jwt as joserfc_jwt
            from joserfc.jwk import RSAKey
        except ImportError:
            from authlib.jose import jwt as authlib_jwt

            pem = private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )

            def sign(claims: dict[str, Any]) -> str:
                header = {"alg": "RS256", "kid": kid, "typ": "JWT"}
                return authlib_jwt.encode(header, claims, pem).decode("ascii")

        else:
            key = RSAKey.import_key(private_key)

            def sign(claims: dict[str, Any]) -> str:
                header = {"alg": "RS256", "kid": kid, "typ": "JWT"}
                return joserfc_jwt.encode(header, claims, key, algorithms=["RS256"])

        self.sign = sign


class OidcProvider:
    """An authorization-code OpenID Connect provider running in a background thread.

    Use as ``with OidcProvider("cid", "secret") as idp: ...`` or call ``start``/``stop``
    from a fixture. ``issuer`` is only known once started because the port is chosen
    by the OS, which keeps parallel test runs from colliding.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str] | None = None,
        *,
        access_token_ttl: int = 3600,
        id_token_ttl: int = 300,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = list(redirect_uris) if redirect_uris is not None else None
        self.access_token_ttl = access_token_ttl
        self.id_token_ttl = id_token_ttl

        # Counters and one-shot switches are plain attributes so tests can read and
        # flip them directly; handler threads touch them only under ``_lock``.
        self.token_requests = 0
        self.issued_codes = 0
        self.tamper_next_id_token = False
        self.wrong_audience_next = False

        self._private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._public_jwk = self._build_public_jwk()
        self._signer = _Signer(self._private_key, self._public_jwk["kid"])

        self._lock = threading.Lock()
        self._state = _State()
        self._identity: _Identity | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._issuer: str | None = None

    # -- lifecycle ---------------------------------------------------------------

    @property
    def issuer(self) -> str:
        """Fails loudly before ``start`` rather than handing out a URL nothing listens on."""
        if self._issuer is None:
            raise RuntimeError("OidcProvider has not been started")
        return self._issuer

    @property
    def metadata_url(self) -> str:
        """What authlib's ``server_metadata_url`` needs, so callers need not rebuild it."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> None:
        """Bind an OS-chosen loopback port so concurrent test sessions never clash."""
        if self._server is not None:
            raise RuntimeError("OidcProvider is already running")
        server = _Server(("127.0.0.1", 0), _Handler, self)
        host, port = server.server_address[:2]
        self._issuer = f"http://{host}:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"oidc-provider-{port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Safe to call twice so fixture teardown need not track whether start succeeded."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> OidcProvider:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- test controls -----------------------------------------------------------

    def login_as(self, sub: str, email: str, name: str) -> None:
        """Stands in for a user signing in at the provider; later authorizations approve them."""
        identity = _Identity(sub=sub, email=email, name=name, auth_time=int(time.time()))
        with self._lock:
            self._identity = identity

    def logout(self) -> None:
        """Lets a test check the denied path after an earlier login in the same provider."""
        with self._lock:
            self._identity = None

    @property
    def jwks(self) -> dict[str, Any]:
        """Exposed so tests can verify tokens without a round-trip to ``/jwks``."""
        return {"keys": [dict(self._public_jwk)]}

    # -- protocol ----------------------------------------------------------------

    def discovery_document(self) -> dict[str, Any]:
        """Built per request because the issuer depends on the port chosen at start."""
        issuer = self.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": list(_SUPPORTED_SCOPES),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": list(_SUPPORTED_CLAIMS),
            "code_challenge_methods_supported": ["S256"],
        }

    def _build_public_jwk(self) -> dict[str, str]:
        numbers = self._private_key.public_key().public_numbers()
        n, e = _int_to_b64url(numbers.n), _int_to_b64url(numbers.e)
        # RFC 7638 thumbprint: a stable, content-derived kid, as real providers use.
        canonical = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"))
        kid = _b64url(hashlib.sha256(canonical.encode("ascii")).digest())
        return {"kty": "RSA", "n": n, "e": e, "kid": kid, "use": "sig", "alg": "RS256"}

    def _redirect_uri_allowed(self, redirect_uri: str) -> bool:
        if self.redirect_uris is not None:
            # Exact string match, as OIDC mandates; prefix matching hides real bugs.
            return redirect_uri in self.redirect_uris
        try:
            parts = urlsplit(redirect_uri)
            _ = parts.port  # raises ValueError on a malformed port
        except ValueError:
            return False
        return (
            parts.scheme in ("http", "https")
            and parts.hostname in _LOOPBACK_HOSTS
            and not parts.fragment
        )

    def _authorize(self, params: dict[str, str]) -> tuple[str, dict[str, str]]:
        """Return the redirect target and the query to append: a code or an OAuth error."""
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        # RFC 6749 4.1.2.1: with a bad client or redirect_uri we must not redirect,
        # otherwise the provider becomes an open redirector.
        if client_id != self.client_id:
            raise _OAuthError("invalid_request", "unknown client_id")
        if not redirect_uri or not self._redirect_uri_allowed(redirect_uri):
            raise _OAuthError("invalid_request", "redirect_uri missing or not registered")

        state = params.get("state")
        echo = {"state": state} if state else {}

        def fail(error: str, description: str) -> tuple[str, dict[str, str]]:
            return redirect_uri, {"error": error, "error_description": description, **echo}

        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "only response_type=code is supported")
        if not state:
            return fail("invalid_request", "state is required")
        scope = params.get("scope", "")
        if "openid" not in scope.split():
            return fail("invalid_scope", "scope must include openid")
        challenge = params.get("code_challenge")
        if challenge is not None:
            if params.get("code_challenge_method") != "S256":
                return fail("invalid_request", "only code_challenge_method=S256 is supported")
            if not 43 <= len(challenge) <= 128:
                return fail("invalid_request", "malformed code_challenge")

        with self._lock:
            identity = self._identity
            if identity is None:
                return fail("access_denied", "no user is logged in at the provider")
            code = secrets.token_urlsafe(32)
            self._state.codes[code] = _CodeGrant(
                client_id=client_id,
                redirect_uri=redirect_uri,
                scope=scope,
                nonce=params.get("nonce"),
                code_challenge=challenge,
                identity=identity,
                expires_at=time.monotonic() + _CODE_TTL_SECONDS,
            )
            self.issued_codes += 1
        return redirect_uri, {"code": code, "state": state}

    def _authenticate_client(self, authorization: str | None, form: dict[str, str]) -> None:
        basic = authorization is not None and authorization[:6].lower() == "basic "
        posted = "client_secret" in form
        if basic and posted:
            raise _OAuthError("invalid_request", "use only one client authentication method")
        if basic:
            assert authorization is not None
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
                raw_id, raw_secret = decoded.split(":", 1)
            except ValueError:
                raise _OAuthError("invalid_client", "malformed basic credentials", 401) from None
            # RFC 6749 2.3.1: credentials are form-urlencoded before being joined.
            client_id, client_secret = unquote(raw_id), unquote(raw_secret)
            if form.get("client_id", client_id) != client_id:
                raise _OAuthError("invalid_request", "client_id does not match credentials")
        elif posted:
            client_id, client_secret = form.get("client_id", ""), form["client_secret"]
        else:
            raise _OAuthError("invalid_client", "client authentication required", 401)
        id_ok = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        if not (id_ok and secret_ok):
            raise _OAuthError("invalid_client", "client authentication failed", 401)

    def _token(self, authorization: str | None, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self.token_requests += 1
        self._authenticate_client(authorization, form)
        if form.get("grant_type") != "authorization_code":
            raise _OAuthError("unsupported_grant_type", "only authorization_code is supported")
        code = form.get("code")
        if not code:
            raise _OAuthError("invalid_request", "code is required")

        with self._lock:
            # Popped before any check so a code is burned even by a failed attempt,
            # the conservative reading of RFC 6749 4.1.2.
            grant = self._state.codes.pop(code, None)
        if grant is None or grant.expires_at < time.monotonic():
            raise _OAuthError("invalid_grant", "code is invalid, expired or already used")
        if grant.client_id != self.client_id:
            raise _OAuthError("invalid_grant", "code was issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise _OAuthError("invalid_grant", "redirect_uri does not match authorization")
        verifier = form.get("code_verifier")
        if grant.code_challenge is not None:
            if not verifier or not hmac.compare_digest(_s256(verifier), grant.code_challenge):
                raise _OAuthError("invalid_grant", "PKCE verification failed")
        elif verifier is not None:
            raise _OAuthError("invalid_grant", "code_verifier sent but no challenge was made")

        access_token = secrets.token_urlsafe(32)
        now = int(time.time())
        with self._lock:
            tamper, self.tamper_next_id_token = self.tamper_next_id_token, False
            wrong_aud, self.wrong_audience_next = self.wrong_audience_next, False
            self._state.access_tokens[access_token] = _AccessGrant(
                identity=grant.identity,
                scope=grant.scope,
                expires_at=time.monotonic() + self.access_token_ttl,
            )

        identity = grant.identity
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": identity.sub,
            "aud": "someone-else" if wrong_aud else self.client_id,
            "exp": now + self.id_token_ttl,
            "iat": now,
            "auth_time": identity.auth_time,
            "at_hash": _b64url(hashlib.sha256(access_token.encode("ascii")).digest()[:16]),
            "email": identity.email,
            "email_verified": True,
            "name": identity.name,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        id_token = self._signer.sign(claims)
        if tamper:
            id_token = _corrupt_signature(id_token)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.access_token_ttl,
            "id_token": id_token,
            "scope": grant.scope,
        }

    def _userinfo(self, authorization: str | None) -> dict[str, Any]:
        if authorization is None or authorization[:7].lower() != "bearer ":
            raise _OAuthError("invalid_token", "bearer token required", 401)
        token = authorization[7:].strip()
        with self._lock:
            grant = self._state.access_tokens.get(token)
        if grant is None or grant.expires_at < time.monotonic():
            raise _OAuthError("invalid_token", "access token is invalid or expired", 401)
        identity = grant.identity
        return {
            "sub": identity.sub,
            "email": identity.email,
            "email_verified": True,
            "name": identity.name,
        }


def _corrupt_signature(token: str) -> str:
    # Flipping bits in the decoded signature, not a base64 character, guarantees the
    # bytes really change (a trailing base64 character can carry only padding bits).
    header, payload, signature = token.split(".")
    raw = bytearray(_b64url_decode(signature))
    raw[len(raw) // 2] ^= 0xFF
    return f"{header}.{payload}.{_b64url(bytes(raw))}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        provider: OidcProvider,
    ) -> None:
        self.provider = provider
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "nefos-test-oidc/1.0"

    def log_message(self, *args: Any) -> None:
        """Silenced: per-request stderr lines drown pytest output."""

    # -- dispatch ----------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        provider = self.server.provider
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        try:
            if path == "/.well-known/openid-configuration" and method == "GET":
                self._send_json(200, provider.discovery_document())
            elif path == "/jwks" and method == "GET":
                self._send_json(200, provider.jwks)
            elif path == "/authorize" and method == "GET":
                self._handle_authorize(provider, _single_valued(parts.query))
            elif path == "/token" and method == "POST":
                body = provider._token(self.headers.get("Authorization"), self._read_form())
                self._send_json(200, body)
            elif path == "/userinfo":
                self._send_json(200, provider._userinfo(self.headers.get("Authorization")))
            elif path in {"/.well-known/openid-configuration", "/jwks", "/authorize", "/token"}:
                self._send_json(405, {"error": "invalid_request", "error_description": method})
            else:
                self._send_json(404, {"error": "not_found"})
        except _OAuthError as err:
            self._send_oauth_error(err)

    def _handle_authorize(self, provider: OidcProvider, params: dict[str, str]) -> None:
        redirect_uri, query = provider._authorize(params)
        parts = urlsplit(redirect_uri)
        merged = f"{parts.query}&{urlencode(query)}" if parts.query else urlencode(query)
        location = urlunsplit((parts.scheme, parts.netloc, parts.path, merged, ""))
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", "0")
        self.end_headers()

    # -- I/O helpers -------------------------------------------------------------

    def _read_form(self) -> dict[str, str]:
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            raise _OAuthError("invalid_request", "body must be application/x-www-form-urlencoded")
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise _OAuthError("invalid_request", "bad Content-Length") from None
        if not 0 <= length <= _MAX_BODY_BYTES:
            raise _OAuthError("invalid_request", "body too large")
        return _single_valued(self.rfile.read(length).decode("utf-8", "replace"))

    def _send_oauth_error(self, err: _OAuthError) -> None:
        headers: dict[str, str] = {}
        if err.error == "invalid_token":
            headers["WWW-Authenticate"] = f'Bearer error="{err.error}"'
        elif err.status == 401:
            # RFC 6749 5.2: a 401 for client auth must advertise the scheme.
            headers["WWW-Authenticate"] = 'Basic realm="nefos-test-oidc"'
        body = {"error": err.error, "error_description": err.description}
        self._send_json(err.status, body, headers)

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        # RFC 6749 5.1: token responses must not be cached; harmless elsewhere.
        self.send_header("Cache-Control", "no-store")
        self.send_header("Pragma", "no-cache")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _single_valued(query: str) -> dict[str, str]:
    """RFC 6749 3.1: repeated parameters are an error, so reject rather than pick one."""
    parsed = parse_qs(query, keep_blank_values=True)
    duplicated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if duplicated:
        raise _OAuthError("invalid_request", f"repeated parameter(s): {', '.join(duplicated)}")
    return {name: values[0] for name, values in parsed.items()}
