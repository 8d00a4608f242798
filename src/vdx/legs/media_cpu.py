"""CPU time the media work of this process takes, by operation: each call timed by its own
thread's CPU clock and summed, so an operator (``/manage/metrics``) and a benchmark can tell the
codec work from the rest (packets, mixing, control) and compare each operation with what it
costs alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

VIDEO_DECODE = "video_decode"
VIDEO_SCALE = "video_scale"  # a decoded picture scaled to a tile size, its name drawn on it
VIDEO_COMPOSE = "video_compose"  # a view's picture from tiles already scaled
VIDEO_ENCODE = "video_encode"
AUDIO_DECODE = "audio_decode"  # one RTP payload
AUDIO_ENCODE = "audio_encode"  # 20 ms
OPERATIONS = (VIDEO_DECODE, VIDEO_SCALE, VIDEO_COMPOSE, VIDEO_ENCODE, AUDIO_DECODE, AUDIO_ENCODE)

# The CPU clock of the calling thread: work in the thread pool and on the event loop is each
# counted where it runs, and time spent waiting (for the GIL, for I/O) is not counted.
clock = time.thread_time


class MediaCpu:
    """Calls and CPU seconds per operation, safe to add to from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls = dict.fromkeys(OPERATIONS, 0)
        self._seconds = dict.fromkeys(OPERATIONS, 0.0)

    def add(self, operation: str, seconds: float, calls: int = 1) -> None:
        with self._lock:
            self._calls[operation] += calls
            self._seconds[operation] += seconds

    def totals(self) -> dict[str, tuple[int, float]]:
        """Operation -> (calls, CPU seconds) since the process started."""
        with self._lock:
            return {op: (self._calls[op], self._seconds[op]) for op in OPERATIONS}


# One per process: the codecs are made in many places (legs, views, the self-test) and the
# figures are the process's.
MEDIA_CPU = MediaCpu()


class MediaCpuMetrics(Collector):
    """``/manage/metrics``: ``vdx_media_cpu_seconds_total`` and ``vdx_media_operations_total`` by
    operation, read at each scrape."""

    def __init__(self, counters: MediaCpu = MEDIA_CPU) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        seconds = CounterMetricFamily(
            "vdx_media_cpu_seconds", "CPU seconds of the media work, by operation", labels=["operation"]
        )
        calls = CounterMetricFamily(
            "vdx_media_operations", "Media operations done (pictures, 20 ms of audio)", labels=["operation"]
        )
        for op, (n, cpu) in self.counters.totals().items():
            seconds.add_metric([op], cpu)
            calls.add_metric([op], n)
        yield seconds
        yield calls


__all__ = [
    "AUDIO_DECODE",
    "AUDIO_ENCODE",
    "MEDIA_CPU",
    "OPERATIONS",
    "VIDEO_COMPOSE",
    "VIDEO_DECODE",
    "VIDEO_ENCODE",
    "VIDEO_SCALE",
    "MediaCpu",
    "MediaCpuMetrics",
    "clock",
]
