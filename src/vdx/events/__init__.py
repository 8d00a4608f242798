"""Scheduling-info and audit events (spec 4.2, 4.4), recorded in the outbox of the same transaction."""
