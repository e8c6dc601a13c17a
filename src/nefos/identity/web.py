"""Web login (plain server-rendered pages, mounted at ``/ui``): the way people get a token.

Local passwords, any configured OpenID Connect provider, and a Shibboleth SAML front end
all end in the same session, whose account page shows the user's API token and renews
it. The session also opens the web UI (``/ui/``, ``nefos.ui``): its shell page asks
``/ui/session/token`` for a token of its own, which it holds in memory only. A login
while already logged in links the new identity to the same user, so one person may use
several login methods. ``/ui/weblogin?next=URL`` is Synnefo's hand-off
of the token to a desktop client.

What a browser could be tricked into, and what stops it:

* The session is a record on the server (``Identity.start_web_session``); the signed
  cookie only names it, so logging out ends it and a copy of the old cookie opens
  nothing.
* Every form that changes something (log in, log out, renew the token) carries the
  session's CSRF token, and a POST whose ``Origin`` is another site is refused (403).
* The UI's token comes only from a POST that carries the CSRF token in a header (which
  another site cannot set without a CORS preflight, and nefos answers none) and the
  session's cookie (``SameSite=Lax``, path ``/ui``). It is a session token of its own,
  not the API token, and logging out revokes it.
* ``weblogin`` hands the token only to this deployment's own URLs and the configured
  ``weblogin_clients``; a login's ``next`` is only a path on this site.
* The pages are sent with a strict Content-Security-Policy, ``frame-ancestors 'none'``
  and no caching (``nefos.core.middleware.SecurityHeaders``); the UI's shell adds scripts
  and API calls from this origin only, and WebSockets to the console proxy
  (:func:`app_policy`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import secrets
import warnings
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from nefos.core import errors
from nefos.core.config import Settings
from nefos.core.db import utcnow
from nefos.core.faults import status_of
from nefos.identity import client_config, webtexts
from nefos.identity.delegation import ApplicationCredentials
from nefos.identity.models import User
from nefos.identity.service import Identity

with warnings.catch_warnings():
    # authlib 1.9.9 warns about its own httpx integration, which its Starlette client uses;
    # its deprecate module installs an "always" filter on import, so import it first.
    import authlib.deprecate  # noqa: F401

    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.starlette_client import OAuth, OAuthError

log = logging.getLogger("nefos.identity.web")

ROOT = "/ui"
templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


STYLESHEET = Path(__file__).with_name("templates").joinpath("nefos.css").read_text()

# The UI's shell: the pages' policy (nefos.core.middleware.PAGE_POLICY) plus module
# scripts and API calls from this origin. Still no inline code and no other site.
APP_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def app_policy(console_host: str) -> str:
    """:data:`APP_POLICY` plus WebSockets to the console proxy's host, any port (each
    console ticket opens a port of its own): the only other place the page connects to,
    for noVNC. An IPv6 address goes in brackets, as in a URL."""
    host = f"[{console_host}]" if ":" in console_host else console_host
    return APP_POLICY.replace("connect-src 'self'", f"connect-src 'self' ws://{host}:*")


# A UI token handed out again must still have this long to live; else a new one is made.
UI_TOKEN_MARGIN = dt.timedelta(minutes=10)

# Browsers drop tabs and newlines from URLs and read a backslash as a slash, so
# "/<tab>/evil.example" or "/\\evil.example" would lead to another host: refuse them all.
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


def local_path(target: str | None) -> str | None:
    """``target`` if it is a path on this site (``/...``, never ``//host``), else None."""
    if not target or _UNSAFE.search(target) or not target.startswith("/"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return None
    return target


def _safe_next(target: str | None, default: str = f"{ROOT}/") -> str:
    """Where a login goes on: a path on this site, or the UI's dashboard."""
    return local_path(target) or default


def _site(parts: SplitResult) -> tuple[str, str, int] | None:
    """Scheme, host and port of an absolute http(s) URL without user info, else None."""
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _under(path: str, prefix: str) -> bool:
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or path.startswith(prefix + "/")


def url_allowed(target: str, allowed: list[str]) -> bool:
    """Whether ``target`` is a path on this site or lies under one of ``allowed``
    (absolute URL prefixes): same scheme, host and port, path under the prefix's."""
    if local_path(target) is not None:
        return True
    if _UNSAFE.search(target):
        return False
    parts = urlsplit(target)
    site = _site(parts)
    if site is None:
        return False
    for prefix in allowed:
        wanted = urlsplit(prefix)
        if _site(wanted) == site and _under(parts.path or "/", wanted.path or "/"):
            return True
    return False


def _token_json(token: str | None, record: Any) -> dict[str, Any] | None:
    """The API token as the UI's account page shows it; ``token`` is None when this
    deployment's key cannot unseal it (renewing makes one it can)."""
    if record is None:
        return None
    expires = record.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ") if record.expires_at else None
    return {"token": token, "expires": expires}


class WebLogin:
    def __init__(self, identity: Identity, settings: Settings):
        self.identity = identity
        self.settings = settings
        self.oauth = OAuth()
        self.oidc = {provider.name: provider for provider in settings.oidc}
        for provider in settings.oidc:
            self.oauth.register(
                name=provider.name,
                client_id=provider.client_id,
                client_secret=provider.client_secret,
                server_metadata_url=provider.issuer.rstrip("/")
                + "/.well-known/openid-configuration",
                client_kwargs={"scope": provider.scope},
            )
        self.trusted = [ip_network(n, strict=False) for n in settings.shibboleth.trusted_proxies]
        # Where weblogin may send a token: this deployment, and its desktop clients.
        self.handoff = [f"{settings.base_url}/", *settings.weblogin_clients]
        self.origin = _site(urlsplit(settings.base_url))

    def app(self) -> Starlette:
        routes = [
            Route("/", self.shell, methods=["GET"]),
            Route("/welcome", self.welcome, methods=["GET"]),
            Route("/signup", self.signup, methods=["GET"]),
            Route("/session/token", self.session_token, methods=["POST"]),
            Route("/session/account", self.session_account, methods=["GET"]),
            Route("/session/api-token", self.session_renew_token, methods=["POST"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login_password, methods=["POST"]),
            Route("/login/oidc/{name}", self.login_oidc, methods=["GET"]),
            Route("/login/oidc/{name}/callback", self.oidc_callback, methods=["GET"]),
            Route("/login/shibboleth", self.login_shibboleth, methods=["GET"]),
            Route("/account", self.account, methods=["GET"]),
            Route("/account/renew-token", self.renew_token, methods=["POST"]),
            Route("/account/config/{fmt}", self.client_config, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/weblogin", self.weblogin, methods=["GET"]),
            Route("/static/nefos.css", self.stylesheet, methods=["GET"]),
        ]
        middleware = [
            Middleware(
                SessionMiddleware,
                secret_key=self.settings.secret_key,
                session_cookie="nefos_session",
                path=ROOT,
                same_site="lax",
                https_only=self.settings.base_url.startswith("https://"),
                max_age=int(self.settings.session_token_hours * 3600),
            )
        ]
        return Starlette(routes=routes, middleware=middleware)

    # -- pages ------------------------------------------------------------------------

    def _page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        lang = self._language(request)
        context.setdefault("error", None)
        context["root"] = ROOT
        context["csrf"] = self._csrf(request)
        context["lang"] = lang
        context["tx"] = webtexts.translator(lang)
        context["code"] = webtexts.code
        context["link"] = webtexts.link
        context["languages"] = {}  # this page in each language, its other parameters kept
        for code in webtexts.LANGUAGES:
            url = request.url.include_query_params(lang=code)
            context["languages"][code] = f"{url.path}?{url.query}"
        context["language_names"] = webtexts.LANGUAGES
        if isinstance(context.get("title"), tuple):  # a key of webtexts' table
            context["title"] = context["tx"](context["title"][0])
        page = templates.TemplateResponse(request, name, context, status_code=status)
        if request.query_params.get("lang") in webtexts.LANGUAGES:
            # asked for by the page's own links: remembered, as the UI's selector does
            page.set_cookie(webtexts.COOKIE, lang, max_age=365 * 86400, path="/", samesite="lax")
        return page

    def _language(self, request: Request) -> str:
        return webtexts.language(
            request.query_params.get("lang"),
            request.cookies.get(webtexts.COOKIE),
            request.headers.get("accept-language"),
        )

    async def stylesheet(self, request: Request) -> Response:
        # A file of our own, not an inline <style>: the pages' policy allows no inline code.
        return Response(STYLESHEET, media_type="text/css")

    # -- forgery ----------------------------------------------------------------------

    def _csrf(self, request: Request) -> str:
        """The session's CSRF token, made on first use (a login form needs one before
        anyone has logged in: else a site could log a browser in as the attacker)."""
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(24)
        return str(token)

    def _forged(self, request: Request, form: FormData) -> bool:
        return self._forged_with(request, form.get("csrf"))

    def _forged_with(self, request: Request, given: object) -> bool:
        """A POST that another site made the browser send: its ``Origin`` names another
        site, its ``Sec-Fetch-Site`` says it came from another origin, or ``given`` is
        not this session's CSRF token. The origin may be the deployment's ``public_url``
        or the one the request was sent to (a deployment reached by a name it was not
        told); a browser never sends another site's as either. Our pages set their
        referrer policy to ``same-origin`` (``base.html``): under the responses'
        ``no-referrer`` a browser would send ``Origin: null`` from our own forms."""
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site != "same-origin":
            return True
        origin = request.headers.get("origin")
        if origin is not None:
            site = _site(urlsplit(origin))
            own = _site(urlsplit(str(request.base_url)))
            if site is None or site not in (self.origin, own):
                return True
        expected = request.session.get("csrf")
        return not (
            expected
            and isinstance(given, str)
            and secrets.compare_digest(given.encode(), str(expected).encode())
        )

    def _login_page(
        self, request: Request, error: str | None = None, status: int = 200, email: str = ""
    ) -> Response:
        return self._page(
            request,
            "login.html",
            status,
            title=("loginTitle",),
            error=error,
            email=email,
            next=_safe_next(request.query_params.get("next")),
            providers=self.settings.auth_providers,
            oidc=list(self.oidc.values()),
            shibboleth=self.settings.shibboleth.enabled,
            signup=self.settings.signup.enabled,
        )

    async def login_form(self, request: Request) -> Response:
        return self._login_page(request)

    async def login_password(self, request: Request) -> Response:
        form = await request.form()
        email = str(form.get("email", ""))
        password = str(form.get("password", ""))
        if "local" not in self.settings.auth_providers:
            return self._login_page(request, "Local accounts are disabled here", 403)
        if self._forged(request, form):
            # Also what a form left open past its session's end gets: a fresh one.
            return self._login_page(request, "This form has expired; please log in again", 403)
        client = request.client.host if request.client else ""
        try:
            user = await self.identity.password_login(email, password, client)
        except errors.NefosError as exc:
            page = self._login_page(request, exc.message, status_of(exc), email=email)
            page.headers.update(exc.headers or {})  # a throttled login's Retry-After
            return page
        return await self._start_session(request, user, str(form.get("next", "")))

    async def login_oidc(self, request: Request) -> Response:
        name = request.path_params["name"]
        client = self.oauth.create_client(name) if name in self.oidc else None
        if client is None:
            return self._login_page(request, f"No login provider {name}", 404)
        request.session["next"] = _safe_next(request.query_params.get("next"))
        base = self.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
        callback = f"{base}{ROOT}/login/oidc/{name}/callback"
        try:
            return await client.authorize_redirect(request, callback)
        except Exception as exc:  # the provider is unreachable or its metadata broken
            log.warning("OIDC provider %s unavailable: %s", name, exc)
            return self._login_page(request, f"The login provider {name} is unavailable", 503)

    async def oidc_callback(self, request: Request) -> Response:
        name = request.path_params["name"]
        client = self.oauth.create_client(name) if name in self.oidc else None
        if client is None:
            return self._login_page(request, f"No login provider {name}", 404)
        try:
            token = await client.authorize_access_token(request)
        except OAuthError as exc:
            return self._login_page(request, f"Login with {name} failed: {exc.error}", 401)
        except Exception as exc:  # a bad signature, audience or nonce in the ID token
            log.warning("OIDC login with %s refused: %r", name, exc)
            return self._login_page(request, f"Login with {name} failed: invalid ID token", 401)
        claims = token.get("userinfo") or {}
        subject = claims.get("sub")
        if not subject:
            return self._login_page(request, f"{name} did not say who you are", 401)
        return await self._external(
            request,
            name,
            str(subject),
            str(claims.get("email", "")),
            str(claims.get("name", "")),
            request.session.pop("next", None),
        )

    async def login_shibboleth(self, request: Request) -> Response:
        conf = self.settings.shibboleth
        if not conf.enabled:
            return self._login_page(request, "Shibboleth login is disabled here", 404)
        client = request.client.host if request.client else ""
        try:
            trusted = any(ip_address(client) in net for net in self.trusted)
        except ValueError:
            trusted = False
        if not trusted:
            log.warning("Shibboleth headers from untrusted address %s refused", client)
            return self._login_page(
                request, "Shibboleth login must pass through the SAML front end", 403
            )
        identifier = request.headers.get(conf.id_header, "").strip()
        if not identifier:
            return self._login_page(request, "The SAML front end passed no identity", 401)
        return await self._external(
            request,
            "shibboleth",
            identifier,
            request.headers.get(conf.email_header, "").split(";")[0].strip(),
            request.headers.get(conf.name_header, "").strip(),
            request.query_params.get("next"),
        )

    async def _external(
        self,
        request: Request,
        provider: str,
        identifier: str,
        email: str,
        name: str,
        next_url: str | None,
    ) -> Response:
        current = await self._session_user(request)
        try:
            if current is not None:
                await self.identity.link(current.id, provider, identifier, {"email": email})
                user = current
            else:
                user = await self.identity.external_login(provider, identifier, email, name)
        except errors.NefosError as exc:
            return self._login_page(request, exc.message, status_of(exc))
        return await self._start_session(request, user, next_url or "")

    async def _start_session(self, request: Request, user: User, next_url: str) -> Response:
        """A new session (never the one the browser came with, which someone else may
        have planted), with a new CSRF token."""
        previous = request.session.get("sid")
        if previous:
            await self.identity.end_web_session(str(previous))
        request.session.clear()
        request.session["sid"] = await self.identity.start_web_session(user)
        request.session["csrf"] = secrets.token_urlsafe(24)
        return RedirectResponse(_safe_next(next_url), status_code=303)

    async def _session_user(self, request: Request) -> User | None:
        session = request.session.get("sid")
        if not session:
            return None
        user = await self.identity.web_session_user(str(session))
        if user is None:  # ended, expired, or its user deactivated
            request.session.clear()
        return user

    def _to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{ROOT}/login?{urlencode({'next': target})}", status_code=303)

    async def account(self, request: Request) -> Response:
        user = await self._session_user(request)
        if user is None:
            return self._to_login(request)
        token, record = await self.identity.api_token(user.id)
        return self._page(
            request,
            "account.html",
            title=("accountTitle",),
            user=user,
            logins=await self.identity.identities(user.id),
            token=token,
            expires=record.expires_at.strftime("%Y-%m-%d %H:%M") if record else "",
        )

    async def renew_token(self, request: Request) -> Response:
        if self._forged(request, await request.form()):
            return Response("Bad or missing CSRF token", status_code=403)
        user = await self._session_user(request)
        if user is None:
            return self._to_login(request)
        await self.identity.renew_api_token(user.id)
        return RedirectResponse(f"{ROOT}/account", status_code=303)

    async def client_config(self, request: Request) -> Response:
        """A client configuration to download: GET for the API token, POST (with a
        ``name``) for a new application credential of that name, whose secret is in
        this file only."""
        fmt = request.path_params["fmt"]
        if fmt not in client_config.FORMATS:
            return Response(f"No such format: {fmt}", status_code=404)
        form = await request.form() if request.method == "POST" else None
        if form is not None and self._forged(request, form):
            return Response("Bad or missing CSRF token", status_code=403)
        user = await self._session_user(request)
        if user is None:
            return self._to_login(request)
        token, _ = await self.identity.api_token(user.id)
        if token is None:
            return Response("Your token cannot be shown; renew it first.", status_code=409)
        caller = await self.identity.authenticate(token)
        try:
            auth: client_config.Auth = client_config.TokenAuth(token, caller.project_id)
            if form is not None:
                name = form.get("name")
                shown, secret = await ApplicationCredentials(self.identity).create(
                    caller, str(user.id), name if isinstance(name, str) else ""
                )
                auth = client_config.ApplicationCredentialAuth(shown.credential.id, secret)
            text = client_config.render(fmt, self.settings, auth)
        except errors.NefosError as exc:
            return Response(exc.message, status_code=status_of(exc), media_type="text/plain")
        filename = client_config.FILE_NAMES[fmt]
        return Response(
            text,
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    async def shell(self, request: Request) -> Response:
        """The UI's one page: it loads the app, which draws every view in the browser."""
        user = await self._session_user(request)
        if user is None:
            return self._to_login(request)
        page = self._page(request, "app.html", title="nefos", user=user)
        policy = app_policy(self.settings.compute.console_host)
        page.headers["content-security-policy"] = policy
        return page

    async def welcome(self, request: Request) -> Response:
        """The UI's pages for people who are not logged in (sign up, verify, forgotten
        password): the same app, with no session, calling the account API without a
        token. Links in mail carry their token after ``#``, which no browser sends to a
        server or in a Referer."""
        page = self._page(
            request,
            "welcome.html",
            title=("welcome",),
            account=urlsplit(self.settings.endpoint("account", "/account/v1.0")).path,
        )
        page.headers["content-security-policy"] = APP_POLICY
        return page

    async def signup(self, request: Request) -> Response:
        return RedirectResponse(f"{ROOT}/welcome#/signup", status_code=303)

    async def session_token(self, request: Request) -> Response:
        """A token for the UI's API calls, to the page of this session only (module
        docstring). One per session, kept in it: a reload gets the same one back, until
        it nears its end."""
        if self._forged_with(request, request.headers.get("x-csrf-token")):
            return JSONResponse({"error": "Bad or missing CSRF token"}, status_code=403)
        user = await self._session_user(request)
        if user is None:
            return JSONResponse({"error": "Not logged in"}, status_code=401)
        token = str(request.session.get("ui_token") or "")
        expires: dt.datetime | None = None
        if token:
            try:
                held = await self.identity.authenticate(token)
            except errors.NefosError:
                held = None
            if held is not None and held.user_id == user.id:
                expires = held.expires_at
        if expires is None or expires - utcnow() < UI_TOKEN_MARGIN:
            lifetime = dt.timedelta(hours=self.settings.session_token_hours)
            issued = await self.identity.issue_token(user, lifetime=lifetime)
            token, expires = issued.token, issued.record.expires_at
            request.session["ui_token"] = token
        return JSONResponse(
            {
                "token": token,
                "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "user": {
                    "id": str(user.id),
                    "email": user.email,
                    "name": user.display_name,
                    "admin": user.is_admin,
                },
                "project": str(user.system_project_id),
            }
        )

    async def session_account(self, request: Request) -> Response:
        """The UI's account page: the user, their logins and their API token (which
        only the person logged in may read: never an API call's, since an application
        credential's token could then read the token it stands in for). As
        ``session/token``: the CSRF header, and this site's page only."""
        if self._forged_with(request, request.headers.get("x-csrf-token")):
            return JSONResponse({"error": "Bad or missing CSRF token"}, status_code=403)
        user = await self._session_user(request)
        if user is None:
            return JSONResponse({"error": "Not logged in"}, status_code=401)
        token, record = await self.identity.api_token(user.id)
        logins = await self.identity.identities(user.id)
        return JSONResponse(
            {
                "user": {
                    "id": str(user.id),
                    "email": user.email,
                    "name": user.display_name,
                    "admin": user.is_admin,
                },
                "logins": [{"provider": i.provider, "identifier": i.identifier} for i in logins],
                "api_token": _token_json(token, record),
            }
        )

    async def session_renew_token(self, request: Request) -> Response:
        """A new API token for the user, answered to the UI's page; the old one stops
        working at once (the page's own session token is another, and goes on)."""
        if self._forged_with(request, request.headers.get("x-csrf-token")):
            return JSONResponse({"error": "Bad or missing CSRF token"}, status_code=403)
        user = await self._session_user(request)
        if user is None:
            return JSONResponse({"error": "Not logged in"}, status_code=401)
        await self.identity.renew_api_token(user.id)
        token, record = await self.identity.api_token(user.id)
        return JSONResponse({"api_token": _token_json(token, record)})

    async def logout(self, request: Request) -> Response:
        session = request.session.get("sid")
        if session:
            if self._forged(request, await request.form()):
                return Response("Bad or missing CSRF token", status_code=403)
            await self.identity.end_web_session(str(session))
            ui_token = request.session.get("ui_token")
            if ui_token:
                with contextlib.suppress(errors.NotFound):  # expired and swept already
                    await self.identity.revoke(str(ui_token))
        request.session.clear()
        return RedirectResponse(f"{ROOT}/login", status_code=303)

    async def weblogin(self, request: Request) -> Response:
        """Hand the API token to ``next``, as Synnefo's weblogin: only to this
        deployment's own URLs or a configured client's (``weblogin_clients``), before
        anything else is looked at."""
        target = request.query_params.get("next", "")
        if not url_allowed(target, self.handoff):
            return Response(
                "next must be a URL of this deployment or of a client listed in weblogin_clients",
                status_code=400,
            )
        user = await self._session_user(request)
        if user is None:
            return self._to_login(request)
        token, _ = await self.identity.api_token(user.id)
        if token is None:
            token = await self.identity.renew_api_token(user.id)
        joiner = "&" if urlsplit(target).query else "?"
        return RedirectResponse(
            f"{target}{joiner}{urlencode({'uuid': str(user.id), 'token': token})}",
            status_code=302,
        )
