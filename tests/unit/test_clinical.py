"""Whether a join is clinical: the meeting's label, else its organisation's setting now."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdx.booking.clinical import is_clinical, read_labels
from vdx.conference.policy import RoomConfig
from vdx.node.clinical import ClinicalDirectory

MARKERS = ["clinical", "non-clinical", "Clinical", " NON-CLINICAL ", "clinical\t"]
OTHER = st.text(max_size=12).filter(lambda t: t.strip().casefold() not in ("clinical", "non-clinical"))
LABELS = st.lists(st.one_of(st.sampled_from(MARKERS), OTHER), max_size=6)


@given(LABELS, st.booleans())
def test_a_label_overrides_the_organisation_and_clinical_wins_a_contradiction(labels, org_clinical):
    markers = {label.strip().lower() for label in labels} & {"clinical", "non-clinical"}
    expected = "clinical" in markers or (org_clinical and "non-clinical" not in markers)
    assert is_clinical(labels, org_clinical) is expected


@given(st.lists(OTHER, max_size=6), st.booleans())
def test_other_labels_leave_it_to_the_organisation(labels, org_clinical):
    assert is_clinical(labels, org_clinical) is org_clinical


@pytest.mark.parametrize(
    ("labels", "org", "expected"),
    [
        ([], True, True),
        ([], False, False),
        (["non-clinical"], True, False),
        (["clinical"], False, True),
        (["Clinical", "non-clinical"], False, True),
        (["klinisk", "cardiology"], False, False),
    ],
)
def test_examples(labels, org, expected):
    assert is_clinical(labels, org) is expected


def test_labels_meant_as_a_marker_but_neither_are_unknown_and_others_are_no_concern():
    assert read_labels(["klinisk", "Clinical:yes", "cardiology", "non-clinical"]).unknown == (
        "klinisk",
        "Clinical:yes",
    )


def test_the_room_reads_its_labels_from_the_meeting():
    config = RoomConfig.from_scheduling_info(
        {
            "uriWithDomain": "1@vdx.test",
            "organisationCode": "rh",
            "meetingDetails": {"labels": ["non-clinical", "teaching"]},
        }
    )
    assert config.labels == {"non-clinical", "teaching"}
    assert config.organisation == "rh"


def test_the_directory_follows_the_organisations_setting_and_logs_an_unknown_label_once(caplog):
    directory = ClinicalDirectory()
    room = RoomConfig("1@vdx.test", organisation="rh", labels=frozenset({"klinisk", "teaching"}))
    labelled = RoomConfig("2@vdx.test", organisation="rh", labels=frozenset({"non-clinical", "klinisk"}))
    with caplog.at_level(logging.INFO, logger="vdx.node.clinical"):
        assert directory.of_room(room) is False
        directory.replace(["rh"])
        assert directory.of_room(room) is True
        assert directory.of_room(labelled) is False  # the label overrides the organisation
        directory.replace([])
        assert directory.of_room(room) is False
    messages = [r.getMessage() for r in caplog.records]
    assert sum("'klinisk'" in m for m in messages) == 1
    assert not any("teaching" in m for m in messages)
