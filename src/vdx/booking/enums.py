"""The booking's enumerations, as the reference names their literals (spec 1.6): request bodies,
stored columns and events all use these.
"""

from __future__ import annotations

import enum


class ProvisionStatus(enum.StrEnum):
    """Provisioning states; the reference documents them by ordinal (spec 1.6)."""

    AWAITS_PROVISION = "AWAITS_PROVISION"
    STARTING_TO_PROVISION = "STARTING_TO_PROVISION"
    PROVISION_PROBLEMS = "PROVISION_PROBLEMS"
    PROVISIONED_OK = "PROVISIONED_OK"
    STARTING_TO_DEPROVISION = "STARTING_TO_DEPROVISION"
    DEPROVISION_PROBLEMS = "DEPROVISION_PROBLEMS"
    DEPROVISION_OK = "DEPROVISION_OK"


class VmrType(enum.StrEnum):
    conference = "conference"
    lecture = "lecture"


class ViewType(enum.StrEnum):
    one_main_zero_pips = "one_main_zero_pips"
    one_main_seven_pips = "one_main_seven_pips"
    one_main_twentyone_pips = "one_main_twentyone_pips"
    two_mains_twentyone_pips = "two_mains_twentyone_pips"
    four_mains_zero_pips = "four_mains_zero_pips"
    five_mains_seven_pips = "five_mains_seven_pips"
    one_main_thirtythree_pips = "one_main_thirtythree_pips"
    nine_mains_zero_pips = "nine_mains_zero_pips"
    sixteen_mains_zero_pips = "sixteen_mains_zero_pips"
    twentyfive_mains_zero_pips = "twentyfive_mains_zero_pips"


class VmrQuality(enum.StrEnum):
    sd = "sd"
    hd = "hd"
    fullhd = "fullhd"


class DirectMedia(enum.StrEnum):
    never = "never"
    best_effort = "best_effort"


class GuestMicrophone(enum.StrEnum):
    muted = "muted"
    off = "off"
    on = "on"


class MeetingType(enum.StrEnum):
    NORMAL = "NORMAL"
    POOL = "POOL"
