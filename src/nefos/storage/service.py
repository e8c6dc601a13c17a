"""The storage namespace (Pithos backend): containers, objects, versions, over a block store.

``Namespace`` is the one object callers hold. It does no work of its own: it builds the
parts below, each a class with its own module and constructor, and offers their
operations under one name. The parts hold one another explicitly, never by inheritance:

- ``containers`` (``nefos.storage.containers.Containers``): containers and accounts;
- ``reader`` (``nefos.storage.reads.Reader``): a version, its metadata and its bytes;
- ``lister`` (``nefos.storage.listings.Lister``): a container's objects, a page at a time;
- ``permissions`` (``nefos.storage.permissions.Permissions``): sharing and public links;
- ``commits`` (``nefos.storage.commits.Commits``): the one transaction every write ends
  in, with its quota;
- ``writer`` (``nefos.storage.writes.Writer``): new versions (data, copies, moves,
  metadata, deletes);
- ``trees`` (``nefos.storage.trees.Trees``): copies, moves and deletes of everything
  below a name, any number of objects;
- ``account_lister`` (``nefos.storage.accounts.AccountLister``): an account's
  container listing as a caller sees it;
- ``large`` (``nefos.storage.large.LargeObjects``): static large objects' segments,
  the caller's rights on them, and a manifest's delete with its segments;
- ``bodies`` (``nefos.storage.bodies.Bodies``): what a read or a copy takes, a large
  object's segments resolved as the caller;
- ``copier`` (``nefos.storage.copies.Copier``): a copy or move of an object or a tree,
  as the caller asks it;
- ``updater`` (``nefos.storage.updates.Updater``): an object's POST (metadata, data in
  place, sharing) as the caller asks it;
- ``manifests`` (``nefos.storage.manifests.Manifests``): a static large object's
  manifest, checked as the caller and stored;
- ``putter`` (``nefos.storage.puts.Putter``): an object's PUT (data, hashmap, manifest,
  copy or move) with its conditions and sharing, as the caller asks it;
- ``deleter`` (``nefos.storage.deletes.Deleter``): an object's DELETE (the object, its
  tree, an SLO with its segments, its history) as the caller asks it;
- ``browser`` (``nefos.storage.browsing.Browser``): a container and a page of its
  objects as a caller sees them;
- ``bulk`` (``nefos.storage.bulk.BulkDeleter``): Swift's bulk delete of many paths;
- ``maintenance`` (``nefos.storage.maintenance.Maintenance``): expiry and purges.

The lookups they share are functions in ``nefos.storage.nodes``; the records and checks
(``nefos.storage.records``) are imported from here too, as they always were.

Each operation is bound once, when the namespace is built, to the part that does it:
a request calls the part's method directly, with no forwarding call in between (the
small-object paths are tuned to the statement, ``docs/architecture.md``).

Every operation raises domain errors only: InvalidInput (names, metadata, hashmaps),
NotFound, PermissionDenied (tree operations, as the caller), Conflict (non-empty
container, missing blocks with ``data["missing"]``), OverQuota.
"""

from __future__ import annotations

from nefos.core.config import Settings
from nefos.core.db import Database
from nefos.quotas.service import Quotas
from nefos.storage.accounts import AccountLister
from nefos.storage.bodies import Bodies
from nefos.storage.browsing import Browser
from nefos.storage.bulk import BulkDeleter
from nefos.storage.commits import Commits
from nefos.storage.containers import Containers
from nefos.storage.copies import Copier
from nefos.storage.deletes import Deleter
from nefos.storage.large import LargeObjects
from nefos.storage.listings import Lister
from nefos.storage.maintenance import Maintenance
from nefos.storage.manifests import Manifests
from nefos.storage.permissions import Permissions
from nefos.storage.puts import Putter
from nefos.storage.reads import Reader
from nefos.storage.records import (
    DELETE_AT,
    VERSION_FIELDS,
    AccountInfo,
    ContainerInfo,
    ObjectRecord,
    ObjectSharing,
    Subdir,
    check_account,
    check_container_name,
    check_meta,
    check_object_name,
    check_type,
    expired,
)
from nefos.storage.stores import BlockStore
from nefos.storage.trees import Trees
from nefos.storage.updates import Updater
from nefos.storage.writes import Writer

