"""``nefos``: run the cloud and administer it.

Every command finds its deployment from ``--data-dir``/``--config`` or the
``NEFOS_DATA_DIR``/``NEFOS_CONFIG`` environment variables, so an operator command acts
on the same database that a running ``nefos up`` serves.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shlex
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from nefos.cli.common import (
    ConfigFile,
    DataDir,
    PasswordStdin,
    check_schema,
    err,
    fail,
    out,
    read_password,
    settings_for,
    with_engines,
)
from nefos.cli.compute import backend_app, flavor_app, server_app
from nefos.cli.ganeti import ganeti_app
from nefos.cli.images import image_app
from nefos.cli.network import network_app
from nefos.cli.projects import project_app
from nefos.cli.quota import quota_app, usage_app
from nefos.cli.reconcile import reconcile_app
from nefos.cli.storage import storage_app
from nefos.cli.volumed import volumed
from nefos.core.config import Settings
from nefos.core.migrate import head, upgrade_async
from nefos.identity import client_config, signup_rules
from nefos.identity.delegation import ApplicationCredentials
from nefos.identity.models import User
from nefos.quotas.serials import LOCAL_CLIENTS, reconcile
from nefos.server.engines import Engines

app = typer.Typer(
    help="nefos: an open-source IaaS cloud (identity, compute, network, storage, images, volumes).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="User accounts and their tokens.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(config_app, name="config")
app.add_typer(project_app, name="project")
app.add_typer(quota_app, name="quota")
app.add_typer(usage_app, name="usage")
app.add_typer(storage_app, name="storage")
app.add_typer(image_app, name="image")
app.add_typer(flavor_app, name="flavor")
app.add_typer(backend_app, name="backend")
app.add_typer(server_app, name="server")
app.add_typer(network_app, name="network")
app.add_typer(ganeti_app, name="ganeti")
app.add_typer(reconcile_app, name="reconcile")
app.command("volumed")(volumed)

# -- running -------------------------------------------------------------------------


@app.command()
def up(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    host: Annotated[str | None, typer.Option(help="Listen address [default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [default 8000]")] = None,
) -> None:
    """Run the whole cloud in one process: migrate, create the first admin, serve."""
    settings = settings_for(config, data_dir, host=host, port=port)
    # Take the port before anything is written: on a port another process holds, the
    # admin would be created and its password printed for a server that never answers.
    listener = _listen(settings.host, settings.port)

    async def prepare() -> tuple[User, str, str] | None:
        await upgrade_async(settings.database)
        engines = Engines(settings)
        try:
            await engines.quotas.init_missing_users()
            for client in LOCAL_CLIENTS:  # settle what a crash of the last run left pending
                await reconcile(engines.db, engines.quotas, client)
            await engines.compute.ensure_embedded()
            await engines.compute.ensure_default_flavors()
            return await engines.identity.ensure_admin()
        finally:
            await engines.db.close()

    try:
        created = asyncio.run(prepare())
    except BaseException:
        listener.close()
        raise
    hint = _token_hint(settings, config)
    shown = False

    def announce() -> None:
        """The address and the admin's credentials, once the server answers there."""
        nonlocal shown
        shown = True
        out.print(f"nefos is running at [bold]{settings.base_url}[/bold]")
        out.print(f"  data directory: {settings.data_dir.resolve()}")
        out.print(f"  identity (Keystone v3): {settings.base_url}/identity/v3")
        out.print(f"  web login: {settings.base_url}/ui/login")
        if settings.compute.embedded_backend:
            out.print("  compute: the embedded backend is simulated and runs no guest")
        if created is not None:
            out.print("[bold]An admin account was created:[/bold]")
            _credentials(created)
        out.print(f"  admin: {settings.admin_email}; its token later: {hint}", markup=False)

    try:
        _serve(settings, workers=1, listener=listener, announce=announce)
    finally:
        if created is not None and not shown:  # its password is shown only this once
            err.print("[bold]The server did not start; an admin account was created:[/bold]")
            _credentials(created, err)


