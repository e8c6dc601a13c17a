"""Where a self-made account is on its way in: one table of moves, kept apart from the
database so that tests enumerate every move (as ``nefos.quotas.project_rules``).

    unverified --VERIFY--> active            (signup_auto_activate)
               --VERIFY--> pending --ACTIVATE--> active
                                   --REJECT----> rejected --ACTIVATE--> active

An administrator may also ACTIVATE or REJECT an account still unverified (they vouch
for the address themselves). An account made by an operator or by a first external
login with auto-activation has no state (``None``) and never moves here.
"""

from __future__ import annotations

from nefos.core import errors

UNVERIFIED = "unverified"
PENDING = "pending"
ACTIVE = "active"
REJECTED = "rejected"
STATES = (UNVERIFIED, PENDING, ACTIVE, REJECTED)

VERIFY = "VERIFY"
ACTIVATE = "ACTIVATE"
REJECT = "REJECT"

ALLOWED: dict[str, frozenset[str]] = {
    VERIFY: frozenset({UNVERIFIED}),
    ACTIVATE: frozenset({UNVERIFIED, PENDING, REJECTED}),
    REJECT: frozenset({UNVERIFIED, PENDING}),
}

# Why a move is refused, by the state the account is in, in words for the person.
REFUSED: dict[str | None, str] = {
    UNVERIFIED: "its e-mail address is not verified yet",
    PENDING: "it waits for an administrator already",
    ACTIVE: "it is active already",
    REJECTED: "it was rejected",
    None: "it was not made by sign-up",
}


def after(move: str, state: str | None, auto_activate: bool) -> str:
    """The state ``move`` leads to from ``state``; Conflict if it is not allowed."""
    if state not in ALLOWED[move]:
        raise errors.Conflict(f"The account cannot take that step: {REFUSED[state]}")
    if move == VERIFY:
        return ACTIVE if auto_activate else PENDING
    return ACTIVE if move == ACTIVATE else REJECTED


def may_log_in(state: str | None) -> bool:
    return state in (None, ACTIVE)


# What a login of an inactive account is told, by its state.
NOT_ACTIVE: dict[str | None, str] = {
    UNVERIFIED: "Please confirm your e-mail address first: open the link in the mail we sent you",
    PENDING: "Your account waits for an administrator to approve it; you will get an "
    "e-mail when it is ready",
    REJECTED: "Your application for an account was not approved",
}
