"""Swift's bulk upload of a tar with the real clients, against ``nefos up``: the archive
sent with python-swiftclient (``put_object`` with ``?extract-archive``, its only way), the
result read with the ``swift`` CLI as a user would (``list``, ``stat``)."""

from __future__ import annotations

import io
import tarfile

from swiftclient import client as swift_client

from tests.conftest import Server
from tests.e2e.test_object_clients import swift


def test_swift_bulk_upload_of_a_tar(server: Server):
    connection = swift_client.Connection(
        authurl=f"{server.url}/object-store/v1",
        user=server.admin_email,
        key=server.admin_token,
    )
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        for name, data in (("bulk/a.txt", b"alpha"), ("bulk/d/b.txt", b"beta!")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    response: dict = {}
    connection.put_object(
        "",
        "",
        packed.getvalue(),
        query_string="extract-archive=tar.gz",
        headers={"Accept": "application/json"},
        response_dict=response,
    )
    assert response["status"] == 200
    listed = swift(server, "list", "bulk")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["a.txt", "d/b.txt"]
    stat = swift(server, "stat", "bulk")
    assert "Objects: 2" in stat.stdout and "Bytes: 10" in stat.stdout
    assert 'Objects in policy "policy-0": 2' in swift(server, "stat").stdout
    capabilities = swift(server, "capabilities")
    assert "bulk_upload" in capabilities.stdout
