"""The vmapi's table: one row per server build in flight (``nefos.compute.vmapi``).

Only the SHA-256 of the build's secret is kept, so the table alone opens no build; the
build configuration is sealed with the deployment's secret key and dropped once fetched.
The image is pinned to the map, size and Merkle hash of the version the server was
created from, so a later upload to the same file never changes what a build writes.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from nefos.core.db import Base, UtcDateTime, utcnow


class BuildSecret(Base):
    __tablename__ = "compute_vmapi"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256, hex
    server_id: Mapped[int] = mapped_column(
        ForeignKey("compute_servers.id", ondelete="CASCADE"), index=True
    )
    image_map: Mapped[str] = mapped_column(String(200))
    image_size: Mapped[int] = mapped_column(BigInteger)
    image_hash: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[str | None] = mapped_column(Text, default=None)  # None: fetched
    expires: Mapped[dt.datetime] = mapped_column(UtcDateTime, index=True)
    created: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
