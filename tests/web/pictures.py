"""What a page decoded: JavaScript the browser tests evaluate on the join page's room picture."""

from __future__ import annotations

_CHANNEL = {"red": 0, "green": 1, "blue": 2}


def colour_share(colour: str, video: str = "remote") -> str:
    """``() => share`` of the pixels of the page's ``video`` element (the room picture, or
    ``presentation``) in ``colour`` (red, green or blue): that channel above 150, the other two
    below 90; 0 before the first picture."""
    strong = _CHANNEL[colour]
    weak = [f"d[i + {c}] < 90" for c in _CHANNEL.values() if c != strong]
    return f"""() => {{
  const v = document.getElementById("{video}");
  if (!v.videoWidth) return 0;
  const c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext("2d");
  g.drawImage(v, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + {strong}] > 150 && {" && ".join(weak)}) n++;
  return n / (d.length / 4);
}}"""
