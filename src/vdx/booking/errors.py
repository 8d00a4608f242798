"""The VDX error catalogue (spec 1.0.1): codes "10".."36", their texts and statuses.

Texts are quoted exactly from the reference because integrations match on them. Booking rules and
services raise these; only the HTTP layer knows how they are written on the wire.
"""

from __future__ import annotations

from typing import Any

# spec 1.0.1: code -> (HTTP status, text); %s is substituted.
CATALOGUE: dict[str, tuple[int, str]] = {
    "12": (
        406,
        "Meeting must have status AWAITS_PROVISION (0)  or PROVISIONED_OK (3) in order to be updated",
    ),
    "13": (406, "Meeting must have status AWAITS_PROVISION (0) in order to be deleted"),
    "14": (406, "The Uri assignment failed due to invalid setup on the template used"),
    "15": (
        406,
        "The Uri assignment failed. It was not possible to create a unique. Consider changing the interval on the template",
    ),
    "16": (406, "The guest pincode assignment failed due to invalid setup on the template used"),
    "17": (406, "The host pincode assignment failed due to invalid setup on the template used"),
    "18": (406, "Create or update of pool template failed due to only one pool template allowed"),
    "19": (400, "Can not create ad hoc meeting on non ad hoc organization: %s"),
    "20": (400, "Unused scheduling information not found for organisation tree for %s"),
    "21": (400, "ExternalId not unique within organisation."),
    "22": (400, "OrganisationId %s in request not found."),
    "23": (400, "Scheduling information can not be created on organisation %s that is not pool enabled."),
    "24": (400, "Unable to generate unique shortId. Try again."),
    "25": (400, "Date format is wrong, year must only have 4 digits"),
    "26": (400, "Scheduling template %s not found."),
    "27": (400, "Scheduling template %s does not belong to organisation %s."),
    "28": (
        400,
        "Either both from-start-time and to-start-time must be provided or none of them must be provided.",
    ),
    "29": (400, "ReservationId not owned by organisation or not found."),
    "30": (400, "Field can not be set to null"),
    "31": (400, "Organisation does not allow setting custom meeting address."),
    "32": (400, "Supplied URI already used"),
    "33": (400, "Supplied URI contains invalid characters. Valid characters: [A-Z], [a-z] and [0-9]."),
    "34": (400, "Scheduling info reservation can not be used in combination with guest pin and/or host pin."),
    "35": (400, "Additional info keys not unique for meeting."),
    "36": (400, "Must set at least one query parameter, when searching for meeting."),
}


class VdxError(Exception):
    """A catalogued VDX error: ``code`` and its text, with the status spec 1.0.1 pairs with it
    (the HTTP layer answers with that status and the ``DetailedError`` body)."""

    def __init__(self, status: int, code: str, detail: str | None) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail


def vdx_error(code: str, *args: Any) -> VdxError:
    """The catalogued error ``code`` with its exact text (spec 1.0.1)."""
    status, text = CATALOGUE[code]
    return VdxError(status, code, text % args if args else text)


def validation_error(message: str) -> VdxError:
    return VdxError(400, "10", message)


def not_found(resource: str, field: str) -> VdxError:
    return VdxError(404, "11", f"Resource: {resource} in field: {field} not found.")


def forbidden() -> VdxError:
    return VdxError(403, "11", None)
