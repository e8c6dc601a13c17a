"""The one ASGI app: every API router under its prefix, and the middleware.

Order of middleware (outermost first) is fixed here and nowhere else:
security headers → request id and last-resort 500 → dialect (a Synnefo-style prefix routed
as the path it stands for) → request limits → authentication →
routes, whose domain errors become each API's fault body through the :class:`FaultRouter`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from nefos.compute import api as compute_api
from nefos.compute import api_keypairs, api_vmapi
from nefos.core import errors, versions
from nefos.core.body import describe_validation
from nefos.core.config import Settings, ensure_data_dir
from nefos.core.dialects import Dialects
from nefos.core.faults import ERROR_FOR_STATUS, FaultRouter, keystone_fault, swift_fault
from nefos.core.middleware import Authentication, RequestId, RequestLimits, SecurityHeaders
from nefos.identity import api as identity_api
from nefos.identity.catalog import synnefo_endpoints
from nefos.identity.web import ROOT as UI_ROOT
from nefos.identity.web import WebLogin
from nefos.images import api_metadefs as images_metadefs
from nefos.images import api_v1 as images_v1
from nefos.images import api_v2 as images_v2
from nefos.images import api_v2_actions as images_v2_actions
from nefos.network import api as network_api
from nefos.quotas import api as quotas_api
from nefos.quotas import projects_api
from nefos.server.engines import Engines
from nefos.storage import api as storage_api
from nefos.ui import ASSETS as UI_ASSETS
from nefos.ui import STATIC as UI_STATIC
from nefos.volume import api as volume_api
from nefos.volume import api_snapshots as volume_snapshots
from nefos.volume import api_transfers as volume_transfers

# Prefixes whose request bodies are data streams, exempt from the JSON body limit.
STREAMING_PREFIXES = ("/object-store/", "/image/v2/images/", "/image/v1/images")
# Prefixes whose routes decode the raw path and query themselves (the object store's names).
RAW_PATH_PREFIXES = (storage_api.PREFIX, storage_api.PUBLIC_PREFIX + "/")
# Swift's clients read a Swift transaction id on these answers (X-Trans-Id).
SWIFT_PREFIXES = (*RAW_PATH_PREFIXES, "/info", "/object-store/info")


def create_app(settings: Settings, engines: Engines | None = None) -> FastAPI:
    ensure_data_dir(settings)
    engines = engines or Engines(settings)
    faults = FaultRouter()
    faults.register("/identity/v3", keystone_fault)
    faults.register(storage_api.PREFIX, swift_fault)
    faults.register(storage_api.PUBLIC_PREFIX + "/", swift_fault)
    faults.register(images_v2.PREFIX, images_v2.glance_fault)
    faults.register(network_api.PREFIX + "/", network_api.neutron_fault)
    endpoints = synnefo_endpoints()
    for endpoint in endpoints:  # a last-resort 500 is seen before the dialect's mapping
        faults.register(endpoint.public, faults.style_for(endpoint.routes + "/"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engines.start()
        await engines.compute.seal_backend_passwords()  # those an older nefos stored plain
        await engines.start_expirer()
        await engines.start_collector()
        await engines.start_pruner()
        if settings.compute.dispatcher:
            await engines.start_dispatcher()
            await engines.start_reconciler()
        try:
            yield
        finally:
            await engines.close()

    app = FastAPI(
        title="nefos",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        middleware=[
            Middleware(SecurityHeaders, pages=UI_ROOT),
            Middleware(
                RequestId,
                faults=faults,
                # RequestId sees the path as the client wrote it, before the dialect's mapping.
                trans_id_prefixes=SWIFT_PREFIXES
                + tuple(e.public for e in endpoints if (e.routes + "/").startswith(SWIFT_PREFIXES)),
            ),
            Middleware(Dialects, endpoints=endpoints),
            Middleware(
                RequestLimits,
                faults=faults,
                limits=settings.limits,
                streaming_prefixes=STREAMING_PREFIXES,
                raw_path_prefixes=RAW_PATH_PREFIXES,
            ),
            Middleware(Authentication, authenticate=engines.identity.authenticate),
        ],
    )
    app.state.settings = settings
    app.state.engines = engines
    app.state.identity = engines.identity
    app.state.accounts = engines.accounts
    app.state.faults = faults

    @app.exception_handler(errors.NefosError)
    async def domain_error(request: Request, exc: errors.NefosError) -> Response:
        return faults.response(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return faults.response(
            request.url.path, errors.InvalidInput(describe_validation(exc.errors()))
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        kind = ERROR_FOR_STATUS.get(exc.status_code, errors.NefosError)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        response = faults.response(request.url.path, kind(message), exc.status_code)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    # Routes are matched in order: the busiest first, the version documents last.
    app.include_router(storage_api.router)
    app.include_router(compute_api.router)
    app.include_router(images_v2.router)
    app.include_router(images_v2_actions.router)
    app.include_router(images_metadefs.router)
    app.include_router(images_v1.router)
    app.include_router(api_keypairs.router)
    app.include_router(api_vmapi.router)
    app.include_router(identity_api.v3)
    app.include_router(identity_api.v2)
    app.include_router(identity_api.account)
    app.include_router(projects_api.router)
    app.include_router(quotas_api.router)
    app.include_router(network_api.router)
    app.include_router(volume_api.router)
    app.include_router(volume_snapshots.router)
    app.include_router(volume_transfers.router)
    app.include_router(versions.router())

    @app.get("/", include_in_schema=False)
    async def home() -> Response:
        """People who type the host name land in the web UI."""
        return RedirectResponse(f"{UI_ROOT}/", status_code=302)

    # The UI's scripts and stylesheet compress to about a quarter (bench/RESULTS.md, UI);
    # only they: object downloads stay byte-for-byte what was stored.
    assets = GZipMiddleware(StaticFiles(directory=UI_STATIC), minimum_size=1024)
    app.mount(UI_ASSETS, assets, name="ui-assets")  # before /ui
    app.mount(UI_ROOT, WebLogin(engines.identity, settings).app())
    return app


def app_factory() -> Any:
    """For ``uvicorn --factory`` workers: settings from ``NEFOS_CONFIG``/``NEFOS_DATA_DIR``."""
    from nefos.core.config import load_settings
    from nefos.core.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
