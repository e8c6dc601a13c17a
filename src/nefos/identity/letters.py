"""The mail nefos sends about accounts, in plain words: what happened, what to do next,
and a link. Each function makes one :class:`~nefos.core.mail.Letter`; nothing is sent
here."""

from __future__ import annotations

from nefos.core.mail import Letter


def _hours(hours: float) -> str:
    if hours < 1:
        return f"{round(hours * 60)} minutes"
    return "1 hour" if hours == 1 else f"{hours:g} hours"


def verify(to: str, name: str, link: str, hours: float) -> Letter:
    return Letter(
        (to,),
        "Confirm your e-mail address for nefos",
        f"Hello {name},\n\n"
        "You (or someone who typed your address) asked for an account on nefos.\n"
        "To confirm that this e-mail address is yours, open this link:\n\n"
        f"{link}\n\n"
        f"The link works once, for {_hours(hours)}.\n"
        "If you did not ask for an account, ignore this mail: nothing happens.\n",
    )


def pending_for_admins(to: list[str], email: str, name: str, link: str) -> Letter:
    return Letter(
        tuple(to),
        f"New account waits for approval: {email}",
        f"{name} <{email}> signed up on nefos and confirmed the e-mail address.\n"
        "The account waits for an administrator to activate or reject it:\n\n"
        f"{link}\n\n"
        f"(or: nefos user activate {email} / nefos user reject {email})\n",
    )


def activated(to: str, name: str, link: str) -> Letter:
    return Letter(
        (to,),
        "Your nefos account is ready",
        f"Hello {name},\n\nAn administrator approved your account. You can log in now:\n\n{link}\n",
    )


def rejected(to: str, name: str, reason: str) -> Letter:
    why = f"\nThe reason given:\n\n  {reason}\n" if reason else ""
    return Letter(
        (to,),
        "Your nefos account was not approved",
        f"Hello {name},\n\n"
        "An administrator looked at your application for an account on nefos and did "
        f"not approve it.\n{why}\n"
        "If you think this is a mistake, reply to the people who run this cloud.\n",
    )


def reset(to: str, name: str, link: str, minutes: float) -> Letter:
    return Letter(
        (to,),
        "Set a new nefos password",
        f"Hello {name},\n\n"
        "Someone asked to set a new password for your nefos account.\n"
        "If it was you, open this link and choose a new password:\n\n"
        f"{link}\n\n"
        f"The link works once, for {_hours(minutes / 60)}. Setting a new password logs you out\n"
        "everywhere and replaces your API token.\n"
        "If it was not you, ignore this mail: your password stays as it is.\n",
    )
