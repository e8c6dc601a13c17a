"""``nefos ganeti``: what runs on a Ganeti cluster's master for nefos.

``eventd`` is one process per cluster, beside the job queue, publishing job progress to
the deployment's bus (RabbitMQ: the API and the dispatcher run elsewhere). The bus URL
comes from ``--bus``, else from the deployment's settings (``NEFOS_BUS_URL``,
``--config``), like every other command; a URL with a password only from the settings,
since any local user can read a command line. ``install-os`` puts nefos's OS provider on a
node (every node of the cluster needs it); ``install-network`` its network data plane
(``nefos.nodenet``: the KVM ifup hook, the node's settings, the DHCP/RA responder);
``install-extstorage`` the ExtStorage provider of volumes (with ``nefos volumed`` running
on the node).
"""

from __future__ import annotations

import asyncio
import logging
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from nefos.backends.ganeti import osprovider
from nefos.backends.ganeti.eventd import QUEUE_DIR, open_bus, serve
from nefos.cli.common import ConfigFile, DataDir, fail, settings_for
from nefos.core.logging import configure_logging
from nefos.nodenet import install as node_install
from nefos.nodenet.nic import DEFAULT_CONFIG, NicError, NodeConfig
from nefos.volume import extstorage

ganeti_app = typer.Typer(
    help="Google Ganeti clusters: the daemons nefos runs on their master nodes.",
    no_args_is_help=True,
)


