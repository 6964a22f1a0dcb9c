"""Matplotlib without a display, and PNGs written atomically: the two things every chart here needs."""

from __future__ import annotations

import io
from pathlib import Path

from hetplace.common.io import atomic_write_bytes


def pyplot():
    """pyplot on the Agg backend (no display on CI machines and servers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, out: Path) -> None:
    """Lay out, write to a temporary file, rename into place, and free the figure."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    atomic_write_bytes(out, buf.getvalue())
    pyplot().close(fig)
