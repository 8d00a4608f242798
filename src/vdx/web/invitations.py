"""Invitations by SMS or e-mail through a pluggable sender.

The default sender logs the message and keeps it in memory (a development node has no SMS
gateway or mail server); a deployment names its own class with ``VDX_INVITATION_SENDER``
(``package.module:Class``, constructed with the settings), e.g. one that speaks SMTP.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from vdx.settings import Settings

log = logging.getLogger("vdx.web.invitations")

Channel = Literal["sms", "email"]


@dataclass(frozen=True)
class Invitation:
    channel: Channel
    to: str
    subject: str
    text: str


class InvitationSender(Protocol):
    async def send(self, invitation: Invitation) -> None: ...


class LoggingSender:
    """Logs each invitation and remembers the last ones (for the developer and for tests)."""

    def __init__(self, settings: Settings | None = None, keep: int = 100) -> None:
        self.sent: list[Invitation] = []
        self._keep = keep

    async def send(self, invitation: Invitation) -> None:
        log.info(
            "invitation by %s to %s: %s",
            invitation.channel,
            invitation.to,
            invitation.text.replace("\n", " "),
        )
        self.sent.append(invitation)
        del self.sent[: -self._keep]


def build_sender(settings: Settings) -> InvitationSender:
    """The configured sender: ``logging`` (default) or ``package.module:Class``."""
    name = settings.invitation_sender.strip()
    if name in ("", "logging"):
        return LoggingSender(settings)
    module, sep, attr = name.partition(":")
    if not sep:
        raise ValueError("invitation_sender must be 'logging' or 'package.module:Class'")
    cls = getattr(importlib.import_module(module), attr)
    sender: InvitationSender = cls(settings)
    return sender


def invitation_text(language: str, subject: str, start: str, link: str) -> tuple[str, str]:
    """Subject line and body of an invitation, Danish or English."""
    if language == "da":
        return (
            f"Invitation til videomøde: {subject}",
            f"Du er inviteret til videomødet '{subject}' {start}.\nDeltag her: {link}",
        )
    return (
        f"Invitation to a video meeting: {subject}",
        f"You are invited to the video meeting '{subject}' at {start}.\nJoin here: {link}",
    )