@ganeti_app.command("eventd")
def eventd(
    cluster: Annotated[
        str, typer.Option("--cluster", help="The backend's name in nefos (`nefos backend list`)")
    ],
    bus: Annotated[
        str | None,
        typer.Option(
            "--bus",
            help="Bus URL without a password, amqp://user@host/vhost; one with a password "
            "goes in NEFOS_BUS_URL or the configuration's bus_url [default: the settings']",
        ),
    ] = None,
    exchange: Annotated[
        str | None, typer.Option(help="AMQP exchange, if not the deployment's (nefos)")
    ] = None,
    queue_dir: Annotated[
        Path, typer.Option("--queue-dir", help="Ganeti's job queue directory")
    ] = QUEUE_DIR,
    replay_minutes: Annotated[
        float,
        typer.Option(help="On start, publish again jobs that finished this recently"),
    ] = 10.0,
    poll: Annotated[
        bool, typer.Option("--poll", help="Poll the queue every 0.2 s instead of inotify")
    ] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG logs every event published")] = "INFO",
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Publish the job progress of this cluster's snf- instances to the bus."""
    if bus is not None and urlsplit(bus).password is not None:
        raise fail(
            "--bus has a password, which every local user could read in the process "
            "list: give the URL in NEFOS_BUS_URL or the configuration's bus_url",
            code=2,
        )
    if bus is None:
        bus = settings_for(config, data_dir, local=False).bus_url  # a master: no data
    level = log_level.upper()
    configure_logging("INFO" if level == "DEBUG" else level, "text")  # not AMQP's frames
    logging.getLogger("nefos").setLevel(level)
    try:
        connection = open_bus(bus, exchange)
    except ValueError as exc:
        raise fail(str(exc), code=2) from None
    logging.getLogger("nefos.ganeti.eventd").info("publishing to %s", _safe(bus))
    try:
        asyncio.run(
            serve(
                connection,
                cluster,
                queue_dir,
                replay_seconds=replay_minutes * 60,
                use_inotify=not poll,
            )
        )
    except (OSError, ConnectionError) as exc:
        raise fail(f"eventd stopped: {exc}") from None


@ganeti_app.command("install-os")
def install_os(
    target: Annotated[
        Path, typer.Option("--target", help="A folder of Ganeti's OS search path")
    ] = osprovider.DEFAULT_TARGET,
    name: Annotated[
        str, typer.Option("--name", help="The OS name; backends then use NAME+default")
    ] = osprovider.DEFAULT_NAME,
) -> None:
    """Install nefos's OS provider on this node: it writes the server's image from nefos."""
    try:
        folder = osprovider.install(target, name)
    except (OSError, ValueError) as exc:
        raise fail(f"cannot install the OS provider: {exc}") from None
    typer.echo(f"installed {folder}; Ganeti offers it as {osprovider.os_type(name)}")


@ganeti_app.command("install-network")
def install_network(
    dns: Annotated[
        list[str] | None, typer.Option("--dns", help="IPv4 DNS server for DHCP (repeat)")
    ] = None,
    dns6: Annotated[
        list[str] | None,
        typer.Option("--dns6", help="IPv6 DNS server for RAs and DHCPv6 (repeat)"),
    ] = None,
    domain: Annotated[str, typer.Option(help="Search domain given to guests")] = "",
    node_config: Annotated[
        Path, typer.Option("--node-config", help="Where the node's settings go")
    ] = DEFAULT_CONFIG,
    state_dir: Annotated[
        Path, typer.Option("--state-dir", help="Bindings and locks")
    ] = NodeConfig.state_dir,
    ganeti_dir: Annotated[
        Path, typer.Option("--ganeti-dir", help="Ganeti's configuration directory")
    ] = node_install.GANETI_DIR,
    start: Annotated[
        bool, typer.Option("--start/--no-start", help="Start the responder if not running")
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a kvm-vif-bridge that is not nefos's")
    ] = False,
) -> None:
    """Install nefos's network data plane on this node: the KVM ifup hook, the node's
    settings and the DHCP/RA responder. Run it again to change them; it is idempotent."""
    try:
        settings = NodeConfig(
            state_dir=state_dir,
            dns=tuple(str(ip_address(a)) for a in dns or ()),
            dns6=tuple(str(ip_address(a)) for a in dns6 or ()),
            domain=domain,
        )
        done = node_install.install(settings, node_config, ganeti_dir, start=start, force=force)
    except ValueError as exc:
        raise fail(f"bad address: {exc}", code=2) from None
    except (OSError, NicError, node_install.InstallError) as exc:
        raise fail(f"cannot install the network data plane: {exc}") from None
    typer.echo(f"hook {done.hook}; settings {done.config}")
    typer.echo(
        f"responder: pid {done.responder_pid}" if done.responder_pid else "responder: not started"
    )
    typer.echo("changed: " + (", ".join(done.changed) if done.changed else "nothing"))


@ganeti_app.command("install-extstorage")
def install_extstorage(
    target: Annotated[
        Path, typer.Option("--target", help="A folder of Ganeti's ExtStorage search path")
    ] = extstorage.DEFAULT_TARGET,
    name: Annotated[str, typer.Option("--name", help="The provider's name")] = (
        extstorage.DEFAULT_NAME
    ),
    run_dir: Annotated[
        Path, typer.Option("--run-dir", help="The run directory of this node's `nefos volumed`")
    ] = extstorage.DEFAULT_RUN_DIR,
    socket_buffers: Annotated[
        bool,
        typer.Option(
            "--socket-buffers/--no-socket-buffers",
            help="Raise net.core.wmem_default to 4 MiB, now and at boot (sysctl.d), so "
            "QEMU's NBD writes reach volumed in one send",
        ),
    ] = True,
) -> None:
    """Install the `nefos` ExtStorage provider on this node (again: same result).

    Ganeti's `ext` disk template then gives QEMU volumes served by `nefos volumed`
    (disk parameters `provider=nefos`, `access=userspace`, `owner`, `origin`, `volume`).
    """
    try:
        folder = extstorage.install(target, name, run_dir)
        tuned = extstorage.tune_socket_buffers() if socket_buffers else []
    except (OSError, ValueError) as exc:
        raise fail(f"cannot install the ExtStorage provider: {exc}") from None
    typer.echo(f"installed {folder}; Ganeti offers it as the ext provider {name}")
    if tuned:
        typer.echo("tuned: " + ", ".join(tuned))


def _safe(url: str) -> str:
    """The URL without its password, for the log."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
