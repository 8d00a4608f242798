"""An in-process bus for the all-in-one node: subscribers in the same process get each message."""

from __future__ import annotations

import logging

from vdx.bus.base import Handler, Message

log = logging.getLogger("vdx.bus")


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` one token, ``>`` the rest."""
    p, s = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


class _Sub:
    def __init__(self, bus: InProcessBus, pattern: str, handler: Handler) -> None:
        self.bus, self.pattern, self.handler = bus, pattern, handler

    async def unsubscribe(self) -> None:
        if self in self.bus.subs:
            self.bus.subs.remove(self)


class InProcessBus:
    name = "in-process"

    def __init__(self) -> None:
        self.subs: list[_Sub] = []

    async def start(self) -> None:
        return None

    async def publish(self, subject: str, data: bytes, msg_id: str) -> None:
        msg = Message(subject=subject, data=data, msg_id=msg_id)
        for sub in list(self.subs):
            if subject_matches(sub.pattern, subject):
                try:
                    await sub.handler(msg)
                except Exception:  # a failing subscriber must not block the publisher
                    log.exception("in-process subscriber failed on %s", subject)

    async def subscribe(self, subject: str, handler: Handler, durable: str | None = None) -> _Sub:
        sub = _Sub(self, subject, handler)
        self.subs.append(sub)
        return sub

    async def check(self) -> dict[str, str]:
        return {"bus": self.name}

    async def close(self) -> None:
        self.subs.clear()
