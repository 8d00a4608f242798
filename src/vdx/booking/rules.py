"""The violation a pure booking rule reports: a catalogued VDX error code (spec 1.0.1).

Pure modules raise it; the service layer turns it into the API's ``DetailedError``.
"""

from __future__ import annotations


class RuleViolation(Exception):
    """A booking rule failed with VDX error ``code`` (e.g. "14"); ``args`` fill the text's ``%s``."""

    def __init__(self, code: str, *params: object) -> None:
        super().__init__(code, *params)
        self.code = code
        self.params = params
