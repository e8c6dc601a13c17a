"""The checks of what a request asks for a server, before anything is written: names,
counts, passwords, personality files, user data, metadata and tags, ids."""

from __future__ import annotations

import base64
import binascii
import secrets
import string
from typing import Any

from nefos.compute.models import Flavor
from nefos.core import errors
from nefos.core.numbers import INT32_MAX, ascii_int
from nefos.images.service import Image

MAX_NAME = 255


def parse_id(value: int | str) -> int | None:
    """A server's or flavor's id as the API gives it: ASCII digits that an Integer column
    holds (``/servers/\\u0661`` is not server 1, and ``/servers/<30 digits>`` no overflow)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 < value <= INT32_MAX else None
    return ascii_int(value, 1, INT32_MAX)


def check_fits(flavor: Flavor, image: Image) -> None:
    """Nova's check of an image's ``min_ram`` (MiB) and ``min_disk`` (GiB), in its words
    and then with the numbers: a server too small for its image would not boot."""
    if image.min_ram > flavor.ram:
        raise errors.InvalidInput(
            "Flavor's memory is too small for requested image: the image needs "
            f"{image.min_ram} MiB (min_ram), flavor {flavor.id} has {flavor.ram} MiB"
        )
    if image.min_disk > flavor.disk:
        raise errors.InvalidInput(
            "Flavor's disk is too small for requested image: the image needs "
            f"{image.min_disk} GiB (min_disk), flavor {flavor.id} has {flavor.disk} GiB"
        )


def check_counts(min_count: Any, max_count: Any, most: int) -> None:
    for key, value in (("min_count", min_count), ("max_count", max_count)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise errors.InvalidInput(f"{key} is a whole number of at least 1")
    if min_count > max_count:
        raise errors.InvalidInput("min_count is at most max_count")
    if max_count > most:
        raise errors.InvalidInput(f"At most {most} servers in one request")


def fitting(refusal: errors.OverQuota, count: int) -> int | None:
    """How many servers fit in what is left of the holding a commission for ``count``
    of them hit (None: the refusal does not say)."""
    data = refusal.data if isinstance(refusal.data, dict) else {}
    provision, limit, usage = data.get("provision"), data.get("limit"), data.get("usage")
    if not isinstance(provision, dict) or not isinstance(limit, int) or not isinstance(usage, int):
        return None
    each = provision.get("quantity", 0) // count
    return max(limit - usage, 0) // each if each > 0 else None


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise errors.InvalidInput(f"A server name has 1 to {MAX_NAME} characters")
    if any(ord(c) < 32 for c in name):
        raise errors.InvalidInput("A server name has no control characters")
    return name


def new_password(length: int = 12) -> str:
    """Synnefo's rule for generated admin passwords: upper, lower and digits."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
        ):
            return password


MAX_PERSONALITY = 5  # files per server (Nova's and Synnefo's default)
MAX_PERSONALITY_SIZE = 10240  # bytes per file, decoded
MAX_USER_DATA = 65535  # bytes, decoded (Nova's column size)


def _base64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise errors.InvalidInput(f"{what} is base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise errors.InvalidInput(f"{what} is not valid base64") from None


def check_personality(personality: Any) -> tuple[dict[str, Any], ...]:
    """Files to put in the guest, checked as Nova does: 413 past the limits, 400 for
    anything malformed. Contents stay base64: the build decodes them."""
    if personality is None:
        return ()
    if not isinstance(personality, list):
        raise errors.InvalidInput("personality is a list of files")
    if len(personality) > MAX_PERSONALITY:
        raise errors.OverQuota(f"Maximum number of personalities ({MAX_PERSONALITY}) exceeded")
    files = []
    for item in personality:
        if not isinstance(item, dict):
            raise errors.InvalidInput("A personality item is an object with path and contents")
        path = item.get("path")
        if not isinstance(path, str) or not path.startswith("/") or len(path) > 255:
            raise errors.InvalidInput("A personality path is absolute, at most 255 characters")
        if "\0" in path or "/../" in f"{path}/":
            raise errors.InvalidInput(f"Bad personality path {path!r}")
        contents = item.get("contents", "")
        if len(_base64(contents, "Personality contents")) > MAX_PERSONALITY_SIZE:
            raise errors.OverQuota(
                f"Personality file content too long (at most {MAX_PERSONALITY_SIZE} bytes)"
            )
        entry: dict[str, Any] = {"path": path, "contents": contents}
        for key in ("owner", "group"):
            if item.get(key) is not None:
                if not isinstance(item[key], str) or not item[key]:
                    raise errors.InvalidInput(f"A personality {key} is a name")
                entry[key] = item[key]
        if item.get("mode") is not None:
            mode = item["mode"]
            if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
                raise errors.InvalidInput("A personality mode is an integer (e.g. 420 = 0644)")
            entry["mode"] = mode
        files.append(entry)
    return tuple(files)


def check_user_data(user_data: Any) -> str | None:
    if user_data is None:
        return None
    if len(_base64(user_data, "user_data")) > MAX_USER_DATA:
        raise errors.InvalidInput(f"user_data is at most {MAX_USER_DATA} bytes")
    return user_data


def check_metadata(metadata: Any, most: int) -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise errors.InvalidInput("metadata is an object of strings")
    if len(metadata) > most:
        raise errors.OverQuota(f"At most {most} metadata items per server")
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or len(key) > 255:
            raise errors.InvalidInput("A metadata key has 1 to 255 characters")
        if not isinstance(value, str) or len(value) > 255:
            raise errors.InvalidInput("A metadata value is text of at most 255 characters")
    return metadata


def check_tags(tags: Any, most: int) -> list[str]:
    if not isinstance(tags, list) or len(tags) > most:
        raise errors.InvalidInput(f"At most {most} tags")
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > 60 or "/" in tag or "," in tag:
            raise errors.InvalidInput(f"Bad tag {tag!r}: 1 to 60 characters, no / or ,")
    return list(dict.fromkeys(tags))
