"""Which organisations are clinical, as the node knows it now, and whether a join is clinical.

The node has no database: it reads the clinical organisations from the API
(``GET {context}/v2/clinical-organisations`` with its provisioner token, by a
``vdx.node.refresher.Refresher``) every ``VDX_NODE_CLINICAL_REFRESH`` seconds, and at once when an
organisation's audit event arrives on the bus (every change of an organisation is audited,
``vdx org set`` included). A join asks
``ClinicalDirectory.of_room`` at that moment, so marking an organisation clinical helps its
meetings already booked from the next refresh on, without re-provisioning anything.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from vdx.booking.clinical import read_labels
from vdx.conference.policy import RoomConfig

log = logging.getLogger("vdx.node.clinical")

# Distinct unknown labels logged at most once each; beyond this many the log stays quiet (labels
# are free text, a busy node must not keep every one it ever saw).
LOGGED_LABELS_MAX = 10_000


class ClinicalDirectory:
    """The codes of the clinical organisations, replaced whole by each refresh."""

    def __init__(self, clinical: Iterable[str] = ()) -> None:
        self._clinical: frozenset[str] = frozenset(clinical)
        self.loaded = False  # a refresh has succeeded at least once
        self._logged: set[str] = set()

    def replace(self, codes: Iterable[str]) -> None:
        new = frozenset(codes)
        if self.loaded and new != self._clinical:
            log.info(
                "clinical organisations now %s (added %s, removed %s)",
                len(new),
                sorted(new - self._clinical) or "none",
                sorted(self._clinical - new) or "none",
            )
        self._clinical = new
        self.loaded = True

    def organisation(self, code: str | None) -> bool:
        """The organisation's setting as last read (unknown or None: not clinical)."""
        return code is not None and code in self._clinical

    def of_room(self, config: RoomConfig) -> bool:
        """Whether a join of this room counts as clinical now: the meeting's ``clinical`` /
        ``non-clinical`` label, else its organisation's current setting. A label meant as one
        but neither (``klinisk``) is ignored and logged once."""
        self._note_unknown(config)
        return config.clinical(self.organisation(config.organisation))

    def _note_unknown(self, config: RoomConfig) -> None:
        for label in read_labels(config.labels).unknown:
            if label not in self._logged and len(self._logged) < LOGGED_LABELS_MAX:
                self._logged.add(label)
                log.warning(
                    "room %s: label %r is neither 'clinical' nor 'non-clinical' and is ignored",
                    config.alias,
                    label,
                )
