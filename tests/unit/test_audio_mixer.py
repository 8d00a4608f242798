"""Mix-minus and active speaker (architecture.md 3)."""

from __future__ import annotations

import numpy as np

from vdx.conference.audio_mixer import ActiveSpeaker, NoiseGate, VoiceQueue, level, mix_minus
from vdx.legs.pcm import CHUNK_SAMPLES


def tone(hz: float, amp: int = 5000) -> np.ndarray:
    t = np.arange(CHUNK_SAMPLES) / 48000
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def test_each_listener_hears_everyone_but_themselves():
    chunks = {"a": tone(400), "b": tone(700), "c": tone(1100)}
    out = mix_minus(chunks, muted=set())
    a, b = out.for_listener("a"), out.for_listener("b")
    assert np.array_equal(a, (chunks["b"].astype(np.int32) + chunks["c"]).astype(np.int16))
    assert np.array_equal(b, (chunks["a"].astype(np.int32) + chunks["c"]).astype(np.int16))
    total = sum(c.astype(np.int32) for c in chunks.values())
    assert np.array_equal(out.for_listener("listener"), total.astype(np.int16))


def test_listeners_out_of_the_mix_share_one_common_mix():
    """Only voices in the mix get a mix-minus of their own; the rest hear one array (encoded once)."""
    out = mix_minus({"a": tone(400), "b": tone(700)}, muted={"b"})
    assert set(out.own) == {"a"}
    assert out.for_listener("b") is out.for_listener("listener") is out.common
    assert np.array_equal(out.common, tone(400))


def test_muted_talkers_are_not_mixed_but_still_listen():
    chunks = {"a": tone(400), "b": tone(700)}
    out = mix_minus(chunks, muted={"b"})
    assert np.array_equal(out.for_listener("a"), np.zeros(CHUNK_SAMPLES, dtype=np.int16))
    assert np.array_equal(out.for_listener("b"), chunks["a"])


def test_the_sum_clips_instead_of_wrapping():
    loud = np.full(CHUNK_SAMPLES, 30000, dtype=np.int16)
    out = mix_minus({"a": loud, "b": loud}, muted=set())
    assert int(out.for_listener("c").min()) == 32767


def test_noise_gate_mixes_voices_and_keeps_a_words_tail():
    gate = NoiseGate(threshold=100.0, hangover=3)
    hiss, voice = level(tone(400, 40)), level(tone(400, 3000))
    assert gate.update({"a": hiss, "b": hiss}) == set()  # a silent room mixes nobody
    assert gate.update({"a": voice, "b": hiss}) == {"a"}
    for _ in range(3):  # the tail of a word: still mixed for the hangover
        assert gate.update({"a": hiss, "b": hiss}) == {"a"}
    assert gate.update({"a": hiss, "b": hiss}) == set()
    assert gate.update({"b": voice}) == {"b"}  # someone who left is forgotten


def test_active_speaker_is_the_loudest_and_holds_against_blips():
    s = ActiveSpeaker(hold=5)
    quiet, loud = level(tone(400, 100)), level(tone(400, 8000))
    assert s.update({"a": quiet, "b": quiet}) is None  # below the threshold nobody speaks
    for _ in range(10):
        s.update({"a": loud, "b": quiet})
    assert s.current == "a"
    for _ in range(2):  # a short interjection does not switch
        s.update({"a": quiet, "b": loud * 3})
    assert s.current == "a"
    for _ in range(30):  # a sustained one does
        s.update({"a": quiet, "b": loud})
    assert s.current == "b"
    # Two equally loud voices do not flicker.
    changes, last = 0, s.current
    for i in range(100):
        s.update({"a": loud * (1.05 if i % 2 else 1), "b": loud})
        changes += s.current != last
        last = s.current
    assert changes <= 1
    s.forget("b")
    assert s.current is None


def numbered(n: int) -> np.ndarray:
    return np.full(CHUNK_SAMPLES, n, dtype=np.int16)


def test_voice_queue_absorbs_a_burst_then_drops_the_backlog_it_never_needed():
    """A stalled loop delivers 8 chunks at once, then one arrives per tick: at first they all
    play in order (nothing lost to the burst), but after a second in which the queue never ran dry
    the standing backlog is dropped, so the talker is no longer 160 ms late."""
    q = VoiceQueue(capacity=10, window=50)
    for n in range(8):
        q.append(numbered(n))
    taken = []
    for n in range(8, 108):  # one new chunk per tick, the mixer takes one per tick
        q.append(numbered(n))
        taken.append(int(q.popleft()[0]))
    assert taken[:10] == list(range(10))  # the burst is played, not lost
    assert len(q) <= 1  # the backlog is gone: what is taken now is what just arrived
    assert taken[-1] >= 106
    assert q.dropped == 8  # all of the burst's backlog, after one second


def test_voice_queue_keeps_what_jitter_needs():
    """Chunks that arrive two at a time every other tick: the queue runs dry every other tick,
    so nothing is dropped and nothing is late by more than a tick."""
    q = VoiceQueue(capacity=10, window=50)
    taken = []
    for tick in range(200):
        if tick % 2 == 0:
            q.append(numbered(tick))
            q.append(numbered(tick + 1))
        if q:
            taken.append(int(q.popleft()[0]))
    assert q.dropped == 0
    assert taken == list(range(200))


def test_voice_queue_holds_at_most_its_capacity():
    q = VoiceQueue(capacity=10)
    for n in range(25):
        q.append(numbered(n))
    assert len(q) == q.maxlen == 10
    assert int(q.popleft()[0]) == 15  # the oldest went first
