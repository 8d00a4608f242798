"""The aiortc/aioice hooks refuse to load under releases they were not written for."""

from __future__ import annotations

import importlib.metadata

import pytest

from vdx.legs.aiortc_hooks import SUPPORTED, check_version


def test_the_installed_releases_are_supported() -> None:
    for package, supported in SUPPORTED.items():
        check_version(package, importlib.metadata.version(package), supported)


@pytest.mark.parametrize("installed", ["1.15.9", "1.17.0", "2.0", "1.17.0rc1"])
def test_another_aiortc_release_is_refused(installed: str) -> None:
    with pytest.raises(ImportError, match=rf"aiortc>=1.16,<1.17, but aiortc {installed}"):
        check_version("aiortc", installed, ("1.16", "1.17"))


@pytest.mark.parametrize("installed", ["1.16", "1.16.0", "1.16.3.post1", "1.16.1rc2"])
def test_releases_in_the_range_pass(installed: str) -> None:
    check_version("aiortc", installed, ("1.16", "1.17"))
