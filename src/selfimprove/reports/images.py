"""Figures as small embedded images: a report is one self-contained HTML file that must stay
quick to open, so every figure is a PNG reduced to a palette of at most 64 colours (a line
plot needs few; this makes it 3-4 times smaller than matplotlib's full-colour PNG)."""

from __future__ import annotations

import base64
import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from PIL import Image

_COLOURS = 64


def png_bytes(figure: Figure) -> bytes:
    """The figure as a palette PNG; closes the figure."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", pad_inches=0.05)
    plt.close(figure)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    reduced = image.quantize(colors=_COLOURS, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    reduced.save(out, format="PNG", optimize=True)
    return out.getvalue()


def img_tag(figure: Figure, alt: str, css_class: str = "") -> str:
    """An `<img>` carrying the figure inline (data URI); `alt` says what it shows."""
    data = base64.b64encode(png_bytes(figure)).decode()
    klass = f' class="{css_class}"' if css_class else ""
    return f'<img{klass} alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
