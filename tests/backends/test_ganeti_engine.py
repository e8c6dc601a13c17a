"""The real engine under the compute backend: Google Ganeti, driven over RAPI only.

What nefos's Ganeti backend will rely on, checked against Debian's Ganeti 3.0 as
``scripts/ganeti-dev.sh`` sets it up: the cluster answers, the noop OS is there, an
instance on the fake hypervisor goes through its whole life in jobs that each succeed and
land in the job queue on disk, and a real guest boots on KVM (QEMU TCG).
"""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any

import httpx
import pytest

from tests.backends.conftest import Ganeti, queue_file, wait_for_job

READY = b"NEFOS-GUEST-READY"
POWEROFF = b"NEFOS-GUEST-POWEROFF"
KVM_GUEST_IP = "198.18.0.200"


def run_job(
    rapi: httpx.Client,
    timings: list[tuple[str, float]],
    what: str,
    method: str,
    path: str,
    **kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    """Submit a job, wait for it, insist that it succeeded; its id and final state."""
    started = time.monotonic()
    response = rapi.request(method, path, **kwargs)
    assert response.status_code == 200, response.text
    job_id = response.json()
    job = wait_for_job(rapi, job_id)
    timings.append((what, time.monotonic() - started))
    assert job["status"] == "success", job
    return int(job_id), job


def instance(rapi: httpx.Client, name: str) -> dict[str, Any]:
    response = rapi.get(f"/2/instances/{name}")
    assert response.status_code == 200, response.text
    return response.json()


def hypervisor_of(rapi: httpx.Client, name: str) -> str:
    """Not among ``GET /2/instances/X``'s fields; the query resource has it."""
    response = rapi.get("/2/query/instance", params={"fields": "name,hypervisor"})
    assert response.status_code == 200, response.text
    rows = {row[0][1]: row[1][1] for row in response.json()["data"]}
    return rows[name]


def test_cluster_answers_over_rapi(rapi: httpx.Client, ganeti: Ganeti) -> None:
    info = rapi.get("/2/info").json()
    assert info["name"] == ganeti.cluster
    assert info["master"] == ganeti.node
    assert {"fake", "kvm"} <= set(info["enabled_hypervisors"])
    assert {"file", "diskless"} <= set(info["enabled_disk_templates"])
    assert "instance-create-reqv1" in rapi.get("/2/features").json()
    assert [node["id"] for node in rapi.get("/2/nodes").json()] == [ganeti.node]


def test_rapi_requires_authentication(ganeti: Ganeti) -> None:
    with httpx.Client(base_url=ganeti.rapi_url, verify=ganeti.ssl_context()) as anonymous:
        assert anonymous.post("/2/instances", json={}).status_code == 401
    wrong = (ganeti.rapi_user, "not-the-password")
    with httpx.Client(base_url=ganeti.rapi_url, verify=ganeti.ssl_context(), auth=wrong) as bad:
        assert bad.get("/2/info").status_code == 401


def test_noop_os_is_available(rapi: httpx.Client) -> None:
    assert "noop" in rapi.get("/2/os").json()


def test_fake_instance_lifecycle(
    rapi: httpx.Client, ganeti: Ganeti, instance_name: str, timings: list[tuple[str, float]]
) -> None:
    name = instance_name
    jobs: dict[str, int] = {}
    jobs["OP_INSTANCE_CREATE"], _ = run_job(
        rapi,
        timings,
        "fake: create (file disk, started)",
        "POST",
        "/2/instances",
        json={
            "__version__": 1,
            "mode": "create",
            "instance_name": name,
            "disk_template": "file",
            "disks": [{"size": 64}],
            "nics": [{"link": ganeti.bridge}],
            "os_type": "noop",
            "pnode": ganeti.node,
            "hypervisor": "fake",
            "beparams": {"memory": 128, "vcpus": 1},
            "name_check": False,
            "ip_check": False,
            "start": True,
        },
    )
    created = instance(rapi, name)
    assert created["status"] == "running"
    assert created["oper_state"] is True
    assert created["disk_template"] == "file"
    assert hypervisor_of(rapi, name) == "fake"
    assert created["nic.links"] == [ganeti.bridge]
    assert created["disk.sizes"] == [64]
    assert [path.name for path in (ganeti.file_storage_dir / name).iterdir()]  # the disk

    jobs["OP_INSTANCE_SHUTDOWN"], _ = run_job(
        rapi, timings, "fake: shutdown", "PUT", f"/2/instances/{name}/shutdown", json={}
    )
    assert instance(rapi, name)["status"] == "ADMIN_down"

    jobs["OP_INSTANCE_SET_PARAMS"], _ = run_job(
        rapi,
        timings,
        "fake: modify (memory 256)",
        "PUT",
        f"/2/instances/{name}/modify",
        json={"beparams": {"maxmem": 256, "minmem": 256}},
    )
    assert instance(rapi, name)["beparams"]["maxmem"] == 256

    jobs["OP_INSTANCE_STARTUP"], _ = run_job(
        rapi, timings, "fake: startup", "PUT", f"/2/instances/{name}/startup"
    )
    assert instance(rapi, name)["status"] == "running"

    jobs["OP_INSTANCE_REBOOT"], _ = run_job(
        rapi, timings, "fake: reboot (soft)", "POST", f"/2/instances/{name}/reboot?type=soft"
    )
    assert instance(rapi, name)["status"] == "running"

    jobs["OP_INSTANCE_REMOVE"], _ = run_job(
        rapi, timings, "fake: remove", "DELETE", f"/2/instances/{name}"
    )
    assert rapi.get(f"/2/instances/{name}").status_code == 404
    assert not (ganeti.file_storage_dir / name).exists()

    # Each job as luxid wrote it to the queue on disk (what a watcher of the queue sees).
    for op_id, job_id in jobs.items():
        job = queue_file(ganeti, job_id)
        assert job["id"] == job_id
        assert [op["input"]["OP_ID"] for op in job["ops"]] == [op_id]
        assert [op["status"] for op in job["ops"]] == ["success"]
        assert job["received_timestamp"] and job["end_timestamp"]


class Serial:
    """The guest's serial console: the unix socket QEMU listens on (one reader at a time)."""

    def __init__(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.output = b""

    def wait_for(self, marker: bytes, timeout: float) -> bytes:
        """Read until a line containing ``marker`` has arrived; that line."""
        deadline = time.monotonic() + timeout
        while marker not in self.output or b"\n" not in self.output[self.output.index(marker) :]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {marker!r} on the serial console: {self.output[-2000:]!r}")
            self.sock.settimeout(min(remaining, 1.0))
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                raise EOFError(f"console closed before {marker!r}: {self.output[-2000:]!r}")
            self.output += chunk
        start = self.output.index(marker)
        return self.output[start : self.output.index(b"\n", start)].strip()

    def close(self) -> None:
        self.sock.close()


def ping(address: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(
            ["/bin/busybox", "ping", "-c", "1", "-W", "1", address], capture_output=True
        )
        if done.returncode == 0:
            return True
    return False


@pytest.mark.slow
def test_kvm_guest_boots_and_powers_off(
    rapi: httpx.Client, ganeti: Ganeti, instance_name: str, timings: list[tuple[str, float]]
) -> None:
    """A real guest (Debian's kernel, a busybox initramfs) on the kvm hypervisor under QEMU
    TCG: it boots, configures its NIC from the kernel arguments, answers ping from the host
    over gntbr0, and powers off on the ACPI button Ganeti presses for a soft shutdown."""
    name = instance_name
    submitted = time.monotonic()
    run_job(
        rapi,
        timings,
        "kvm: create (diskless, started)",
        "POST",
        "/2/instances",
        json={
            "__version__": 1,
            "mode": "create",
            "instance_name": name,
            "disk_template": "diskless",
            "disks": [],
            "nics": [{"link": ganeti.bridge, "ip": KVM_GUEST_IP}],
            "os_type": "noop",
            "pnode": ganeti.node,
            "hypervisor": "kvm",
            "hvparams": {"kernel_args": f"ro quiet nefos.ip={KVM_GUEST_IP}/24 nefos.gw=198.18.0.1"},
            "beparams": {"memory": 128, "vcpus": 1},
            "name_check": False,
            "ip_check": False,
            "start": True,
        },
    )
    details = instance(rapi, name)
    assert details["status"] == "running"
    assert hypervisor_of(rapi, name) == "kvm"
    assert details["hvparams"]["kernel_path"] == ganeti.kvm_kernel

    serial = Serial(str(ganeti.kvm_ctrl_dir / f"{name}.serial"), timeout=10)
    try:
        ready = serial.wait_for(READY, timeout=90 - (time.monotonic() - submitted))
        timings.append(("kvm: submit to guest ready", time.monotonic() - submitted))
        assert f"ip={KVM_GUEST_IP}/24".encode() in ready
        assert f"mac={details['nic.macs'][0]}".encode() in ready
        assert ping(KVM_GUEST_IP, timeout=15), "the guest does not answer ping over gntbr0"

        started = time.monotonic()
        response = rapi.put(f"/2/instances/{name}/shutdown", json={"timeout": 30})
        assert response.status_code == 200, response.text
        serial.wait_for(POWEROFF, timeout=45)
        job = wait_for_job(rapi, response.json())
        timings.append(("kvm: soft shutdown (ACPI)", time.monotonic() - started))
        assert job["status"] == "success", job
    finally:
        serial.close()
    assert instance(rapi, name)["status"] == "ADMIN_down"

    run_job(rapi, timings, "kvm: remove", "DELETE", f"/2/instances/{name}")
    assert rapi.get(f"/2/instances/{name}").status_code == 404
