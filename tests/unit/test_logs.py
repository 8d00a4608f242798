"""The console's format: text for a person at a terminal, JSON lines otherwise, or as set."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from vdx import logs
from vdx.settings import Settings


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def line_written(fmt: logs.LogFormat, stream: io.StringIO) -> str:
    logs.setup(fmt, "INFO", stream=stream)
    logging.getLogger("vdx.test").info("room %s opened", "1234@vdx.test", extra={"fields": {"n": 2}})
    return stream.getvalue()


def test_auto_is_text_on_a_terminal_and_json_otherwise() -> None:
    assert logs.chosen_format("auto", Terminal()) == "text"
    assert logs.chosen_format("auto", io.StringIO()) == "json"
    text = line_written("auto", Terminal())
    assert text.count("\n") == 1 and "INFO  vdx.test: room 1234@vdx.test opened n=2" in text
    entry = json.loads(line_written("auto", io.StringIO()))
    assert (entry["level"], entry["logger"], entry["message"], entry["n"]) == (
        "INFO",
        "vdx.test",
        "room 1234@vdx.test opened",
        2,
    )


def test_the_setting_forces_either_format() -> None:
    assert logs.chosen_format("json", Terminal()) == "json"
    assert logs.chosen_format("text", io.StringIO()) == "text"
    json.loads(line_written("json", Terminal()))
    assert line_written("text", io.StringIO()).split(" ", 1)[1].startswith("INFO  vdx.test: room")


def test_the_setting_defaults_to_auto_and_takes_only_the_three_formats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VDX_LOG_FORMAT", raising=False)
    assert Settings().log_format == "auto"
    monkeypatch.setenv("VDX_LOG_FORMAT", "text")
    assert Settings().log_format == "text"
    monkeypatch.setenv("VDX_LOG_FORMAT", "yaml")
    with pytest.raises(ValueError):
        Settings()


async def test_only_the_in_process_nodes_successful_calls_are_quiet() -> None:
    levels: list[int] = []

    async def app(scope: object, receive: object, send: object) -> None:
        levels.extend([logs.access_level(200), logs.access_level(503)])

    assert logs.access_level(200) == logging.INFO
    await logs.internal_calls(app)({}, None, None)  # type: ignore[arg-type]
    assert levels == [logging.DEBUG, logging.INFO]
    assert logs.access_level(200) == logging.INFO
