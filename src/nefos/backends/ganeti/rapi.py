"""An asynchronous client of Ganeti's remote API (RAPI, version 2), on httpx.

Only what nefos asks of a cluster: its info, nodes and instances, the instance jobs, and
job status. Every call that changes something answers a job id at once; the outcome is
the job's, read with :meth:`RapiClient.job` or :meth:`RapiClient.wait_for_job`, or seen
by ``nefos ganeti eventd`` in the job queue.

Failures come out as nefos error kinds carrying Ganeti's own explanation, so callers
never see HTTP::

    400                    InvalidInput   (Ganeti refused the parameters)
    404                    NotFound       (no such instance, node or job)
    409                    Conflict
    401, 403               Unavailable    (the cluster refuses nefos's credentials: an
                                           operator's problem, not the caller's)
    other, 5xx, network,   Unavailable    (queue full, daemon down, unreachable, a
    timeout, TLS                           certificate that does not match)

The cluster's certificate is usually self-signed for a name that is not the address
nefos dials (Ganeti's default is ``ganeti.example.com``), so a given certificate is
trusted exactly, as the only authority, without checking the host name: possession of
the cluster's key is what is verified. Without one, the system's authorities and the
host name are checked, which suits a RAPI certificate from a real CA.
"""

from __future__ import annotations

import re
import ssl
import time
from pathlib import Path
from typing import Any

import httpx

from nefos.core import errors

FINAL_JOB_STATUSES = ("success", "error", "canceled")
_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def pem_certificates(certificate: str) -> str:
    """The certificate blocks of ``certificate`` (PEM text, or the path of a PEM file).

    Ganeti's ``rapi.pem`` holds the private key next to the certificate; what nefos keeps
    (the Backend row) and trusts is this, so the key goes no further."""
    try:
        text = certificate if "-----BEGIN" in certificate else Path(certificate).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.InvalidInput(f"Cannot read the cluster certificate: {exc}") from exc
    blocks = _PEM_CERTIFICATE.findall(text)
    if not blocks:
        raise errors.InvalidInput("The cluster certificate has no PEM CERTIFICATE block")
    return "\n".join(blocks) + "\n"


def ssl_context(certificate: str) -> ssl.SSLContext:
    """Trust exactly ``certificate`` (as :func:`pem_certificates` takes it), whatever
    host name it was made for."""
    try:
        context = ssl.create_default_context(cadata=pem_certificates(certificate))
    except ssl.SSLError as exc:
        raise errors.InvalidInput(f"The cluster certificate is not valid PEM: {exc}") from exc
    context.check_hostname = False
    return context


