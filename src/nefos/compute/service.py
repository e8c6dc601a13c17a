"""Compute (Cyclades): one entry point for the APIs, the server wiring and the CLI.

:class:`Compute` builds compute's collaborators and hands their operations on under one
name; the work lives in the modules along compute's paths:

* ``clusters``: backend rows and their live clients, placement (spec §2.7);
* ``flavors``: the sizes a server may have;
* ``limits``: Nova's absolute limits, from the caller's quotas and the settings;
* ``views``: servers as the API shows them;
* ``servers``: the effect path (create, actions, delete, metadata, tags, consoles);
* ``events``: the update path (job events from the backends);
* ``transitions``: the one table of which state follows which job outcome, and the
  only code that moves a server's state;
* ``charges``: what a server holds of its project's quota;
* ``nics``: servers' NICs: NIC changes become jobs, the interface, floating IP and
  firewall profile actions;
* ``volumes``: servers' volumes: attach and detach as disk jobs, and what a job's
  event or a server's removal does to them;
* ``backend_networks``: networks made on a backend when its servers need them, removed
  when unused;
* ``reconcile``: the periodic pass that makes the database agree with the backends.
"""

from __future__ import annotations

from nefos.backends.embedded import EmbeddedCluster
from nefos.compute.backend_networks import BackendNetworks
from nefos.compute.charges import CLIENTKEY
from nefos.compute.checks import MAX_PERSONALITY, MAX_PERSONALITY_SIZE
from nefos.compute.clusters import Clusters, EmbeddedFactory
from nefos.compute.console import ConsoleProxy
from nefos.compute.events import Events
from nefos.compute.flavors import Flavors
from nefos.compute.keypairs import Keypairs
from nefos.compute.limits import Limits
from nefos.compute.nics import ServerNics
from nefos.compute.servers import Servers
from nefos.compute.views import ServerReader, ServerView
from nefos.compute.vmapi import VmApi
from nefos.compute.volumes import ServerVolumes
from nefos.core.bus import Bus
from nefos.core.config import Settings
from nefos.core.db import Database
from nefos.images.service import Images
from nefos.network.service import NetworkService
from nefos.quotas.service import Quotas
from nefos.volume.service import Volumes

__all__ = ["CLIENTKEY", "MAX_PERSONALITY", "MAX_PERSONALITY_SIZE", "Compute", "ServerView"]


class Compute:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        bus: Bus,
        quotas: Quotas,
        images: Images,
        keypairs: Keypairs | None = None,
        embedded: EmbeddedFactory = EmbeddedCluster,
        network: NetworkService | None = None,
        volumes: Volumes | None = None,
    ):
        """``embedded`` builds the simulated cluster of an ``embedded`` backend row (tests
        pass a subclass that injects faults); ``network`` is the deployment's networking,
        which then tells this compute of NIC changes; ``volumes`` the deployment's volumes,
        which servers attach."""
        self.db = db
        self.settings = settings
        self.bus = bus
        self.quotas = quotas
        self.images = images
        self.keypairs = keypairs or Keypairs(db, settings.compute.max_keypairs)
        self.vmapi = VmApi(db, settings, images.storage)
        self.consoles = ConsoleProxy.from_settings(settings.compute)
        self.clusters = Clusters(db, settings, bus, embedded)
        self._clusters = self.clusters.live  # the live clients, by backend name
        self.catalog = Flavors(db)
        self.quota_limits = Limits(settings, quotas)
        self.network = network or NetworkService(db, settings, quotas)
        self.nics = self.network.nics
        self.reader = ServerReader(db, self.nics)
        self.backend_networks = BackendNetworks(db, self.clusters)
        self.volumes = volumes or Volumes(
            db, settings, images.storage.store, images.storage, images, quotas
        )
        self.server_volumes = ServerVolumes(
            db, self.clusters, self.reader, self.volumes, settings.compute.volume_provider
        )
        self.effect_path = Servers(
            db, settings, quotas, images, self.keypairs, self.vmapi, self.consoles,
            self.clusters, self.catalog, self.reader, self.nics, self.backend_networks,
            self.server_volumes,
        )  # fmt: skip
        self.update_path = Events(
            db, quotas, self.vmapi, self.nics, self.backend_networks, self.server_volumes
        )
        self.server_nics = ServerNics(
            db, self.network, self.clusters, self.reader, self.backend_networks
        )
        self.nics.devices = self.server_nics

        # Backends (nefos backend ...).
        self.cluster = self.clusters.cluster
        self.add_backend = self.clusters.add_backend
        self.seal_backend_passwords = self.clusters.seal_backend_passwords
        self.refresh_backend = self.clusters.refresh_backend
        self.backend = self.clusters.backend
        self.backends = self.clusters.backends
        self.set_drained = self.clusters.set_drained
        self.remove_backend = self.clusters.remove_backend
        self.ensure_embedded = self.clusters.ensure_embedded
        # Flavors.
        self.create_flavor = self.catalog.create_flavor
        self.ensure_default_flavors = self.catalog.ensure_default_flavors
        self.flavors = self.catalog.flavors
        self.flavor_listing = self.catalog.listing
        self.shown_flavor = self.catalog.shown
        self.flavor = self.catalog.flavor
        self.delete_flavor = self.catalog.delete_flavor
        # Nova's limits.
        self.limits = self.quota_limits.limits
        # Reading servers.
        self.server = self.reader.server
        self.servers = self.reader.servers
        self.listing = self.reader.listing
        self.count = self.reader.count
        self.jobs = self.reader.jobs
        # The effect path.
        self.create_server = self.effect_path.create_server
        self.create_servers = self.effect_path.create_servers
        self.start = self.effect_path.start
        self.shutdown = self.effect_path.shutdown
        self.reboot = self.effect_path.reboot
        self.resize = self.effect_path.resize
        self.delete_server = self.effect_path.delete_server
        self.rename = self.effect_path.rename
        self.set_metadata = self.effect_path.set_metadata
        self.delete_metadata = self.effect_path.delete_metadata
        self.set_tags = self.effect_path.set_tags
        self.add_tag = self.effect_path.add_tag
        self.delete_tags = self.effect_path.delete_tags
        self.reassign = self.effect_path.reassign
        self.console = self.effect_path.console
        # NICs.
        self.interfaces = self.server_nics.interfaces
        self.attach_interface = self.server_nics.attach_interface
        self.detach_interface = self.server_nics.detach_interface
        self.add_floating_ip = self.server_nics.add_floating_ip
        self.remove_floating_ip = self.server_nics.remove_floating_ip
        self.set_firewall = self.server_nics.set_firewall
        # Volumes.
        self.volume_attachments = self.server_volumes.attachments
        self.volume_attachment = self.server_volumes.attachment
        self.attach_volume = self.server_volumes.attach
        self.detach_volume = self.server_volumes.detach
        self.create_image = self.server_volumes.create_image
        # The update path.
        self.apply_event = self.update_path.apply_event

    async def close(self) -> None:
        await self.consoles.close()
        await self.clusters.close()
