"""The client configuration handed out: its files, and the account page's downloads."""

from __future__ import annotations

import uuid

import pytest
import yaml

from nefos.core import errors
from nefos.core.config import Settings
from nefos.identity import client_config
from nefos.identity.client_config import ApplicationCredentialAuth, TokenAuth
from tests.identity.test_web import CSRF, login, provider, web, web_settings  # noqa: F401


def test_files_point_each_client_at_its_dialect(tmp_path):
    settings = Settings(data_dir=tmp_path, public_url="https://cloud.example.org/")
    project = uuid.uuid4()
    token = TokenAuth("tok'en $x", project)
    clouds = yaml.safe_load(client_config.render("clouds", settings, token, cloud="lab"))
    entry = clouds["clouds"]["lab"]
    assert entry["auth_type"] == "v3token"
    assert entry["auth"] == {
        "auth_url": "https://cloud.example.org/identity/v3",
        "token": "tok'en $x",
        "project_id": str(project),
    }
    assert entry["region_name"] == "RegionOne" and entry["identity_api_version"] == 3
    credential = ApplicationCredentialAuth(uuid.uuid4(), "s3cr3t")
    rc = client_config.render("openrc", settings, credential)
    assert "export OS_AUTH_TYPE=v3applicationcredential" in rc
    assert f"export OS_APPLICATION_CREDENTIAL_ID={credential.credential_id}" in rc
    assert "export OS_AUTH_URL=https://cloud.example.org/identity/v3" in rc
    assert "export OS_TOKEN='tok'\"'\"'en $x'" in client_config.render("openrc", settings, token)
    kamaki = client_config.render("kamakirc", settings, token)
    assert "url = https://cloud.example.org/astakos/identity/v2.0" in kamaki
    assert "default_cloud = nefos" in kamaki
    with pytest.raises(errors.InvalidInput):
        client_config.render("kamakirc", settings, credential)
    with pytest.raises(errors.InvalidInput):
        client_config.render("clouds", settings, token, cloud="bad name\n")
    with pytest.raises(errors.InvalidInput):
        client_config.render("ini", settings, token)


async def test_the_account_page_hands_out_configuration(web):  # noqa: F811
    client, identity = web
    _, token = await identity.create_user("cat@example.org", password="pw")
    assert (await client.get("/ui/account/config/clouds")).status_code == 303  # log in first
    await login(client, "cat@example.org", "pw")
    account = await client.get("/ui/account")
    assert "/ui/account/config/clouds" in account.text
    csrf = CSRF.search(account.text).group(1)
    clouds = await client.get("/ui/account/config/clouds")
    assert clouds.status_code == 200
    assert 'filename="clouds.yaml"' in clouds.headers["content-disposition"]
    assert yaml.safe_load(clouds.text)["clouds"]["nefos"]["auth"]["token"] == token
    assert (await client.get("/ui/account/config/ini")).status_code == 404
    forged = await client.post("/ui/account/config/openrc", data={"name": "x", "csrf": "no"})
    assert forged.status_code == 403
    made = await client.post("/ui/account/config/openrc", data={"name": "laptop", "csrf": csrf})
    assert made.status_code == 200 and "OS_APPLICATION_CREDENTIAL_SECRET=" in made.text
    twice = await client.post("/ui/account/config/openrc", data={"name": "laptop", "csrf": csrf})
    assert twice.status_code == 409
    # The credential is real: its id and secret get a token.
    fields = dict(
        line.removeprefix("export ").split("=", 1)
        for line in made.text.splitlines()
        if line.startswith("export ")
    )
    body = {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {
                    "id": fields["OS_APPLICATION_CREDENTIAL_ID"],
                    "secret": fields["OS_APPLICATION_CREDENTIAL_SECRET"].strip("'"),
                },
            }
        }
    }
    issued = await client.post("/identity/v3/auth/tokens", json=body)
    assert issued.status_code == 201, issued.text
    assert issued.json()["token"]["application_credential"]["name"] == "laptop"
