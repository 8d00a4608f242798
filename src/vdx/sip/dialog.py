"""SIP dialogs (RFC 3261 §12), made by an INVITE we answer or by the 2xx to one we sent: identity,
CSeq bookkeeping, route set, and building in-dialog requests (the BYE we send when a room ends,
our session refreshes, the ACKs)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from .message import BRANCH_COOKIE, NameAddr, SipRequest, SipResponse
from .transport import Source


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(8)


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our end: To of an INVITE we answer (our tag added), From of one we sent
    remote_uri: str  # their end: From of an INVITE we answer, To of the 2xx to ours
    remote_target: str  # their Contact
    remote_cseq: int
    source: Source  # the way back to the peer
    local_contact: str
    route_set: list[str] = field(default_factory=list)
    remote_methods: frozenset[str] = frozenset()  # the peer's Allow: which requests we may send
    local_cseq: int = field(default_factory=lambda: secrets.randbelow(10000) + 1)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_invite(cls, invite: SipRequest, source: Source, local_tag: str, local_contact: str) -> Dialog:
        contacts = invite.get_all("Contact")
        target = NameAddr.parse(contacts[0]).uri if contacts else invite.from_.uri
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=invite.from_.tag or "",
            local_uri=invite.get("To") or "",
            remote_uri=invite.get("From") or "",
            remote_target=target,
            remote_cseq=invite.cseq[0],
            source=source,
            local_contact=local_contact,
            route_set=invite.get_all("Record-Route"),  # UAS keeps Record-Route order (§12.1.1)
            remote_methods=frozenset(m.upper() for m in invite.tokens("Allow")),
        )

    @classmethod
    def from_answer(cls, invite: SipRequest, answer: SipResponse, source: Source) -> Dialog:
        """The dialog of our INVITE, from its 2xx (§12.1.2): the route set is the 2xx's
        Record-Route reversed, the remote target its Contact."""
        contacts = answer.get_all("Contact")
        target = NameAddr.parse(contacts[0]).uri if contacts else invite.uri
        return cls(
            call_id=invite.call_id,
            local_tag=invite.from_.tag or "",
            remote_tag=answer.to.tag or "",
            local_uri=invite.get("From") or "",
            remote_uri=answer.get("To") or "",
            remote_target=target,
            remote_cseq=0,  # none seen yet: any first request of theirs is in order
            source=source,
            local_contact=invite.get("Contact") or "",
            route_set=list(reversed(answer.get_all("Record-Route"))),
            remote_methods=frozenset(m.upper() for m in answer.tokens("Allow")),
            local_cseq=invite.cseq[0],
        )

    def accept_cseq(self, request: SipRequest) -> bool:
        """§12.2.2: a lower CSeq than the last one is out of order (-> 500)."""
        num, method = request.cseq
        if method in ("ACK", "CANCEL"):
            return True
        if num < self.remote_cseq:
            return False
        self.remote_cseq = num
        return True

    def request(self, method: str) -> SipRequest:
        """A new in-dialog request from us (§12.2.1.1)."""
        self.local_cseq += 1
        return self._build(method, self.local_cseq)

    def ack(self, invite: SipRequest) -> SipRequest:
        """The ACK of a 2xx to our re-INVITE (§13.2.2.4): a transaction of its own, the INVITE's
        CSeq number."""
        return self._build("ACK", invite.cseq[0])

    def _build(self, method: str, cseq: int) -> SipRequest:
        req = SipRequest(method=method, uri=self.remote_target)
        src = self.source
        host = f"[{src.local_host}]" if ":" in src.local_host else src.local_host
        req.add("Via", f"SIP/2.0/{src.transport} {host}:{src.local_port};branch={new_branch()};rport")
        req.add("Max-Forwards", "70")
        to = self.remote_uri
        frm = self.local_uri
        if ";tag=" not in frm.replace(" ", "").lower():
            frm = f"{frm};tag={self.local_tag}"
        req.add("From", frm)
        req.add("To", to)
        req.add("Call-ID", self.call_id)
        req.add("CSeq", f"{cseq} {method}")
        for r in self.route_set:
            req.add("Route", r)
        req.add("Contact", self.local_contact)
        return req
