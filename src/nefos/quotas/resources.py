"""The resources nefos charges, with units and default base quotas.

A registry in code (each service's resources are part of that service), with default
base quotas that a deployment overrides in ``[quota_defaults]``.
"""

from __future__ import annotations

from dataclasses import dataclass

GiB = 1 << 30


@dataclass(frozen=True)
class Resource:
    name: str
    unit: str  # "bytes" or "" for counts
    description: str
    service_type: str
    service_origin: str
    default: int  # base quota of every user's system project
    allow_in_projects: bool = True
    ui_visible: bool = True
    api_visible: bool = True


RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in (
        Resource("cyclades.vm", "", "Number of virtual machines", "compute", "cyclades", 5),
        Resource("cyclades.total_cpu", "", "Number of virtual CPUs", "compute", "cyclades", 20),
        Resource(
            "cyclades.cpu", "", "Number of virtual CPUs of running VMs", "compute", "cyclades", 20
        ),
        Resource(
            "cyclades.total_ram", "bytes", "Virtual machine memory", "compute", "cyclades", 40 * GiB
        ),
        Resource("cyclades.ram", "bytes", "Memory of running VMs", "compute", "cyclades", 40 * GiB),
        Resource("cyclades.disk", "bytes", "Virtual disk space", "compute", "cyclades", 200 * GiB),
        Resource(
            "cyclades.network.private", "", "Number of private networks", "network", "cyclades", 5
        ),
        Resource("cyclades.floating_ip", "", "Number of floating IPs", "network", "cyclades", 2),
        Resource("pithos.diskspace", "bytes", "Storage space", "object-store", "pithos", 50 * GiB),
        Resource(
            "astakos.pending_app",
            "",
            "Number of pending project applications",
            "account",
            "astakos",
            2,
            allow_in_projects=False,
            ui_visible=False,
            api_visible=False,
        ),
    )
}


def describe(resource: Resource, default: int) -> dict[str, object]:
    """The ``GET resources`` entry, in Synnefo's shape."""
    return {
        "unit": resource.unit,
        "description": resource.description,
        "service_type": resource.service_type,
        "service_origin": resource.service_origin,
        "allow_in_projects": resource.allow_in_projects,
        "ui_visible": resource.ui_visible,
        "api_visible": resource.api_visible,
        "system_default": default,
        "project_default": 0,
    }
