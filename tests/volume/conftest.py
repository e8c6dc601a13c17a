"""The volume tests' node: a real ``nefos volumed`` on the test's deployment."""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nefos.core.config import Settings
from tests.volume.node import Node


@pytest.fixture
def node(settings: Settings) -> Iterator[Node]:
    """volumed on the test's deployment. Its run directory is short (a unix socket's
    path is at most 107 bytes), under /tmp."""
    run_dir = Path(tempfile.mkdtemp(prefix="nv-", dir="/tmp"))
    node = Node(settings, run_dir, settings.data_dir / "volumed.log")
    node.start()
    try:
        yield node
    finally:
        node.kill(signal.SIGTERM)
        shutil.rmtree(run_dir, ignore_errors=True)
