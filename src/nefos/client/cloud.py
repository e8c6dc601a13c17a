"""A cloud session: one token, one connection pool, the catalog that says where each
service lives.

Authentication is Keystone v2.0 as Synnefo's Astakos and kamaki speak it: ``POST
<identity>/tokens`` with ``{"auth": {"token": {"id": TOKEN}}}`` answers the user's UUID
and the service catalog. Services are found by their OpenStack ``type``, never by a URL
pattern, so a deployment that spreads services over hosts works unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from nefos.client.config import identity_url
from nefos.client.errors import ClientError, response_message
from nefos.client.files import Files

TIMEOUT = httpx.Timeout(120.0, connect=10.0)
# Parallel block transfers share this pool; keep it above any worker count we use.
LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=32)
USER_AGENT = "nf (nefos client)"


@dataclass(frozen=True)
class Access:
    """What the identity service told us about our token."""

    token: str
    user_uuid: str
    user_name: str
    catalog: list[dict[str, Any]] = field(repr=False)

    def endpoint(self, service_type: str) -> str:
        return endpoint_url(self.catalog, service_type)


def endpoint_url(catalog: Sequence[dict[str, Any]], service_type: str) -> str:
    """The public URL of the first endpoint of ``service_type`` in a v2.0 catalog."""
    for service in catalog:
        if service.get("type") != service_type:
            continue
        for endpoint in service.get("endpoints") or ():
            url = endpoint.get("publicURL")
            if isinstance(url, str) and url:
                return url.rstrip("/")
    raise ClientError(0, f"the cloud's catalog has no {service_type!r} service")


def object_store_url(catalog: Sequence[dict[str, Any]], account: str) -> str:
    """The storage URL of ``account``: the v2.0 catalog stops before the account, and
    the client appends it (kamaki's rule), so one catalog serves every user."""
    return f"{endpoint_url(catalog, 'object-store')}/{account}"


class Cloud:
    """A user's session with one nefos (or Synnefo) cloud.

    ``url`` is the cloud's base URL or its ``/identity/v2.0`` endpoint. Nothing is sent
    until the first call that needs the catalog. ``transport`` is httpx's I/O seam.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout = TIMEOUT,
    ):
        self.url = url
        self.identity_url = identity_url(url)
        self.token = token
        self.http = httpx.Client(
            transport=transport,
            timeout=timeout,
            limits=LIMITS,
            headers={"User-Agent": USER_AGENT},
        )
        self._access: Access | None = None

    def __enter__(self) -> Cloud:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def authenticate(self) -> Access:
        """Who the token belongs to and the catalog; asked once per session."""
        if self._access is not None:
            return self._access
        url = f"{self.identity_url}/tokens"
        try:
            response = self.http.post(url, json={"auth": {"token": {"id": self.token}}})
        except httpx.TransportError as exc:
            raise ClientError(0, f"cannot reach {url}: {exc}") from None
        if response.status_code == 401:
            raise ClientError(401, "the token was refused; `nf config set token` sets a new one")
        if response.status_code != 200:
            raise ClientError(response.status_code, response_message(response), url)
        try:
            access = response.json()["access"]
            self._access = Access(
                token=access["token"]["id"],
                user_uuid=access["user"]["id"],
                user_name=access["user"].get("name", ""),
                catalog=access["serviceCatalog"],
            )
        except (ValueError, KeyError, TypeError):
            raise ClientError(0, f"{url} did not answer a Keystone v2.0 token") from None
        return self._access

    @property
    def user_uuid(self) -> str:
        return self.authenticate().user_uuid

    def files(self, account: str | None = None) -> Files:
        """The object store of ``account`` (default: our own), as the catalog places it."""
        access = self.authenticate()
        return Files(
            self.http, object_store_url(access.catalog, account or access.user_uuid), self.token
        )
