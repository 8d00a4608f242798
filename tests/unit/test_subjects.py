"""NATS subject matching used by the in-process bus and `vdx events tail`."""

from vdx.bus.inprocess import subject_matches


def test_subject_wildcards():
    assert subject_matches("provisioner.scheduling-info", "provisioner.scheduling-info")
    assert subject_matches("provisioner.*", "provisioner.scheduling-info")
    assert subject_matches(">", "audit.event")
    assert subject_matches("audit.>", "audit.event.x")
    assert not subject_matches("audit.>", "audit")
    assert not subject_matches("provisioner.*", "provisioner.a.b")
    assert not subject_matches("audit.event", "audit.events")
