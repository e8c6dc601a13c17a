"""Client configuration a user takes home: a ``clouds.yaml`` entry and an openrc file for
OpenStack's clients, a kamakirc for kamaki.

OpenStack's clients get the Keystone v3 URL from the catalog (the OpenStack dialect);
kamaki gets the v2.0 URL it reads its catalog from (the Synnefo dialect). Either holds
the user's API token, or an application credential's id and secret; kamaki knows no
application credentials, so a kamakirc holds a token only. The files hold secrets:
whoever writes them keeps them private (mode 0600).
"""

from __future__ import annotations

import json
import re
import shlex
import uuid
from dataclasses import dataclass

from nefos.core import errors
from nefos.core.config import Settings
from nefos.identity.catalog import v2_catalog, v3_catalog

FORMATS = ("clouds", "openrc", "kamakirc")
FILE_NAMES = {"clouds": "clouds.yaml", "openrc": "openrc", "kamakirc": "kamakirc"}
_CLOUD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class TokenAuth:
    token: str
    project_id: uuid.UUID


@dataclass(frozen=True)
class ApplicationCredentialAuth:
    credential_id: uuid.UUID
    secret: str


Auth = TokenAuth | ApplicationCredentialAuth


def identity_urls(settings: Settings) -> tuple[str, str]:
    """The Keystone v3 and v2.0 URLs, as the two catalogs publish them."""
    v3 = next(s for s in v3_catalog(settings, "-") if s["type"] == "identity")
    v2 = next(s for s in v2_catalog(settings) if s["type"] == "identity")
    return v3["endpoints"][0]["url"], v2["endpoints"][0]["publicURL"]  # type: ignore[index]


def check_cloud_name(name: str) -> str:
    if not _CLOUD_NAME.match(name):
        raise errors.InvalidInput(
            "A cloud name has 1 to 63 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return name


def render(fmt: str, settings: Settings, auth: Auth, cloud: str = "nefos") -> str:
    """The file of format ``fmt`` (one of :data:`FORMATS`) for ``auth``."""
    check_cloud_name(cloud)
    v3_url, v2_url = identity_urls(settings)
    if fmt == "clouds":
        return clouds_yaml(cloud, v3_url, settings.region, auth)
    if fmt == "openrc":
        return openrc(v3_url, settings.region, auth)
    if fmt == "kamakirc":
        if not isinstance(auth, TokenAuth):
            raise errors.InvalidInput(
                "kamaki authenticates with a token only: a kamakirc cannot hold an "
                "application credential"
            )
        return kamakirc(cloud, v2_url, auth.token)
    raise errors.InvalidInput(f"Unknown format {fmt!r}: one of {', '.join(FORMATS)}")


def _auth_lines(v3_url: str, auth: Auth) -> tuple[str, dict[str, str]]:
    if isinstance(auth, TokenAuth):
        return "v3token", {
            "auth_url": v3_url,
            "token": auth.token,
            "project_id": str(auth.project_id),
        }
    return "v3applicationcredential", {
        "auth_url": v3_url,
        "application_credential_id": str(auth.credential_id),
        "application_credential_secret": auth.secret,
    }


def clouds_yaml(cloud: str, v3_url: str, region: str, auth: Auth) -> str:
    """JSON strings are YAML scalars: every value is quoted, whatever it holds."""
    auth_type, fields = _auth_lines(v3_url, auth)
    lines = [
        "clouds:",
        f"  {cloud}:",
        f"    auth_type: {json.dumps(auth_type)}",
        "    auth:",
        *(f"      {key}: {json.dumps(value)}" for key, value in fields.items()),
        f"    region_name: {json.dumps(region)}",
        '    interface: "public"',
        "    identity_api_version: 3",
    ]
    return "\n".join(lines) + "\n"


def openrc(v3_url: str, region: str, auth: Auth) -> str:
    auth_type, fields = _auth_lines(v3_url, auth)
    variables = {
        "OS_AUTH_TYPE": auth_type,
        **{f"OS_{key.upper()}": value for key, value in fields.items()},
        "OS_REGION_NAME": region,
        "OS_INTERFACE": "public",
        "OS_IDENTITY_API_VERSION": "3",
    }
    lines = ["# nefos: source this file, then run openstack commands"]
    # Another cloud's variables left in the shell would mix with these.
    lines.append("unset OS_USERNAME OS_PASSWORD OS_PROJECT_NAME OS_PROJECT_ID OS_TOKEN")
    lines.extend(f"export {name}={shlex.quote(value)}" for name, value in variables.items())
    return "\n".join(lines) + "\n"


def kamakirc(cloud: str, v2_url: str, token: str) -> str:
    for value in (v2_url, token):
        if "\n" in value or "\r" in value:
            raise errors.InvalidInput("A kamakirc value cannot span lines")
    return (
        f'[global]\ndefault_cloud = {cloud}\n\n[cloud "{cloud}"]\nurl = {v2_url}\ntoken = {token}\n'
    )