def _explain(response: httpx.Response) -> str:
    """Ganeti's error body is ``{"code", "message", "explain"}``; the explanation is the
    useful part (e.g. "Instance 'snf-7' not known")."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        explain = body.get("explain") or body.get("message")
        if explain:
            return str(explain)
    return str(body)[:500]


class RapiClient:
    """One cluster's RAPI, over one connection pool; :meth:`close` when done."""

    def __init__(
        self,
        url: str,
        username: str = "",
        password: str = "",
        certificate: str = "",
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        verify: ssl.SSLContext | bool = ssl_context(certificate) if certificate else True
        self._http = httpx.AsyncClient(
            base_url=self.url,
            auth=(username, password) if username else None,
            verify=verify,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, Any] | None = None,
        read_seconds: float | None = None,
    ) -> Any:
        extra: dict[str, Any] = {} if read_seconds is None else {"timeout": read_seconds}
        try:
            response = await self._http.request(method, path, json=body, params=params, **extra)
        except httpx.TimeoutException as exc:
            raise errors.Unavailable(f"Ganeti at {self.url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            if "CERTIFICATE_VERIFY_FAILED" in reason:
                reason += " (give nefos the cluster's certificate, /var/lib/ganeti/rapi.pem)"
            raise errors.Unavailable(f"Ganeti at {self.url} unreachable: {reason}") from exc
        if response.status_code >= 400:
            message = f"Ganeti: {_explain(response)}"
            kind = {
                400: errors.InvalidInput,
                404: errors.NotFound,
                409: errors.Conflict,
            }.get(response.status_code, errors.Unavailable)
            if response.status_code in (401, 403):
                message = f"Ganeti at {self.url} refuses nefos's RAPI credentials: {message}"
            raise kind(message, details=f"RAPI {method} {path}: {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise errors.Unavailable(f"Ganeti answered {method} {path} with no JSON") from exc

    async def _job(self, method: str, path: str, body: Any = None, **params: Any) -> int:
        return int(await self._call(method, path, body, params or None))

    # -- reading --------------------------------------------------------------------------

    async def info(self) -> dict[str, Any]:
        return await self._call("GET", "/2/info")

    async def features(self) -> list[str]:
        return await self._call("GET", "/2/features")

    async def operating_systems(self) -> list[str]:
        """The OS definitions every node has, as ``name+variant`` (``gnt-os list``)."""
        return await self._call("GET", "/2/os")

    async def nodes(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/2/nodes", params={"bulk": 1})

    async def instances(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/2/instances", params={"bulk": 1})

    async def instance(self, name: str) -> dict[str, Any]:
        return await self._call("GET", f"/2/instances/{name}")

    async def node(self, name: str) -> dict[str, Any]:
        return await self._call("GET", f"/2/nodes/{name}")

    async def job(self, job_id: int) -> dict[str, Any]:
        return await self._call("GET", f"/2/jobs/{job_id}")

    async def wait_for_job(self, job_id: int, within: float = 300.0) -> dict[str, Any]:
        """The job once it has finished, following it by long polls (each returns as soon
        as the job changes, or empty after Ganeti's own wait of about 10 s)."""
        deadline = time.monotonic() + within
        info: list[Any] | None = None
        serial: int | None = None
        while (remaining := deadline - time.monotonic()) > 0:
            change = await self._call(
                "GET",
                f"/2/jobs/{job_id}/wait",
                {"fields": ["status"], "previous_job_info": info, "previous_log_serial": serial},
                read_seconds=max(remaining, 1.0) + 15.0,
            )
            if not change:
                continue
            info = change["job_info"]
            for entry in change.get("log_entries") or []:
                serial = max(serial or 0, int(entry[0]))
            if info and info[0] in FINAL_JOB_STATUSES:
                break
        job = await self.job(job_id)
        if job.get("status") not in FINAL_JOB_STATUSES:
            raise errors.Unavailable(f"Ganeti job {job_id} still {job.get('status')}")
        return job

    # -- instance jobs --------------------------------------------------------------------

    async def create_instance(
        self,
        name: str,
        disk_template: str,
        disks: list[dict[str, Any]],
        nics: list[dict[str, Any]],
        os_type: str,
        beparams: dict[str, Any],
        hypervisor: str | None = None,
        hvparams: dict[str, Any] | None = None,
        osparams: dict[str, Any] | None = None,
        pnode: str | None = None,
        tags: list[str] | None = None,
        start: bool = True,
        depends: tuple[int, ...] = (),
    ) -> int:
        """Submit OP_INSTANCE_CREATE (request version 1). Name and IP checks are off:
        names are nefos's own and need not resolve. Without ``pnode`` the cluster's
        default instance allocator picks the node."""
        body: dict[str, Any] = {
            "__version__": 1,
            "mode": "create",
            "instance_name": name,
            "disk_template": disk_template,
            "disks": disks,
            "nics": nics,
            "os_type": os_type,
            "beparams": beparams,
            "name_check": False,
            "ip_check": False,
            "start": start,
            "tags": tags or [],
        }
        if hypervisor:
            body["hypervisor"] = hypervisor
        if hvparams:
            body["hvparams"] = hvparams
        if osparams:
            body["osparams"] = osparams
        if pnode:
            body["pnode"] = pnode
        if depends:
            body["depends"] = _depends(depends)
        return await self._job("POST", "/2/instances", body)

    async def startup(self, name: str) -> int:
        return await self._job("PUT", f"/2/instances/{name}/startup")

    async def shutdown(self, name: str, grace_seconds: int = 120) -> int:
        """Soft shutdown (ACPI), forced off after ``grace_seconds``."""
        body = {"timeout": grace_seconds}
        return await self._job("PUT", f"/2/instances/{name}/shutdown", body)

    async def reboot(self, name: str, reboot_type: str = "soft") -> int:
        if reboot_type not in ("soft", "hard"):
            raise errors.InvalidInput("A reboot is soft or hard")
        return await self._job("POST", f"/2/instances/{name}/reboot", type=reboot_type)

    async def modify(self, name: str, beparams: dict[str, Any]) -> int:
        return await self._job("PUT", f"/2/instances/{name}/modify", {"beparams": beparams})

    async def touch(self, name: str, os_name: str, depends: tuple[int, ...] = ()) -> int:
        """A modify that changes nothing (the OS name the instance has): Ganeti runs its
        ``instance-modify`` hooks on the instance's nodes, which no tag change does."""
        body: dict[str, Any] = {"os_name": os_name}
        if depends:
            body["depends"] = _depends(depends)
        return await self._job("PUT", f"/2/instances/{name}/modify", body)

    async def remove(self, name: str) -> int:
        return await self._job("DELETE", f"/2/instances/{name}")

    async def modify_nics(
        self,
        name: str,
        changes: list[list[Any]],
        hotplug: bool = False,
        depends: tuple[int, ...] = (),
    ) -> int:
        """OP_INSTANCE_SET_PARAMS on NICs (``[["add", -1, {...}]]``, ``[["remove", NAME,
        {}]]``...). ``hotplug``: plug into the running guest where the hypervisor can
        (``hotplug_if_possible``); elsewhere Ganeti logs a warning and the change reaches
        the guest at its next boot."""
        body: dict[str, Any] = {"nics": changes}
        if hotplug:
            body["hotplug_if_possible"] = True
        if depends:
            body["depends"] = _depends(depends)
        return await self._job("PUT", f"/2/instances/{name}/modify", body)

    async def modify_disks(self, name: str, changes: list[list[Any]], hotplug: bool = False) -> int:
        """OP_INSTANCE_SET_PARAMS on disks (``[["add", -1, {...}]]``, ``[["detach", NAME,
        {}]]``), hot where the hypervisor can, as for NICs."""
        body: dict[str, Any] = {"disks": changes}
        if hotplug:
            body["hotplug_if_possible"] = True
        return await self._job("PUT", f"/2/instances/{name}/modify", body)

    async def instance_tags(self, name: str) -> list[str]:
        return await self._call("GET", f"/2/instances/{name}/tags")

    async def add_instance_tags(self, name: str, tags: list[str]) -> int:
        return await self._job("PUT", f"/2/instances/{name}/tags", tag=tags)

    async def remove_instance_tags(self, name: str, tags: list[str]) -> int:
        return await self._job("DELETE", f"/2/instances/{name}/tags", tag=tags)

    # -- networks -------------------------------------------------------------------------

    async def networks(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/2/networks", params={"bulk": 1})

    async def groups(self) -> list[str]:
        return [group["name"] for group in await self._call("GET", "/2/groups")]

    async def add_network(
        self,
        name: str,
        network: str,
        gateway: str | None = None,
        network6: str | None = None,
        gateway6: str | None = None,
        mac_prefix: str | None = None,
        tags: list[str] | None = None,
        depends: tuple[int, ...] = (),
    ) -> int:
        """OP_NETWORK_ADD; Ganeti's own address pool then holds the addresses nefos
        gives NICs (it never picks one: every NIC comes with its IP)."""
        body: dict[str, Any] = {"network_name": name, "network": network, "tags": tags or []}
        for key, value in (
            ("gateway", gateway),
            ("network6", network6),
            ("gateway6", gateway6),
            ("mac_prefix", mac_prefix),
        ):
            if value:
                body[key] = value
        if depends:
            body["depends"] = _depends(depends)
        return await self._job("POST", "/2/networks", body)

    async def connect_network(
        self, name: str, group: str, mode: str, link: str, depends: tuple[int, ...] = ()
    ) -> int:
        """Without Ganeti's ``conflicts_check``: with it, the connect locks the group's
        instances optimistically and fails ("Instances in node group ... changed since
        locks were acquired; retry the operation") whenever an instance there is made or
        removed meanwhile, as servers are while their networks connect. What it checks
        (NICs off the network holding its addresses) cannot happen to nefos's NICs: each
        address is the port's, from the network's own pool."""
        body: dict[str, Any] = {
            "group_name": group,
            "network_mode": mode,
            "network_link": link,
            "conflicts_check": False,
        }
        if depends:
            body["depends"] = _depends(depends)
        return await self._job("PUT", f"/2/networks/{name}/connect", body)

    async def disconnect_network(self, name: str, group: str, depends: tuple[int, ...] = ()) -> int:
        body: dict[str, Any] = {"group_name": group}
        if depends:
            body["depends"] = _depends(depends)
        return await self._job("PUT", f"/2/networks/{name}/disconnect", body)

    async def remove_network(self, name: str, depends: tuple[int, ...] = ()) -> int:
        """A body on DELETE: Ganeti's RAPI reads the opcode's ``depends`` from it."""
        body = {"depends": _depends(depends)} if depends else None
        return await self._job("DELETE", f"/2/networks/{name}", body)


def _depends(jobs: tuple[int, ...]) -> list[list[Any]]:
    """Ganeti's job dependencies: each job must have ended in success first."""
    return [[job_id, ["success"]] for job_id in jobs]
