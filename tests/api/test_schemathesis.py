"""Property-based run of every operation in our own OpenAPI document (schemathesis, in-process).

With a valid meeting-admin token of a seeded organisation tree, generated requests must never
get a 5xx, and no response may break the schema our document declares for it. The run is bounded
(a fixed number of examples per operation, derandomized) so that it is repeatable and short; it
picks up every operation the app has, so it grows as resources are added.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis import checks as st_checks

from vdx.app import create_app
from vdx.booking.roles import ADMIN, PLANNER, PROVISIONER_USER, USER
from vdx.services import organisations
from vdx.settings import Settings
from vdx.store.db import create_engine, session_factory
from vdx.tokens import mint_token

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}


async def _seed(s: Settings) -> None:
    """root -> region (pool 2) -> clinic -> clinic/ward: trees, descendants and pool have something to show."""
    engine = create_engine(s)
    try:
        async with session_factory(engine)() as session, session.begin():
            await organisations.create(session, "root", name="Root")
            await organisations.create(session, "region", parent_code="root", pool_size=2)
            await organisations.create(session, "clinic", parent_code="region")
            await organisations.create(session, "clinic/ward", parent_code="clinic")
    finally:
        await engine.dispose()


# Random strings almost never name a seeded organisation, so half of the cases put a known one
# into every parameter that names an organisation: the found-paths get exercised too.
SEEDED = ("root", "region", "clinic", "clinic/ward")
KNOWN = st.one_of(st.none(), st.tuples(st.sampled_from(SEEDED), st.integers(1, 5)))
CODE_PARAMETERS = {"code", "parent_code", "organisationCode"}


def use_known(case: Any, code: str, group_id: int) -> None:
    for container in (case.path_parameters, case.query):
        if not container:
            continue
        for name in list(container):
            if name in CODE_PARAMETERS:
                container[name] = code
            elif name == "groupId":
                container[name] = group_id


def describe(exc: BaseException) -> str:
    parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
    return "\n".join(f"  {type(e).__name__}: {e}"[:1500] for e in parts)


def run_every_operation(
    schema: Any, mode: GenerationMode, headers: dict[str, str], checks: list[Any]
) -> tuple[list[str], dict[str, str]]:
    """One bounded Hypothesis run per operation; returns the labels and the failures by label.

    Driven here rather than through schemathesis' pytest plugin (its lazy fixture loader does not
    work with pytest 9), and every failing operation is reported, not only the first."""
    failures: dict[str, str] = {}
    labels: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        labels.append(operation.label)

        @given(case=operation.as_strategy(generation_mode=mode), known=KNOWN)
        @settings_(
            max_examples=EXAMPLES_PER_OPERATION[mode],
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any, known: tuple[str, int] | None) -> None:
            if known is not None:
                use_known(case, *known)
            case.call_and_validate(headers=headers, checks=checks)

        try:
            run()
        except Unsatisfiable:
            # Nothing of this operation can break its schema (no body, only free-text
            # parameters): there are no negative cases to send.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as exc:  # keep going, report every operation
            failures[operation.label] = describe(exc)
    return labels, failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_server_errors_and_responses_match_their_schema(settings: Settings, mode: GenerationMode) -> None:
    # positive: valid requests; negative: requests that break the schema must be refused with a
    # 4xx (negative_data_rejection), and neither may get a 5xx or an undeclared body shape
    asyncio.run(_seed(settings))
    app = create_app(settings, migrate=False)
    schema = schemathesis.openapi.from_asgi(f"{settings.api_context}/openapi.json", app)
    roles = [ADMIN, USER, PLANNER, PROVISIONER_USER]
    token = mint_token(settings, org="root", email="admin@root.test", roles=roles, ttl=3600)
    headers = {"Authorization": f"Bearer {token}"}
    checks = [st_checks.not_a_server_error, st_checks.response_schema_conformance]
    if mode is GenerationMode.NEGATIVE:
        checks.append(st_checks.negative_data_rejection)
    labels, failures = run_every_operation(schema, mode, headers, checks)
    assert any("/services/v2/organisation" in label for label in labels), labels
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
