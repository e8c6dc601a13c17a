"""The service catalog: every nefos endpoint by OpenStack service type.

Built from configuration (``public_url``, per-type ``endpoints``) so a deployment spread
over several hosts publishes its own URLs. Two shapes:

* v2.0 (Synnefo/kamaki): Synnefo's service names and its Synnefo-style prefixes
  (``/cyclades/compute/v2.0``), which speak the Synnefo dialect (``nefos.core.dialects``);
  the object-store URL stops before the account, because kamaki appends the user's UUID.
* v3 (Keystone): one public endpoint per service, speaking the OpenStack dialect; the
  object-store URL ends with the account (``.../object-store/v1/<uuid>``), as OpenStack
  clients use it as storage URL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson

from nefos.core.config import Settings
from nefos.core.dialects import Endpoint


@dataclass(frozen=True)
class Service:
    name: str  # Synnefo's name, as kamaki looks it up
    type: str  # OpenStack service type, as every client looks it up
    v2_version: str
    v2_path: str  # the Synnefo-dialect endpoint the v2.0 catalog publishes
    routes: str  # the routes it stands for (core.dialects maps one onto the other)
    v3_path: str  # OpenStack dialect; "{account}" is the user's UUID
    v3_only: bool = False


SERVICES: tuple[Service, ...] = (
    Service(
        "astakos_identity", "identity", "v2.0",
        "/astakos/identity/v2.0", "/identity/v2.0", "/identity/v3",
    ),
    Service(
        "astakos_account", "account", "v1.0",
        "/astakos/account/v1.0", "/account/v1.0", "/account/v1.0",
    ),
    Service(
        "cyclades_compute", "compute", "v2.0",
        "/cyclades/compute/v2.0", "/compute/v2.0", "/compute/v2.1",
    ),
    Service(
        "cyclades_network", "network", "v2.0",
        "/cyclades/network/v2.0", "/network/v2.0", "/network",
    ),
    Service("cyclades_plankton", "image", "v1.0", "/cyclades/image/v1.0", "/image/v1", "/image"),
    Service(
        "cyclades_volume", "volume", "v2.0", "/cyclades/volume/v2.0", "/volume/v2", "/volume/v2"
    ),
    Service(
        "cyclades_volumev3", "volumev3", "v3.0", "", "/volume/v3", "/volume/v3", v3_only=True
    ),
    Service(
        "cyclades_block_storage", "block-storage", "v3.0", "", "/volume/v3", "/volume/v3",
        v3_only=True,
    ),
    Service(
        "pithos_object-store", "object-store", "v1",
        "/pithos/object-store/v1", "/object-store/v1", "/object-store/v1/{account}",
    ),
    Service("pithos_public", "public", "v2.0", "/pithos/public", "/public", "/public"),
    Service(
        "astakos_weblogin", "astakos_weblogin", "v1.0", "/ui/weblogin", "/ui/weblogin",
        "/ui/weblogin",
    ),
)  # fmt: skip


def synnefo_endpoints() -> list[Endpoint]:
    """The Synnefo-dialect prefixes of the v2.0 catalog, for :class:`core.dialects.Dialects`."""
    return [
        Endpoint(public=s.v2_path, routes=s.routes)
        for s in SERVICES
        if not s.v3_only and s.v2_path != s.routes
    ]


def _url(settings: Settings, service: Service, path: str) -> str:
    configured = settings.endpoints.get(service.type)
    if configured is None:
        return settings.base_url + path
    # A configured URL replaces the host part; keep our path below it.
    return configured.rstrip("/") + path


def v2_catalog(settings: Settings) -> list[dict[str, object]]:
    ui = settings.base_url + "/ui/"
    catalog = []
    for service in SERVICES:
        if service.v3_only:
            continue
        endpoint: dict[str, object] = {
            "versionId": service.v2_version,
            "publicURL": _url(settings, service, service.v2_path),
            "SNF:uiURL": ui,
            "region": settings.region,
        }
        if service.type == "identity":
            endpoint["SNF:webloginURL"] = settings.base_url + "/ui/weblogin"
        catalog.append(
            {
                "name": service.name,
                "type": service.type,
                "endpoints_links": [],
                "endpoints": [endpoint],
            }
        )
    return catalog


def v3_catalog(settings: Settings, account: uuid.UUID | str) -> list[dict[str, object]]:
    catalog = []
    for service in SERVICES:
        url = _url(settings, service, service.v3_path.format(account=account))
        endpoint_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{service.type}:{service.v3_path}").hex
        catalog.append(
            {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, service.type).hex,
                "name": service.name,
                "type": service.type,
                "endpoints": [
                    {
                        "id": endpoint_id,
                        "interface": "public",
                        "region": settings.region,
                        "region_id": settings.region,
                        "url": url,
                    }
                ],
            }
        )
    return catalog


class Catalog:
    """Both catalogs of one deployment, serialised once: they change only with settings.

    Every token response carries a catalog, so building it per request would cost more
    than validating the token.
    """

    _ACCOUNT = "00000000-0000-0000-0000-00000000acc7"

    def __init__(self, settings: Settings):
        self._v2 = orjson.Fragment(orjson.dumps(v2_catalog(settings)))
        self._v3 = orjson.dumps(v3_catalog(settings, self._ACCOUNT))

    def v2(self) -> orjson.Fragment:
        return self._v2

    def v3(self, account: uuid.UUID) -> orjson.Fragment:
        return orjson.Fragment(self._v3.replace(self._ACCOUNT.encode(), str(account).encode()))
