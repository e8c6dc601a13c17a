"""Accounts people make themselves (Astakos's sign-up): sign-up with acceptance of the
terms of use, e-mail verification, moderation by administrators, password reset.

Every step is one transaction, and mail goes out only after it commits
(``nefos.core.mail``): a relay that is down leaves a whole account that waits for its
mail (sent again later, or on request), never half an account. The moves between
states are ``nefos.identity.signup_rules``'s table.

What a stranger learns:

* Sign-up tells whether an address has an account (it must refuse the duplicate), as
  Astakos does; it is throttled per client address like a login.
* Asking for a password reset or a new verification mail answers the same whether the
  address has an account or not, and never waits for the relay, so its timing tells
  nothing either; it is throttled per address and per account named.
* Links in mail carry 32 random bytes; only their digests are kept; each works once,
  until it expires, and a newer one of the same kind replaces it.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nefos.core import errors
from nefos.core.auth import Credentials
from nefos.core.config import Settings
from nefos.core.db import utcnow
from nefos.core.mail import Letter, Mailer
from nefos.identity import letters, signup_rules
from nefos.identity.models import AccountToken, AuthIdentity, Token, User
from nefos.identity.service import (
    API_TOKEN,
    LOCAL,
    Identity,
    digest,
    hash_secret,
    new_token,
)
from nefos.identity.throttle import account_key, address_key

log = logging.getLogger("nefos.identity.accounts")

VERIFY = "verify"
RESET = "reset"
# Where the links in mail lead: the UI's pages for people who are not logged in.
WELCOME = "/ui/welcome"
MODERATION_PAGE = "/ui/#/admin/users"
LOGIN_PAGE = "/ui/login"


def field_error(field: str, message: str) -> errors.InvalidInput:
    """A refusal that names the field at fault, so a form can show it by that field."""
    return errors.InvalidInput(message, data={"field": field})


@dataclass(frozen=True)
class Terms:
    version: str
    text: str


@dataclass(frozen=True)
class SignedUp:
    user: User
    mail_sent: bool  # False: the relay did not take it yet; it is retried


@dataclass(frozen=True)
class Moderated:
    user: User
    mail_sent: bool


class Accounts:
    def __init__(self, identity: Identity, mailer: Mailer, settings: Settings):
        self.identity = identity
        self.db = identity.db
        self.mailer = mailer
        self.settings = settings
        self.conf = settings.signup

    # -- terms of use -----------------------------------------------------------------

    def terms(self) -> Terms | None:
        """The terms of use sign-up asks people to accept, if any are configured. Read
        at each call, so an operator's edit needs no restart (with a new version)."""
        path = self.conf.terms_file
        if path is None:
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            log.error("terms of use %s cannot be read: %s", path, exc)
            raise errors.Unavailable("The terms of use cannot be shown right now") from exc
        return Terms(self.conf.terms_version, text)

    # -- checks -----------------------------------------------------------------------

    def _check_name(self, name: str) -> str:
        name = name.strip()
        if not name:
            raise field_error("name", "Please type your name")
        if len(name) > self.settings.limits.name_length:
            raise field_error(
                "name", f"A name may have at most {self.settings.limits.name_length} characters"
            )
        if any(unicodedata.category(c).startswith("C") for c in name):
            raise field_error("name", "A name may not contain control characters")
        return name

    def _check_email(self, email: str) -> str:
        if not email.strip():
            raise field_error("email", "Please type your e-mail address")
        try:
            return self.identity.check_email(email)
        except errors.InvalidInput:
            raise field_error(
                "email", "This is not an e-mail address: it looks like name@example.org"
            ) from None

    def _check_password(self, password: str, email: str) -> None:
        shortest = self.conf.password_min_length
        if not password:
            raise field_error("password", "Please choose a password")
        if len(password) < shortest:
            raise field_error(
                "password",
                f"A password needs at least {shortest} characters; this has {len(password)}",
            )
        if len(password) > self.settings.limits.password_length:
            raise field_error(
                "password",
                f"A password may have at most {self.settings.limits.password_length} characters",
            )
        if len(set(password)) == 1 or password.strip().lower() in (email, email.split("@")[0]):
            raise field_error("password", "This password is too easy to guess; choose another")

    def _check_terms(self, accepted: str | None) -> str | None:
        terms = self.terms()
        if terms is None:
            return None
        if not accepted:
            raise field_error("terms", "Please read the terms of use and accept them")
        if accepted != terms.version:
            raise field_error(
                "terms", "The terms of use changed while you read them: please read them again"
            )
        return terms.version

    async def _throttle(self, doing: str, email: str, address: str) -> None:
        await self.identity.throttle.attempt(
            account_key(f"{doing}:{email}"), address_key(address), doing
        )

    # -- sign-up and verification -------------------------------------------------------

    async def sign_up(
        self, email: str, name: str, password: str, accepted_terms: str | None, address: str = ""
    ) -> SignedUp:
        """Make an unverified, inactive account and mail its verification link."""
        if not self.conf.enabled or LOCAL not in self.settings.auth_providers:
            raise errors.PermissionDenied("Sign-up is closed on this cloud")
        email = self._check_email(email)
        name = self._check_name(name)
        self._check_password(password, email)
        version = self._check_terms(accepted_terms)
        await self._throttle("sign-ups", email, address)
        token = new_token()
        lifetime = dt.timedelta(hours=self.conf.verify_hours)

        def add_verification(s: AsyncSession, user: User) -> None:
            s.add(self._token(user.id, token, VERIFY, lifetime))

        try:
            user, _ = await self.identity.create_user(
                email,
                password,
                name,
                active=False,
                verified=False,
                signup_state=signup_rules.UNVERIFIED,
                terms_version=version,
                also=add_verification,
            )
        except errors.Conflict:
            raise errors.Conflict(
                "An account with this e-mail address exists already: log in, or set a new "
                "password if you forgot yours",
                data={"field": "email"},
            ) from None
        sent = await self.mailer.send(self._verify_letter(user, token))
        return SignedUp(user, sent)

    def _token(
        self, user_id: uuid.UUID, token: str, purpose: str, lifetime: dt.timedelta
    ) -> AccountToken:
        now = utcnow()
        return AccountToken(
            digest=digest(token),
            user_id=user_id,
            purpose=purpose,
            created_at=now,
            expires_at=now + lifetime,
        )

    def _verify_letter(self, user: User, token: str) -> Letter:
        link = self.mailer.link(f"{WELCOME}#/verify/{token}")
        return letters.verify(user.email, user.display_name, link, self.conf.verify_hours)

    async def resend(self, email: str, address: str = "") -> None:
        """A new verification link for an account still unverified; the same answer,
        and no mail, for any other address."""
        email = self._check_email(email)
        await self._throttle("verification mails", email, address)
        token = new_token()
        async with self.db.transaction() as s:
            user = await s.scalar(select(User).where(User.email == email))
            if user is None or user.signup_state != signup_rules.UNVERIFIED:
                return
            await self._replace_tokens(s, user.id, VERIFY)
            s.add(self._token(user.id, token, VERIFY, dt.timedelta(hours=self.conf.verify_hours)))
        self.mailer.post(self._verify_letter(user, token))

    async def _replace_tokens(self, s: AsyncSession, user_id: uuid.UUID, purpose: str) -> None:
        await s.execute(
            delete(AccountToken).where(
                AccountToken.user_id == user_id, AccountToken.purpose == purpose
            )
        )

    async def _use_token(self, s: AsyncSession, token: str, purpose: str) -> User:
        """The user a mailed token belongs to; the token (and its older twins) are used
        up in this transaction."""
        record = await s.get(AccountToken, digest(token)) if 0 < len(token) <= 256 else None
        if record is None or record.purpose != purpose:
            raise errors.NotFound(
                "This link does not work: it was used already, or a newer one was sent. "
                "Ask for a new one."
            )
        if record.expires_at <= utcnow():
            raise errors.InvalidInput("This link has expired. Ask for a new one.")
        user = await s.get(User, record.user_id)
        assert user is not None  # foreign key
        await self._replace_tokens(s, user.id, purpose)
        return user

    async def verify(self, token: str) -> User:
        """The address is the user's: the account is active, or waits for an admin."""
        async with self.db.transaction() as s:
            user = await self._use_token(s, token, VERIFY)
            self._move(user, signup_rules.VERIFY)
        await self._told_of(user)
        return user

    def _move(self, user: User, move: str) -> None:
        user.signup_state = signup_rules.after(
            move, user.signup_state, self.settings.signup_auto_activate
        )
        user.is_active = user.signup_state == signup_rules.ACTIVE
        if move != signup_rules.REJECT:
            user.is_verified = True

    async def _told_of(self, user: User) -> None:
        """After a verification: administrators learn of an account that waits."""
        if user.signup_state == signup_rules.PENDING:
            admins = await self.admin_addresses()
            link = self.mailer.link(MODERATION_PAGE)
            self.mailer.post(
                letters.pending_for_admins(admins, user.email, user.display_name, link)
            )

    # -- moderation ---------------------------------------------------------------------

    async def pending(self, caller: Credentials | None) -> list[User]:
        """Accounts that wait for an administrator, oldest first."""
        self._require_admin(caller)
        async with self.db.session() as s:
            query = select(User).where(User.signup_state == signup_rules.PENDING)
            limit = self.settings.limits.identity_list
            return list(await s.scalars(query.order_by(User.created_at, User.id).limit(limit)))

    def _require_admin(self, caller: Credentials | None) -> None:
        """``None`` is the operator at the ``nefos`` command."""
        if caller is not None and not caller.is_admin:
            raise errors.PermissionDenied("Only administrators moderate accounts")

    async def activate(self, caller: Credentials | None, ref: str | uuid.UUID) -> Moderated:
        async with self.db.transaction() as s:
            user = await self._moderated(s, caller, ref)
            self._move(user, signup_rules.ACTIVATE)
        self.identity.cache.drop_user(user.id)
        letter = letters.activated(user.email, user.display_name, self.mailer.link(LOGIN_PAGE))
        return Moderated(user, await self.mailer.send(letter))

    async def reject(
        self, caller: Credentials | None, ref: str | uuid.UUID, reason: str = ""
    ) -> Moderated:
        reason = reason.strip()
        if len(reason) > 1000 or "\0" in reason:
            raise field_error("reason", "A reason may have at most 1000 characters")
        async with self.db.transaction() as s:
            user = await self._moderated(s, caller, ref)
            self._move(user, signup_rules.REJECT)
            await s.execute(delete(Token).where(Token.user_id == user.id))
        self.identity.cache.drop_user(user.id)
        letter = letters.rejected(user.email, user.display_name, reason)
        return Moderated(user, await self.mailer.send(letter))

    async def _moderated(
        self, s: AsyncSession, caller: Credentials | None, ref: str | uuid.UUID
    ) -> User:
        self._require_admin(caller)
        user = await self.identity.find_user(s, ref)
        await s.refresh(user, with_for_update=True)  # two admins at once: one wins
        return user

    async def admin_addresses(self) -> list[str]:
        async with self.db.session() as s:
            query = select(User.email).where(User.is_admin.is_(True), User.is_active.is_(True))
            return list(await s.scalars(query.order_by(User.email)))

    # -- password reset -----------------------------------------------------------------

    async def request_reset(self, email: str, address: str = "") -> None:
        """Mail a reset link if the address has a local login; the same answer, and no
        mail, if not."""
        email = self._check_email(email)
        await self._throttle("password resets", email, address)
        token = new_token()
        lifetime = dt.timedelta(minutes=self.conf.reset_minutes)
        async with self.db.transaction() as s:
            user = await s.scalar(select(User).where(User.email == email))
            if user is None or user.password_hash is None:
                return
            await self._replace_tokens(s, user.id, RESET)
            s.add(self._token(user.id, token, RESET, lifetime))
        link = self.mailer.link(f"{WELCOME}#/reset/{token}")
        minutes = self.conf.reset_minutes
        self.mailer.post(letters.reset(user.email, user.display_name, link, minutes))

    async def reset(self, token: str, password: str) -> User:
        """Set a new password with a mailed link. Every token and web session of the
        user ends (a thief who had one loses it), and a new API token replaces the old.
        The link proves the address too: an unverified account is verified by it."""
        async with self.db.session() as s:
            found = await s.get(AccountToken, digest(token)) if 0 < len(token) <= 256 else None
            owner = await s.get(User, found.user_id) if found is not None else None
        if owner is not None:
            self._check_password(password, owner.email)
        password_hash = await hash_secret(password)
        async with self.db.transaction() as s:
            user = await self._use_token(s, token, RESET)
            user.password_hash = password_hash
            linked = await s.scalar(
                select(AuthIdentity.id).where(
                    AuthIdentity.user_id == user.id, AuthIdentity.provider == LOCAL
                )
            )
            if linked is None:
                s.add(AuthIdentity(user_id=user.id, provider=LOCAL, identifier=user.email, info={}))
            if user.signup_state == signup_rules.UNVERIFIED:
                self._move(user, signup_rules.VERIFY)
                await self._replace_tokens(s, user.id, VERIFY)
            await s.execute(delete(Token).where(Token.user_id == user.id))
            self.identity.add_token(s, user.id, user.system_project_id, API_TOKEN, ("token",))
        self.identity.cache.drop_user(user.id)
        await self._told_of(user)
        return user