def _credentials(created: tuple[User, str, str], console: Console = out) -> None:
    # tests/conftest.py reads these lines: "  e-mail:", "  password:", "  uuid:", "  token:".
    user, password, token = created
    console.print(f"  e-mail:   {user.email}", markup=False)
    console.print(f"  password: {password}", markup=False)
    console.print(f"  uuid:     {user.id}", markup=False)
    console.print(f"  token:    {token}", markup=False)


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound and listening on host:port, for the server to serve on (as
    uvicorn binds one: IPv6 for an address with a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise fail(
                f"{host}:{port} is already in use (another nefos?): stop what listens "
                "there, or choose another port with --port"
            ) from None
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _token_hint(settings: Settings, config: Path | None) -> str:
    """The command that prints the admin's token, naming this deployment whatever the
    directory and environment it is run from."""
    words = ["nefos", "user", "token", settings.admin_email]
    config_file = config or (
        Path(os.environ["NEFOS_CONFIG"]) if os.environ.get("NEFOS_CONFIG") else None
    )
    if config_file is not None:
        words += ["--config", str(config_file.resolve())]
    words += ["--data-dir", str(settings.data_dir.resolve())]
    return shlex.join(words)


@app.command()
def serve(
    config: Annotated[Path, typer.Option("--config", help="TOML configuration file")],
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port")] = None,
    workers: Annotated[
        int, typer.Option(help="Worker processes (more than one needs a RabbitMQ bus_url)")
    ] = 1,
) -> None:
    """Serve the APIs of a deployment whose database is already migrated (production)."""
    settings = settings_for(config, None, host=host, port=port)
    if workers > 1 and settings.bus_url.lower().startswith("memory:"):
        # Each worker would get a bus of its own: a server's jobs and events would stay
        # in whichever worker took its request.
        raise fail(
            f"--workers {workers} needs a bus the workers share: set bus_url to a "
            "RabbitMQ URL (amqp://user:password@host/vhost), or serve one worker"
        )
    asyncio.run(check_schema(settings))
    _serve(settings, workers, config)


def _serve(
    settings: Settings,
    workers: int,
    config: Path | None = None,
    listener: socket.socket | None = None,
    announce: Callable[[], None] | None = None,
) -> None:
    """Serve until stopped; ``listener``: a socket already listening (else uvicorn binds
    host and port); ``announce``: called once the server answers."""
    import uvicorn

    from nefos.core.logging import configure_logging
    from nefos.server.app import create_app

    configure_logging(settings.log_level, settings.log_format)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
        "timeout_graceful_shutdown": 10,
        # Clients keep idle connections in pools (requests, keystoneauth, swiftclient)
        # and reuse them after pauses; at uvicorn's 5 s a request sent as the server
        # closes one fails with "Remote end closed connection". nginx keeps 75 s.
        "timeout_keep_alive": 75,
    }
    if workers > 1:
        if config is not None:
            os.environ["NEFOS_CONFIG"] = str(config.resolve())
        os.environ["NEFOS_DATA_DIR"] = str(settings.data_dir.resolve())
        uvicorn.run("nefos.server.app:app_factory", factory=True, workers=workers, **common)
        return

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and announce is not None:
                announce()

    server = Server(uvicorn.Config(create_app(settings), **common))
    server.run(sockets=[listener] if listener is not None else None)
    if not server.started:  # uvicorn.run exits so too: the app did not start
        raise typer.Exit(3)


# -- database ------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Apply every pending schema migration, and seal secrets stored in plain text."""
    settings = settings_for(config, data_dir)

    async def work() -> int:
        await upgrade_async(settings.database)
        engines = Engines(settings)
        try:
            return await engines.compute.seal_backend_passwords()
        finally:
            await engines.db.close()

    sealed = asyncio.run(work())
    out.print(f"database at revision {head()}")
    if sealed:
        out.print(f"sealed the RAPI passwords of {sealed} backends")


# -- users ---------------------------------------------------------------------------


def _user_record(user: User) -> dict[str, Any]:
    return {
        "uuid": str(user.id),
        "email": user.email,
        "name": user.display_name,
        "active": user.is_active,
        "verified": user.is_verified,
        "admin": user.is_admin,
        "system_project": str(user.system_project_id),
        "created": user.created_at.isoformat(),
    }


