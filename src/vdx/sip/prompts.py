"""Spoken prompts of the SIP IVR (PIN entry), made with espeak-ng rather than committed as audio.

``ensure(directory)`` writes one WAV per prompt the first time it is needed (``vdx serve`` does it
in ``VDX_DATA_DIR/prompts`` at start-up, off the event loop); ``python -m vdx.sip.prompts DIR``
does the same at build time. Without espeak-ng a prompt is a short two-tone chime, so a PIN room
still tells the caller that it waits for digits.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

log = logging.getLogger("vdx.sip.prompts")

PROMPTS: dict[str, str] = {
    "enter_pin": "Welcome to the meeting. Please enter the PIN, followed by the hash key.",
    "wrong_pin": "That PIN is not correct. Please try again.",
    "pin_wait": "Too many wrong PINs. Please wait, then call again.",
    "capacity_clinical_reserve": "Capacity is reserved for clinical meetings now. Please call later.",
    "capacity_full": "The video service is full. Please call later.",
}


def _chime(path: Path) -> None:
    rate = 16000
    t = np.arange(int(rate * 0.25)) / rate
    tones = [np.sin(2 * np.pi * f * t) for f in (660.0, 880.0)]
    pcm = (np.concatenate(tones) * 9000).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def ensure(directory: Path) -> dict[str, Path]:
    """Every prompt as a WAV in ``directory`` (made if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    espeak = shutil.which("espeak-ng")
    out: dict[str, Path] = {}
    for name, text in PROMPTS.items():
        path = directory / f"{name}.wav"
        if not path.exists() or path.stat().st_size < 100:
            # one temporary file per process: nodes sharing a data directory make them at once
            tmp = path.with_name(f"{name}.{os.getpid()}.tmp.wav")
            if espeak is not None:
                subprocess.run(
                    [espeak, "-v", "en", "-s", "150", "-w", str(tmp), text],
                    check=True,
                    timeout=30,
                    capture_output=True,
                )
            else:
                log.warning("espeak-ng is missing: the %s prompt is a chime", name)
                _chime(tmp)
            tmp.replace(path)
        out[name] = path
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "var/prompts")
    for prompt, wav in ensure(target).items():
        print(prompt, wav)
