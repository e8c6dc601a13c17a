"""Identity domain logic (Astakos): users, login identities, projects in tokens, tokens.

Every state change is one method, one transaction. Nothing here speaks HTTP: the
Keystone and account APIs, the web login and the ``nefos user`` commands all call this.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.auth import Credentials
from nefos.core.config import Settings
from nefos.core.db import Database, utcnow
from nefos.core.numbers import ascii_uuid
from nefos.identity import signup_rules
from nefos.identity.catalog import Catalog
from nefos.identity.models import AuthIdentity, Feedback, Project, Token, User
from nefos.identity.rules import load_delegation
from nefos.identity.throttle import LoginThrottle, account_key, address_key

API_TOKEN = "api"
SESSION_TOKEN = "session"
# A web login's session: its id lives in the browser's signed cookie, its digest here,
# so logging out ends it on the server. Never valid as an API token.
WEB_SESSION = "web"
LOCAL = "local"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_hasher = PasswordHasher()


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """32 random bytes, URL-safe base64 without padding, as Synnefo's tokens."""
    return secrets.token_urlsafe(32)


def system_project_name(user_id: uuid.UUID) -> str:
    return f"system:{user_id}"


def parse_uuid(value: str) -> uuid.UUID | None:
    return ascii_uuid(value)


class CredentialCache:
    """Recently validated tokens, so a busy API does not ask the database every request.

    An entry lives ``ttl`` seconds. Changes made through this process (revoke, renewal,
    deactivation) drop entries at once; changes made elsewhere (another worker, the
    ``nefos`` command) are seen within ``ttl``, as with Keystone's middleware cache.
    Expiry is checked on every hit.
    """

    def __init__(self, ttl: float, max_entries: int = 100_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Credentials]] = {}

    def get(self, token_digest: str) -> Credentials | None:
        entry = self._entries.get(token_digest)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self.ttl:
            del self._entries[token_digest]
            return None
        return entry[1]

    def put(self, credentials: Credentials) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # rare; cheaper than tracking order on every hit
        self._entries[credentials.token_digest] = (time.monotonic(), credentials)

    def drop(self, token_digest: str) -> None:
        self._entries.pop(token_digest, None)

    def drop_user(self, user_id: uuid.UUID) -> None:
        for key in [k for k, (_, c) in self._entries.items() if c.user_id == user_id]:
            del self._entries[key]


@dataclass(frozen=True)
class IssuedToken:
    token: str
    record: Token


