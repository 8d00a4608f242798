"""The audio format between legs and the mixer: 48 kHz mono int16 in 20 ms chunks.

Legs decode into it and encode from it; the conference mixes it. It lives with the legs so that
the conference depends on them and never the other way round.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48000
CHUNK_SAMPLES = 960  # 20 ms
Pcm = npt.NDArray[np.int16]


def silence() -> Pcm:
    return np.zeros(CHUNK_SAMPLES, dtype=np.int16)
