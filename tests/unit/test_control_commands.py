"""Conference control commands as they travel between the API and the nodes over NATS: what is
sent is read back the same, and anything else is refused as a bad command, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vdx.node.control import OPS, Answer, Command


def test_a_command_and_an_answer_travel_unchanged() -> None:
    cmd = Command("layout", "123@vdx.test", None, {"hostView": "one_main_zero_pips"}, "tok", ("east", "ward"))
    assert Command.decode(cmd.encode()) == cmd
    answer = Answer(
        404, refusal="participant_not_found", aliases=("123@vdx.test", "123"), actor="host A (p1)"
    )
    assert Answer.decode(answer.encode()) == answer


@pytest.mark.parametrize(
    "data",
    [b"", b"[]", b'{"op": "format_disk"}', b'{"alias": "x"}', b"\xff\xfe", b'{"op": "lock", "args": 3}'],
)
def test_what_is_not_a_command_is_refused(data: bytes) -> None:
    with pytest.raises((ValueError, TypeError)):
        Command.decode(data)


@given(
    st.binary(max_size=200)
    | st.dictionaries(st.text(max_size=8), st.text(max_size=8)).map(str).map(str.encode)
)
def test_no_input_crashes_the_reader(data: bytes) -> None:
    try:
        cmd = Command.decode(data)
    except (ValueError, TypeError):
        return
    assert cmd.op in OPS