@user_app.command("create")
def user_create(
    email: str,
    password_stdin: PasswordStdin = False,
    name: Annotated[str, typer.Option(help="Display name")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role")] = False,
    inactive: Annotated[bool, typer.Option("--inactive", help="Create deactivated")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create a user; prints its UUID and API token.

    The local password comes from --password-stdin, else it is asked at a terminal;
    none (an empty answer, or no terminal) leaves the user without a local login, for
    one who logs in elsewhere (`nefos user link`)."""
    password = read_password("Local password (empty: no local login)", password_stdin, True)
    user, token = with_engines(
        config,
        data_dir,
        lambda e: e.identity.create_user(
            email, password or None, name, admin=admin, active=not inactive, verified=True
        ),
    )
    out.print(f"uuid: {user.id}")
    out.print(f"token: {token}")


@user_app.command("list")
def user_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """List users."""
    users = with_engines(config, data_dir, lambda e: e.identity.list_users())
    if as_json:
        out.print_json(json.dumps([_user_record(u) for u in users]))
        return
    table = Table("uuid", "email", "name", "active", "admin")
    for user in users:
        table.add_row(
            str(user.id), user.email, user.display_name, _yes(user.is_active), _yes(user.is_admin)
        )
    out.print(table)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


@user_app.command("show")
def user_show(
    user: Annotated[str, typer.Argument(help="UUID or e-mail")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Show one user and its logins."""

    async def work(engines: Engines) -> dict[str, Any]:
        identity = engines.identity
        found = await identity.get_user(user)
        record = _user_record(found)
        record["logins"] = [
            {"provider": login.provider, "identifier": login.identifier}
            for login in await identity.identities(found.id)
        ]
        _, token = await identity.api_token(found.id)
        record["token_expires"] = token.expires_at.isoformat() if token else None
        return record

    record = with_engines(config, data_dir, work)
    if as_json:
        out.print_json(json.dumps(record))
        return
    for key, value in record.items():
        if key == "logins":
            value = ", ".join(f"{x['provider']}:{x['identifier']}" for x in value) or "-"
        out.print(f"{key}: {value}")


@user_app.command("pending")
def user_pending(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """List accounts that signed up, verified their e-mail and wait for moderation."""
    users = with_engines(config, data_dir, lambda e: e.accounts.pending(None))
    if as_json:
        out.print_json(json.dumps([_user_record(u) for u in users]))
        return
    table = Table("uuid", "email", "name", "signed up")
    for user in users:
        table.add_row(str(user.id), user.email, user.display_name, user.created_at.isoformat())
    out.print(table)


def _mailed(sent: bool | None, email: str) -> None:
    if sent is False:
        err.print(f"the mail to {email} is not sent yet: the relay ([mail]) did not take it")


@user_app.command("activate")
def user_activate(
    user: Annotated[str, typer.Argument(help="UUID or e-mail")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Let a user log in: approve an account that signed up (it gets an e-mail), or
    reactivate a deactivated one."""

    async def work(engines: Engines) -> tuple[User, bool | None]:
        found = await engines.identity.get_user(user)
        if found.signup_state in signup_rules.ALLOWED[signup_rules.ACTIVATE]:
            done = await engines.accounts.activate(None, found.id)
            return done.user, done.mail_sent
        return await engines.identity.set_active(user, True), None

    found, sent = with_engines(config, data_dir, work)
    out.print(f"{found.email} is active")
    _mailed(sent, found.email)


@user_app.command("reject")
def user_reject(
    user: Annotated[str, typer.Argument(help="UUID or e-mail")],
    reason: Annotated[str, typer.Option(help="Why, told to the user in the e-mail")] = "",
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Turn down an account that signed up and waits for moderation; it gets an e-mail."""
    done = with_engines(config, data_dir, lambda e: e.accounts.reject(None, user, reason))
    out.print(f"{done.user.email} is rejected")
    _mailed(done.mail_sent, done.user.email)


@user_app.command("deactivate")
def user_deactivate(
    user: Annotated[str, typer.Argument(help="UUID or e-mail")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Stop a user from logging in; its tokens stop working at once."""
    found = with_engines(config, data_dir, lambda e: e.identity.set_active(user, False))
    out.print(f"{found.email} is deactivated")


@user_app.command("token")
def user_token(
    user: Annotated[str, typer.Argument(help="UUID or e-mail")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Print the user's current API token."""
    token, record = with_engines(config, data_dir, lambda e: e.identity.api_token(user))
    if token is None:
        raise fail("the API token cannot be shown: `nefos user renew-token` makes a new one")
    out.print(token)
    assert record is not None
    err.print(f"expires {record.expires_at.isoformat()}")


@user_app.command("renew-token")
def user_renew_token(
    user: Annotated[str, typer.Argument(help="UUID or e-mail")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Replace the user's API token (the old one stops working) and print the new one."""
    out.print(with_engines(config, data_dir, lambda e: e.identity.renew_api_token(user)))


@user_app.command("set-password")
def user_set_password(
    user: Annotated[str, typer.Argument(help="UUID or e-mail")],
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Set the user's local password (enables the local login): from --password-stdin,
    else asked twice at a terminal."""
    password = read_password("New password", password_stdin)
    found = with_engines(config, data_dir, lambda e: e.identity.set_password(user, password))
    out.print(f"password of {found.email} set")


@user_app.command("link")
def user_link(
    user: Annotated[str, typer.Argument(help="UUID or e-mail")],
    provider: Annotated[
        str, typer.Option(help="Login provider: an OIDC provider's name, shibboleth")
    ],
    identifier: Annotated[str, typer.Option(help="The user's id at the provider (OIDC sub, eppn)")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Let an external login (OIDC, Shibboleth) log in as this user."""
    with_engines(config, data_dir, lambda e: e.identity.link(user, provider, identifier, None))
    out.print(f"{provider}:{identifier} now logs in as {user}")


@user_app.command("config")
def user_config(
    user: Annotated[str, typer.Argument(help="UUID or e-mail")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="clouds (a clouds.yaml for openstack --os-cloud), openrc (to source), "
            "kamakirc (kamaki's ~/.kamakirc)",
        ),
    ] = "clouds",
    application_credential: Annotated[
        str | None,
        typer.Option(
            "--application-credential",
            help="Create an application credential of this name for the user (on their "
            "own project, their roles, no expiry) and use it instead of the API token; "
            "its secret is shown only in this file",
        ),
    ] = None,
    cloud: Annotated[str, typer.Option(help="The cloud's name in the file")] = "nefos",
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="The URL clients reach this deployment at, when public_url is not "
            "configured (e.g. a `nefos up --port` server's)",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (mode 0600), not to stdout")
    ] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Print a client configuration for the user: the Keystone v3 URL for OpenStack's
    clients, the v2.0 URL for kamaki."""
    if fmt not in client_config.FORMATS:
        raise fail(f"--format is one of {', '.join(client_config.FORMATS)}", code=2)
    if fmt == "kamakirc" and application_credential is not None:
        raise fail("kamaki authenticates with a token only: drop --application-credential")

    async def work(engines: Engines) -> str:
        identity = engines.identity
        token, _ = await identity.api_token(user)
        if token is None:
            raise fail("the API token cannot be shown: `nefos user renew-token` makes a new one")
        caller = await identity.authenticate(token)
        auth: client_config.Auth
        if application_credential is None:
            auth = client_config.TokenAuth(token, caller.project_id)
        else:
            shown, secret = await ApplicationCredentials(identity).create(
                caller, str(caller.user_id), application_credential
            )
            auth = client_config.ApplicationCredentialAuth(shown.credential.id, secret)
        settings = engines.settings
        if url is not None:
            settings = settings.model_copy(update={"public_url": url})
        return client_config.render(fmt, settings, auth, cloud)

    text = with_engines(config, data_dir, work)
    if output is None:
        typer.echo(text, nl=False)
        return
    descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as sink:
        sink.write(text)
    os.chmod(output, 0o600)  # an existing file keeps its mode through O_CREAT
    err.print(f"wrote {output}")


# -- configuration -------------------------------------------------------------------


@config_app.command("show")
def config_show(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Print the effective configuration (secrets masked)."""
    settings = settings_for(config, data_dir)
    shown = settings.model_dump(mode="json")
    shown["secret_key"] = "***"
    for provider in shown.get("oidc", []):
        provider["client_secret"] = "***"
    shown["database"] = settings.database
    out.print_json(json.dumps(shown))


def main() -> None:
    app()
