"""Mesh presets of the paper's Table 1: (refinement limit, minimum examples).

Coarse (538 cells in the paper, built on 2M photos), fine (6565 cells on 14M photos) and fineP
(meant to mimic PlaNet's parameters).
"""

from __future__ import annotations

PRESETS: dict[str, tuple[int, int]] = {
    "coarse": (8000, 1000),
    "fine": (5000, 500),
    "fineP": (10000, 50),
}
