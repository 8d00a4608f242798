"""A served process freezes its start-up heap (``vdx.app.freeze_start_up_heap``) so full
collections skip it; an app started in a test process, one of many, does not."""

from __future__ import annotations

import gc
from collections.abc import Callable

from vdx.app import create_app
from vdx.settings import Settings


async def test_a_served_app_freezes_its_start_up_heap_and_a_test_app_does_not(
    settings_factory: Callable[..., Settings],
) -> None:
    gc.unfreeze()
    settings = settings_factory(database_url=None, nats_url=None)
    plain = create_app(settings)
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == 0
    served = create_app(settings, served=True)
    try:
        async with served.router.lifespan_context(served):
            frozen = gc.get_freeze_count()
            assert frozen > 10_000  # modules, mappers, routes: start-up's objects, not a handful
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0