class Identity:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        key = hashlib.sha256(f"nefos-api-token:{settings.secret_key}".encode()).digest()
        self._sealer = Fernet(base64.urlsafe_b64encode(key))
        self.cache = CredentialCache(settings.token_cache_seconds)
        self._lookups: dict[str, asyncio.Future[Credentials]] = {}
        self.catalog = Catalog(settings)
        self.throttle = LoginThrottle(db, settings.login_throttle)
        self._dummy_hash: str | None = None
        # Run inside the transaction that creates a user (the quotas give it holdings);
        # identity need not know who listens.
        self.user_created: list[Callable[[AsyncSession, uuid.UUID], Awaitable[None]]] = []
        # The projects a user is a member of, besides their system project (set by the
        # projects service, which owns memberships).
        self.member_projects: Callable[[uuid.UUID], Awaitable[list[uuid.UUID]]] = _no_projects

    # -- users ----------------------------------------------------------------------

    def check_email(self, email: str) -> str:
        email = email.strip().lower()
        if len(email) > 254 or not _EMAIL.match(email):
            raise errors.InvalidInput(f"Invalid e-mail address: {email[:254]!r}")
        return email

    def _check_password(self, password: str) -> None:
        if not password or len(password) > self.settings.limits.password_length:
            raise errors.InvalidInput(
                f"A password must have 1 to {self.settings.limits.password_length} characters"
            )

    async def create_user(
        self,
        email: str,
        password: str | None = None,
        display_name: str = "",
        admin: bool = False,
        active: bool = True,
        verified: bool = False,
        identity: tuple[str, str, dict[str, object]] | None = None,
        signup_state: str | None = None,
        terms_version: str | None = None,
        also: Callable[[AsyncSession, User], None] | None = None,
    ) -> tuple[User, str]:
        """Create a user with a system project and an API token, which is returned.

        ``also`` adds rows of its own in the same transaction (sign-up's verification
        token), so the user and what it needs exist together or not at all."""
        email = self.check_email(email)
        if password is not None:
            self._check_password(password)
        if len(display_name) > self.settings.limits.name_length:
            raise errors.InvalidInput("Display name too long")
        password_hash = await hash_secret(password) if password is not None else None
        user = User(
            id=uuid.uuid4(),
            email=email,
            display_name=display_name or email,
            password_hash=password_hash,
            is_active=active,
            is_verified=verified,
            is_admin=admin,
            signup_state=signup_state,
            terms_version=terms_version,
            terms_accepted_at=utcnow() if terms_version is not None else None,
        )
        try:
            async with self.db.transaction() as s:
                s.add(user)
                await s.flush()
                s.add(
                    Project(
                        id=user.id,
                        name=system_project_name(user.id),
                        owner_id=user.id,
                        is_system=True,
                        description=f"System project of {email}",
                        join_policy="closed",
                        leave_policy="closed",
                        max_members=1,
                        private=True,
                    )
                )
                if password is not None:
                    s.add(AuthIdentity(user_id=user.id, provider=LOCAL, identifier=email, info={}))
                if identity is not None:
                    provider, identifier, info = identity
                    s.add(
                        AuthIdentity(
                            user_id=user.id, provider=provider, identifier=identifier, info=info
                        )
                    )
                await s.flush()
                for hook in self.user_created:
                    await hook(s, user.id)
                if also is not None:
                    also(s, user)
                issued = self.add_token(s, user.id, user.id, API_TOKEN, ("token",))
        except IntegrityError as exc:
            raise errors.Conflict(f"A user with e-mail {email} already exists") from exc
        return user, issued.token

    async def get_user(self, ref: str | uuid.UUID) -> User:
        """A user by UUID or e-mail."""
        async with self.db.session() as s:
            return await self.find_user(s, ref)

    async def find_user(self, s: AsyncSession, ref: str | uuid.UUID) -> User:
        user_id = ref if isinstance(ref, uuid.UUID) else parse_uuid(ref)
        user = None
        if user_id is not None:
            user = await s.get(User, user_id)
        elif "\0" not in str(ref):  # no address holds one (and PostgreSQL cannot compare it)
            user = await s.scalar(select(User).where(User.email == str(ref).strip().lower()))
        if user is None:
            raise errors.NotFound(f"No user {ref}")
        return user

    async def list_users(self) -> list[User]:
        async with self.db.session() as s:
            return list(await s.scalars(select(User).order_by(User.created_at, User.email)))

    async def set_active(self, ref: str, active: bool) -> User:
        async with self.db.transaction() as s:
            user = await self.find_user(s, ref)
            user.is_active = active
        self.cache.drop_user(user.id)
        return user

    async def set_password(self, ref: str, password: str) -> User:
        """Set the local password, enabling the ``local`` login for this user."""
        self._check_password(password)
        password_hash = await hash_secret(password)
        async with self.db.transaction() as s:
            user = await self.find_user(s, ref)
            user.password_hash = password_hash
            linked = await s.scalar(
                select(AuthIdentity).where(
                    AuthIdentity.user_id == user.id, AuthIdentity.provider == LOCAL
                )
            )
            if linked is None:
                s.add(AuthIdentity(user_id=user.id, provider=LOCAL, identifier=user.email, info={}))
        return user

    # -- login identities -----------------------------------------------------------

    async def link(
        self,
        ref: str | uuid.UUID,
        provider: str,
        identifier: str,
        info: dict[str, object] | None = None,
    ) -> AuthIdentity:
        """Let ``provider``'s ``identifier`` log in as this user (one user, many logins)."""
        if not provider or not identifier or len(identifier) > 255:
            raise errors.InvalidInput("A login needs a provider and an identifier (≤ 255 chars)")
        try:
            async with self.db.transaction() as s:
                user = await self.find_user(s, ref)
                linked = AuthIdentity(
                    user_id=user.id, provider=provider, identifier=identifier, info=info or {}
                )
                s.add(linked)
                await s.flush()
        except IntegrityError as exc:
            raise errors.Conflict(
                f"The {provider} login {identifier} is already linked to a user"
            ) from exc
        return linked

    async def identities(self, user_id: uuid.UUID) -> list[AuthIdentity]:
        async with self.db.session() as s:
            query = select(AuthIdentity).where(AuthIdentity.user_id == user_id)
            return list(await s.scalars(query.order_by(AuthIdentity.id)))

    async def external_login(
        self, provider: str, identifier: str, email: str, display_name: str
    ) -> User:
        """The user an external login belongs to; a first login signs the user up."""
        async with self.db.session() as s:
            linked = await s.scalar(
                select(AuthIdentity).where(
                    AuthIdentity.provider == provider, AuthIdentity.identifier == identifier
                )
            )
            if linked is not None:
                user = await s.get(User, linked.user_id)
                assert user is not None  # foreign key
                self._require_active(user)
                return user
        if not email:
            raise errors.InvalidInput(f"The {provider} login gave no e-mail address")
        auto = self.settings.signup_auto_activate
        user, _ = await self.create_user(
            email,
            display_name=display_name,
            active=auto,
            verified=True,
            signup_state=None if auto else signup_rules.PENDING,  # in the moderation list
            identity=(provider, identifier, {"email": email, "name": display_name}),
        )
        self._require_active(user)
        return user

    def _require_active(self, user: User) -> None:
        if not user.is_active:
            raise errors.NotAuthenticated(
                signup_rules.NOT_ACTIVE.get(
                    user.signup_state, f"The account {user.email} is not active"
                )
            )

    # -- tokens ---------------------------------------------------------------------

    def add_token(
        self,
        s: AsyncSession,
        user_id: uuid.UUID,
        project_id: uuid.UUID,
        kind: str,
        methods: Iterable[str],
        lifetime: dt.timedelta | None = None,
        application_credential_id: uuid.UUID | None = None,
    ) -> IssuedToken:
        if lifetime is None:
            lifetime = (
                dt.timedelta(days=self.settings.token_lifetime_days)
                if kind == API_TOKEN
                else dt.timedelta(hours=self.settings.session_token_hours)
            )
        token = new_token()
        now = utcnow()
        record = Token(
            digest=digest(token),
            user_id=user_id,
            project_id=project_id,
            kind=kind,
            methods=",".join(methods),
            audit_id=secrets.token_urlsafe(16)[:22],
            created_at=now,
            expires_at=now + lifetime,
            sealed=self._sealer.encrypt(token.encode()).decode() if kind == API_TOKEN else None,
            application_credential_id=application_credential_id,
        )
        s.add(record)
        return IssuedToken(token, record)

    async def issue_token(
        self,
        user: User,
        project: Project | None = None,
        methods: Iterable[str] = ("token",),
        lifetime: dt.timedelta | None = None,
        application_credential_id: uuid.UUID | None = None,
    ) -> IssuedToken:
        """A new session token; the user's other tokens stay valid. One got with an
        application credential carries it, and ends with it."""
        self._require_active(user)
        async with self.db.transaction() as s:
            project_id = project.id if project is not None else user.system_project_id
            return self.add_token(
                s, user.id, project_id, SESSION_TOKEN, methods, lifetime, application_credential_id
            )

    async def renew_api_token(self, ref: str | uuid.UUID) -> str:
        """Replace the user's API token: the old one stops working at once."""
        async with self.db.transaction() as s:
            user = await self.find_user(s, ref)
            await s.execute(delete(Token).where(Token.user_id == user.id, Token.kind == API_TOKEN))
            issued = self.add_token(s, user.id, user.system_project_id, API_TOKEN, ("token",))
        self.cache.drop_user(user.id)
        return issued.token

    async def api_token(self, ref: str | uuid.UUID) -> tuple[str | None, Token | None]:
        """The user's current API token, if it can be unsealed with this deployment's key."""
        async with self.db.session() as s:
            user = await self.find_user(s, ref)
            record = await s.scalar(
                select(Token).where(Token.user_id == user.id, Token.kind == API_TOKEN)
            )
        if record is None or record.sealed is None:
            return None, record
        try:
            return self._sealer.decrypt(record.sealed.encode()).decode(), record
        except InvalidToken:
            return None, record

    async def revoke(self, token: str) -> None:
        token_digest = digest(token)
        async with self.db.transaction() as s:
            result = await s.execute(delete(Token).where(Token.digest == token_digest))
        self.cache.drop(token_digest)
        if result.rowcount == 0:
            raise errors.NotFound("No such token")

    async def authenticate(self, token: str) -> Credentials:
        """The credentials a token grants now; NotAuthenticated if none."""
        if len(token) > 256:
            raise errors.NotAuthenticated("Invalid token")
        token_digest = digest(token)
        cached = self.cache.get(token_digest)
        if cached is not None:
            if cached.expires_at <= utcnow():
                self.cache.drop(token_digest)
                raise errors.NotAuthenticated("Token expired")
            return cached
        # When a busy token's cache entry lapses, every request in flight with it misses
        # at once: they share one lookup instead of each asking the database.
        lookup = self._lookups.get(token_digest)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up(token_digest))
            self._lookups[token_digest] = lookup
            lookup.add_done_callback(lambda done: self._looked_up(token_digest, done))
        return await asyncio.shield(lookup)

    def _looked_up(self, token_digest: str, done: asyncio.Future[Credentials]) -> None:
        self._lookups.pop(token_digest, None)
        if not done.cancelled():
            done.exception()  # retrieved, should every waiter have gone

    async def _look_up(self, token_digest: str) -> Credentials:
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(
                        Token.digest,
                        Token.project_id,
                        Project.name.label("project_name"),
                        Token.methods,
                        Token.audit_id,
                        Token.created_at,
                        Token.expires_at,
                        Token.application_credential_id,
                        User.id,
                        User.email,
                        User.display_name,
                        User.is_admin,
                        User.is_active,
                    )
                    .join(User, User.id == Token.user_id)
                    .join(Project, Project.id == Token.project_id)
                    .where(Token.digest == token_digest, Token.kind != WEB_SESSION)
                )
            ).one_or_none()
            delegation = None
            if row is not None and row.application_credential_id is not None:
                delegation = await load_delegation(s, row.application_credential_id)
        if row is None or (row.application_credential_id is not None and delegation is None):
            raise errors.NotAuthenticated("Invalid token")
        if row.expires_at <= utcnow():
            raise errors.NotAuthenticated("Token expired")
        if not row.is_active:
            raise errors.NotAuthenticated(f"The account {row.email} is not active")
        credentials = Credentials(
            user_id=row.id,
            email=row.email,
            display_name=row.display_name,
            # An application credential without the admin role makes no admin token.
            is_admin=row.is_admin and (delegation is None or "admin" in delegation.roles),
            project_id=row.project_id,
            project_name=row.project_name,
            token_digest=row.digest,
            methods=tuple(row.methods.split(",")),
            audit_id=row.audit_id,
            issued_at=row.created_at,
            expires_at=row.expires_at,
            delegation=delegation,
        )
        self.cache.put(credentials)
        return credentials

    async def password_login(self, ref: str | uuid.UUID, password: str, address: str = "") -> User:
        """Check a user's password; Synnefo also takes the user's API token as one.

        Every wrong password costs one argon2 verification, whether the user exists,
        has a password or not, so the time taken tells no one which e-mails have an
        account. Attempts are throttled per account and per client ``address``
        (``nefos.identity.throttle``); commands that act for the operator pass none.
        """
        failure = errors.NotAuthenticated("The user name or password is wrong")
        if not password or len(password) > self.settings.limits.password_length:
            raise failure
        async with self.db.session() as s:
            try:
                user: User | None = await self.find_user(s, ref)
            except errors.NotFound:
                user = None
            token = await s.get(Token, digest(password))
        account = account_key(str(user.id) if user is not None else str(ref))
        address = address_key(address)
        await self.throttle.attempt(account, address)
        if (
            user is not None
            and token is not None
            and token.user_id == user.id
            and token.kind != WEB_SESSION
            and token.application_credential_id is None  # would shed its restrictions
            and token.expires_at > utcnow()
        ):
            right = True
        else:
            stored = user.password_hash if user is not None else None
            right = (
                await verify_secret(stored or await self.dummy_hash(), password)
                and stored is not None
            )
        if user is None or not right:
            raise failure
        await self.throttle.succeeded(account, address)
        self._require_active(user)
        return user

    async def dummy_hash(self) -> str:
        """A hash of a random password, made with this deployment's hasher parameters,
        to verify against when there is no user or no password: as slow as a real one."""
        if self._dummy_hash is None:
            self._dummy_hash = await hash_secret(secrets.token_urlsafe(32))
        return self._dummy_hash

    # -- web sessions -----------------------------------------------------------------

    async def start_web_session(self, user: User) -> str:
        """A new web session for ``user`` (``session_token_hours`` long); its id."""
        self._require_active(user)
        async with self.db.transaction() as s:
            return self.add_token(s, user.id, user.id, WEB_SESSION, ("web",)).token

    async def web_session_user(self, session: str) -> User | None:
        """The active user of a web session that has not ended, else ``None``."""
        if not session or len(session) > 256:
            return None
        async with self.db.session() as s:
            record = await s.get(Token, digest(session))
            if record is None or record.kind != WEB_SESSION or record.expires_at <= utcnow():
                return None
            user = await s.get(User, record.user_id)
        return user if user is not None and user.is_active else None

    async def end_web_session(self, session: str) -> None:
        """Log out: the session's id opens nothing from now on, wherever it was copied."""
        async with self.db.transaction() as s:
            await s.execute(
                delete(Token).where(Token.digest == digest(session), Token.kind == WEB_SESSION)
            )

    # -- projects in tokens ---------------------------------------------------------

    async def scope_project(
        self, user: User, project_id: str | None = None, project_name: str | None = None
    ) -> Project:
        """The project a token for ``user`` may be scoped to.

        Default: the user's system project, which may also be named by the user's
        e-mail for clients that ask for a project by name.
        """
        async with self.db.session() as s:
            if project_id is not None:
                wanted = parse_uuid(project_id)
                project = await s.get(Project, wanted) if wanted else None
            elif project_name is not None:
                if project_name.strip().lower() == user.email:
                    project = await s.get(Project, user.system_project_id)
                else:
                    project = await s.scalar(select(Project).where(Project.name == project_name))
            else:
                project = await s.get(Project, user.system_project_id)
        if project is None or not await self._may_use(user.id, project.id):
            raise errors.NotAuthenticated(
                f"User {user.id} has no access to project {project_id or project_name}"
            )
        return project

    async def _may_use(self, user_id: uuid.UUID, project_id: uuid.UUID) -> bool:
        return project_id == user_id or project_id in await self.member_projects(user_id)

    async def projects_of(self, user_id: uuid.UUID) -> list[Project]:
        """The projects a user may scope tokens to: their system project, then those
        they are a member of."""
        wanted = [user_id, *await self.member_projects(user_id)]
        async with self.db.session() as s:
            found = {
                p.id: p for p in await s.scalars(select(Project).where(Project.id.in_(wanted)))
            }
        return [found[p] for p in wanted if p in found]

    async def list_projects(
        self, name: str | None = None, enabled: bool | None = None, limit: int | None = None
    ) -> tuple[list[Project], bool]:
        """Every project an admin may scope to or grant quota on, and whether the list
        was cut at ``limit`` (Keystone's ``truncated``). Applications not yet approved
        and deleted projects are no Keystone projects."""
        limit = self._list_limit(limit)
        query = select(Project).where(Project.state.not_in(("uninitialized", "deleted")))
        if name is not None:
            query = query.where(Project.name == name)
        if enabled is not None:
            active = Project.state == "active"
            query = query.where(active if enabled else ~active)
        async with self.db.session() as s:
            rows = list(
                await s.scalars(query.order_by(Project.created_at, Project.id).limit(limit + 1))
            )
        return rows[:limit], len(rows) > limit

    async def find_users(
        self, email: str | None = None, enabled: bool | None = None, limit: int | None = None
    ) -> tuple[list[User], bool]:
        """Users for an admin's listing, by e-mail if given, and whether the list was cut."""
        limit = self._list_limit(limit)
        query = select(User)
        if email is not None:
            query = query.where(User.email == email.strip().lower())
        if enabled is not None:
            query = query.where(User.is_active == enabled)
        async with self.db.session() as s:
            rows = list(await s.scalars(query.order_by(User.created_at, User.id).limit(limit + 1)))
        return rows[:limit], len(rows) > limit

    def _list_limit(self, limit: int | None) -> int:
        """A listing never reads more rows than the setting allows, whatever the caller
        asks."""
        most = self.settings.limits.identity_list
        return most if limit is None else max(1, min(limit, most))

    async def get_project(self, project_id: uuid.UUID) -> Project:
        async with self.db.session() as s:
            project = await s.get(Project, project_id)
        if project is None:
            raise errors.NotFound(f"No project {project_id}")
        return project

    # -- account API ----------------------------------------------------------------

    async def user_catalogs(
        self, uuids: list[str] | None, names: list[str] | None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """uuid → display name and display name → uuid; ``None`` lists everyone."""
        async with self.db.session() as s:
            by_id: dict[str, str] = {}
            by_name: dict[str, str] = {}
            wanted_ids = [u for u in (parse_uuid(x) for x in uuids or []) if u is not None]
            if uuids is None and names is None:
                rows = await s.execute(select(User.id, User.email))
                for user_id, email in rows:
                    by_id[str(user_id)] = email
                    by_name[email] = str(user_id)
                return by_id, by_name
            if wanted_ids:
                rows = await s.execute(select(User.id, User.email).where(User.id.in_(wanted_ids)))
                by_id = {str(user_id): email for user_id, email in rows}
            if names:
                lowered = [n.strip().lower() for n in names]
                rows = await s.execute(
                    select(User.id, User.email).where(
                        or_(User.email.in_(lowered), User.email.in_(names))
                    )
                )
                by_name = {email: str(user_id) for user_id, email in rows}
        return by_id, by_name

    async def add_feedback(self, user_id: uuid.UUID, message: str, data: str) -> None:
        if not message.strip():
            raise errors.InvalidInput("feedback_msg is empty")
        if "\0" in message or "\0" in data:
            raise errors.InvalidInput("Feedback may not contain NUL")
        if len(message) > 4096 or len(data) > 65536:
            raise errors.TooLarge("Feedback message or data too long")
        async with self.db.transaction() as s:
            s.add(Feedback(user_id=user_id, message=message, data=data))

    # -- deployment -----------------------------------------------------------------

    async def ensure_admin(self) -> tuple[User, str, str] | None:
        """Create the first admin on a new deployment; return it with password and token."""
        async with self.db.session() as s:
            if await s.scalar(select(User.id).where(User.is_admin.is_(True)).limit(1)):
                return None
        password = secrets.token_urlsafe(12)
        try:
            user, token = await self.create_user(
                self.settings.admin_email,
                password=password,
                display_name="Administrator",
                admin=True,
                verified=True,
            )
        except errors.Conflict:
            return None  # another process created it first
        return user, password, token


async def _no_projects(user_id: uuid.UUID) -> list[uuid.UUID]:
    return []


async def hash_secret(password: str) -> str:
    """A password or a secret as stored: argon2id, off the event loop."""
    # argon2 is deliberately slow, so a stolen hash is slow to guess.
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_secret(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(_hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