__all__ = [
    "DELETE_AT",
    "VERSION_FIELDS",
    "AccountInfo",
    "ContainerInfo",
    "Namespace",
    "ObjectRecord",
    "ObjectSharing",
    "Subdir",
    "check_account",
    "check_container_name",
    "check_meta",
    "check_object_name",
    "check_type",
    "expired",
]


class Namespace:
    """Containers, objects and their versions, sharing and quota, of every account:
    the parts the module docstring lists, and their operations under one name."""

    def __init__(self, db: Database, settings: Settings, store: BlockStore, quotas: Quotas):
        self.db = db
        self.settings = settings
        self.store = store
        self.quotas = quotas
        self.containers = containers = Containers(db, quotas)
        self.reader = reader = Reader(db, store)
        self.lister = lister = Lister(db)
        self.permissions = permissions = Permissions(db, reader, containers)
        self.commits = commits = Commits(db, quotas)
        self.writer = writer = Writer(db, settings, store, quotas, reader, commits, permissions)
        self.trees = trees = Trees(reader, lister, writer, permissions)
        self.maintenance = maintenance = Maintenance(db, commits)
        self.bulk = bulk = BulkDeleter(containers, writer)
        self.browser = browser = Browser(containers, lister, permissions)
        self.large = large = LargeObjects(settings, reader, writer, permissions)
        self.bodies = bodies = Bodies(settings, reader, lister, large)
        self.copier = copier = Copier(reader, writer, trees, permissions, bodies)
        self.updater = updater = Updater(reader, writer, permissions)
        self.manifests = manifests = Manifests(settings, reader, writer, permissions)
        self.putter = putter = Putter(reader, writer, permissions, manifests, copier)
        self.deleter = deleter = Deleter(reader, writer, trees, permissions, large, maintenance)
        self.account_lister = account_lister = AccountLister(db, containers, permissions)

        # containers and accounts
        self.create_container = containers.create_container
        self.delete_container = containers.delete_container
        self.list_containers = containers.list_containers
        self.container = containers.container
        self.account = containers.account
        self.set_account_meta = containers.set_account_meta
        self.set_container_meta = containers.set_container_meta
        self.list_account = account_lister.list_account
        self.view_container = browser.view_container
        self.browse = browser.browse
        # reading objects
        self.get_object = reader.get_object
        self.hashmap = reader.hashmap
        self.read = reader.read
        self.read_map = reader.read_map
        self.body = bodies.body
        self.read_body = bodies.read
        self.versions = reader.versions
        self.domain_meta = reader.domain_meta
        self.find_uuid = reader.find_uuid
        self.with_domain_key = reader.with_domain_key
        # listing
        self.list_objects = lister.list_objects
        self.object_meta_keys = lister.object_meta_keys
        self.version_attributes = lister.version_attributes
        # sharing and public links
        self.get_object_shared = permissions.get_object_shared
        self.sharing = permissions.sharing
        self.set_sharing = permissions.set_sharing
        self.share = permissions.share
        self.access = permissions.access
        self.shared_with = permissions.shared_with
        self.visible_containers = permissions.visible_containers
        self.readable_filter = permissions.readable_filter
        self.shared_names = permissions.shared_names
        self.public_token = permissions.public_token
        self.set_public = permissions.set_public
        self.public_names = permissions.public_names
        self.resolve_public = permissions.resolve_public
        # writing objects
        self.check_growth = commits.check_growth
        self.put_object = writer.put_object
        self.put_hashmap = writer.put_hashmap
        self.had_blocks = writer.had_blocks
        self.upload_blocks = writer.upload_blocks
        self.delete_object = writer.delete_object
        self.copy_object = writer.copy_object
        self.move_object = writer.move_object
        self.set_domain = writer.set_domain
        self.update_meta = writer.update_meta
        self.update_data = writer.update_data
        self.update = updater.update
        self.put = putter.put
        self.delete = deleter.delete
        self.copy = copier.copy
        # trees of objects
        self.copy_tree = trees.copy_tree
        self.delete_tree = trees.delete_tree
        self.empty_container = trees.empty_container
        self.bulk_delete = bulk.bulk_delete
        self.delete_slo = large.delete_slo
        # housekeeping
        self.expire = maintenance.expire
        self.purge = maintenance.purge
