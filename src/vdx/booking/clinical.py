"""What is clinical: clinical use has first priority when capacity is short.

An organisation is clinical or not; a meeting inherits its organisation's setting, and a label
``clinical`` or ``non-clinical`` on the meeting overrides it. Pure: the node decides with it at
each join (``vdx.conference.policy.RoomConfig.clinical``), the steering figures count meetings
with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

CLINICAL_LABEL = "clinical"
NON_CLINICAL_LABEL = "non-clinical"


@dataclass(frozen=True)
class LabelVerdict:
    """What a meeting's labels say: clinical, non-clinical or nothing (None), and the labels
    that look meant as one but are neither (so they can be named in the log)."""

    clinical: bool | None
    unknown: tuple[str, ...] = ()


def read_labels(labels: Iterable[str]) -> LabelVerdict:
    """``clinical`` or ``non-clinical`` (any case, spaces around ignored); both given, clinical
    wins (clinical use has priority, so a contradiction never refuses it). Labels that mention
    clinical use but are neither (``clinical:yes``, Danish ``klinisk``) are unknown and otherwise
    ignored; other labels (a meeting's own tags) say nothing about it."""
    said: set[bool] = set()
    unknown: list[str] = []
    for raw in labels:
        label = raw.strip().lower()
        if label == CLINICAL_LABEL:
            said.add(True)
        elif label == NON_CLINICAL_LABEL:
            said.add(False)
        elif "clinical" in label or "klinisk" in label:
            unknown.append(raw)
    verdict = True if True in said else (False if said else None)
    return LabelVerdict(verdict, tuple(unknown))


def is_clinical(labels: Iterable[str], organisation_clinical: bool) -> bool:
    """Whether a join counts as clinical: the meeting's label, else its organisation's setting."""
    verdict = read_labels(labels).clinical
    return organisation_clinical if verdict is None else verdict
