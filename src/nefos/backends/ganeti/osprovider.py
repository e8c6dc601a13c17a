"""nefos's OS provider for Ganeti (the snf-image counterpart), and its installer.

The provider is a folder of scripts shipped in this package (``os/``) and installed on
every node as an OS definition, ``/srv/ganeti/os/nefos`` by default, which Ganeti then
offers as ``nefos+default``. Its ``create`` fetches the server's build configuration once
and the image's bytes from nefos's vmapi, at the ``config_url`` OS parameter, and writes
the image onto the instance's first disk, checking its size and Merkle hash, then
customises a Linux image inside (password, SSH keys, personality files; see the scripts
themselves). Nodes need bash, curl, python3 and openssl (which Ganeti needs anyway) and
util-linux (losetup, partx, mount), not nefos.
"""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

DEFAULT_TARGET = Path("/srv/ganeti/os")  # first in Ganeti's OS search path
DEFAULT_NAME = "nefos"
VARIANT = "default"
# Every file of the definition, and its mode: Ganeti refuses scripts without the
# executable bit, and wheels do not keep file modes.
FILES = {
    "ganeti_api_version": 0o644,
    "variants.list": 0o644,
    "parameters.list": 0o644,
    "create": 0o755,
    "import": 0o755,
    "export": 0o755,
    "rename": 0o755,
    "verify": 0o755,
    "nefos-write-image": 0o755,
    "nefos-customize": 0o755,
}


def os_type(name: str = DEFAULT_NAME) -> str:
    """What a Ganeti backend asks for to get this provider (``os_type``)."""
    return f"{name}+{VARIANT}"


def install(target: Path = DEFAULT_TARGET, name: str = DEFAULT_NAME) -> Path:
    """Copy the definition to ``target/name``; its folder. Each file is replaced by a
    rename, so a create running meanwhile sees the old script or the new, never half."""
    if not name or "/" in name or "+" in name or name.startswith("."):
        raise ValueError(f"{name!r} is not an OS name (no '/', '+', or leading '.')")
    folder = Path(target) / name
    folder.mkdir(parents=True, exist_ok=True)
    source = resources.files("nefos.backends.ganeti") / "os"
    for filename, mode in FILES.items():
        data = (source / filename).read_bytes()
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{filename}.")
        try:
            with os.fdopen(fd, "wb") as sink:
                sink.write(data)
            os.chmod(temporary, mode)
            os.replace(temporary, folder / filename)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return folder
