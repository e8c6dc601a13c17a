"""The nefos client library, and ``nf``, the command-line client built on it.

::

    from nefos.client import Cloud
    with Cloud("http://127.0.0.1:8000", token) as cloud:
        files = cloud.files()
        files.create_container("photos")
        upload(files, Path("a.jpg"), "photos", "2024/a.jpg")

``Cloud`` authenticates (Keystone v2.0) and finds services in the catalog; ``Files`` is one
account's object store, request by request; :mod:`nefos.client.transfer` moves data with
the block protocol so only what differs travels.
"""

from nefos.client.cloud import Access, Cloud
from nefos.client.errors import ClientError, TransferError
from nefos.client.files import Files, Hashmap
from nefos.client.transfer import (
    DownloadResult,
    SyncResult,
    UploadResult,
    download,
    sync,
    upload,
)

__all__ = [
    "Access",
    "ClientError",
    "Cloud",
    "DownloadResult",
    "Files",
    "Hashmap",
    "SyncResult",
    "TransferError",
    "UploadResult",
    "download",
    "sync",
    "upload",
]
