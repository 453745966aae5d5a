"""A contact sheet of demo photos, to look at what the models will see.

    geoloc contact-sheet --demo=DIR --out=sheet.png [--count=48]

Each tile is titled with the photo's true location and its simulated outdoor probability; indoor
photos (whose pixels show an unrelated place) are framed in red.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_pipelines.demo.generate import AUTOTAGS_FILE, IMAGES_DIR, INFO_FILE, METADATA_FILE
from data_pipelines.errors import DatasetError


def draw_contact_sheet(demo_dir: Path, out: Path, count: int = 48, seed: int = 0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    if not (demo_dir / INFO_FILE).exists():
        raise DatasetError(
            f"{demo_dir / INFO_FILE} not found: not a complete demo collection "
            "(expected a folder written by geoloc make-demo)"
        )
    rows = [line.split("\t") for line in (demo_dir / METADATA_FILE).read_text().splitlines()]
    outdoor = {
        line.split("\t")[0]: float(line.split("\t")[1].split(",")[0].split(":")[1])
        for line in (demo_dir / AUTOTAGS_FILE).read_text().splitlines()
    }
    pick = np.random.default_rng(seed).choice(len(rows), size=min(count, len(rows)), replace=False)
    columns = 8
    lines = int(np.ceil(len(pick) / columns))
    figure, axes = plt.subplots(lines, columns, figsize=(columns * 1.6, lines * 1.85))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, index in zip(np.ravel(axes), pick):
        photo_id, lon, lat = rows[index][0], float(rows[index][10]), float(rows[index][11])
        ax.imshow(Image.open(demo_dir / IMAGES_DIR / f"{photo_id}.jpg"))
        p = outdoor[photo_id]
        ax.set_title(f"{lat:.1f}, {lon:.1f}\nout {p:.2f}", fontsize=7)
        if p < 0.5:
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_color("red")
                spine.set_linewidth(2)
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
    figure.suptitle(
        "geoloc demo photos: real locations and Blue Marble imagery; SIMULATED users, "
        "times and indoor photos (red frame: outdoor prob < 0.5)",
        fontsize=8,
    )
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    tmp.replace(out)
    return out
