"""Roles and the rules derived from them (spec 3.1, 3.3, 3.4). Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

ADMIN = "meeting-admin"
USER = "meeting-user"
PLANNER = "meeting-planner"
PROVISIONER = "meeting-provisioner"
PROVISIONER_USER = "meeting-provisioner-user"
ALL_ROLES = (ADMIN, USER, PLANNER, PROVISIONER, PROVISIONER_USER)

# spec 3.3: who may call what
ANY = ALL_ROLES
MEETING_WRITERS = (ADMIN, USER, PLANNER, PROVISIONER_USER)
PROVISIONER_ONLY = (PROVISIONER_USER,)
ADMIN_ONLY = (ADMIN,)


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the token says (organisation code, e-mail, roles)."""

    organisation_code: str | None
    email: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    parent_org: str | None = None

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    def only(self, role: str) -> bool:
        """ "Only role X" means exactly one role (spec 3.1)."""
        return self.roles == frozenset({role})

    @property
    def only_user(self) -> bool:
        return self.only(USER)

    @property
    def acts_for_others(self) -> bool:
        """Admin and planner may act for ``organizedByEmail`` in their own org (spec 3.4)."""
        return self.has(ADMIN, PLANNER)

    @property
    def sees_all_scheduling_info(self) -> bool:
        return self.has(PROVISIONER, PROVISIONER_USER)
