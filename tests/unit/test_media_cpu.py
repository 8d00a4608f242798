"""Media CPU by operation: counted from any thread, exported to Prometheus."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, generate_latest

from vdx.legs.media_cpu import OPERATIONS, VIDEO_ENCODE, MediaCpu, MediaCpuMetrics


def test_operations_are_summed_from_many_threads_and_exported():
    counters = MediaCpu()

    def work() -> None:
        for _ in range(1000):
            counters.add(VIDEO_ENCODE, 0.25)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls, seconds = counters.totals()[VIDEO_ENCODE]
    assert calls == 4000 and seconds == 1000.0
    assert set(counters.totals()) == set(OPERATIONS)
    registry = CollectorRegistry()
    registry.register(MediaCpuMetrics(counters))
    text = generate_latest(registry).decode()
    assert 'vdx_media_cpu_seconds_total{operation="video_encode"} 1000.0' in text
    assert 'vdx_media_operations_total{operation="video_encode"} 4000.0' in text
    assert 'vdx_media_operations_total{operation="audio_decode"} 0.0' in text
