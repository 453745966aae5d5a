"""`geoloc make-demo` and `geoloc contact-sheet`: the demo collection (real MP-16 locations and NASA
Blue Marble imagery; SIMULATED users, posting times and indoor photos), and a sheet of its photos.

    geoloc make-demo --out=DIR [--demo_size=small|default] [--seed=0]
                     [--format=yfcc100m|osv5m|mp16pro|webdataset]
    geoloc contact-sheet --demo=DIR --out=sheet.png [--count=48]

`--demo_size`, `--seed` and `--format` are the data section's settings (`IngestConfig`, the runner's
`--data_demo_size`, `--data_seed` and `--data_format`); `--image_size` and `--workers` are the
generator's (`DemoSpec`); the rest are the tools' own. `--format` picks
the layout (`data_pipelines.demo.formats`); its default, auto, writes the YFCC100M layout.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from absl import flags

from data_pipelines.config import IngestConfig
from experiments.commands import Command, require
from experiments.errors import ConfigError
from experiments.settings_flags import define_setting_flags


def _define_make_demo(flag_values: flags.FlagValues) -> None:
    from data_pipelines.demo.generate import SIZES, DemoSpec

    define_setting_flags(
        flag_values,
        {"": IngestConfig},
        module_name="geoloc make-demo: settings",
        only=("demo_size", "seed", "format"),
    )
    flags.DEFINE_string("out", None, "Folder to write the collection into.", flag_values=flag_values)
    flags.DEFINE_integer(
        "num_photos",
        None,
        f"Photos to generate; overrides --demo_size {SIZES}.",
        lower_bound=1,
        flag_values=flag_values,
    )
    define_setting_flags(flag_values, {"": DemoSpec}, module_name="geoloc make-demo: settings")
    require(flag_values, "out")


def _make_demo(_: dict[str, Any], inputs: flags.FlagValues, __: list[str]) -> int:
    from data_pipelines.demo.formats import FORMATS, write_collection
    from data_pipelines.demo.generate import SIZES, DemoSpec

    logging.basicConfig(
        level=logging.INFO, datefmt="%H:%M:%S", format="%(asctime)s %(levelname).1s %(name)s] %(message)s"
    )
    fmt = "yfcc100m" if inputs.format == "auto" else inputs.format
    if fmt not in FORMATS:
        raise ConfigError(
            f"--format={inputs.format}: make-demo writes the layouts {', '.join(FORMATS)} (auto: yfcc100m)"
        )
    spec = DemoSpec(
        num_photos=inputs.num_photos or SIZES[inputs.demo_size],
        seed=inputs.seed,
        image_size=inputs.image_size,
        workers=inputs.workers,
    )
    written = write_collection(inputs.out, fmt, spec)
    info = written["info"]
    summary = {
        k: info[k] for k in ("photos", "users", "photos_per_user", "indoor_share", "generation_seconds")
    }
    summary.update(format=fmt, metadata=written["metadata"], images=written["images"])
    print(json.dumps(summary, indent=2))
    return 0


def _define_contact_sheet(flag_values: flags.FlagValues) -> None:
    flags.DEFINE_string("demo", None, "A folder written by geoloc make-demo.", flag_values=flag_values)
    flags.DEFINE_string("out", None, "PNG to write.", flag_values=flag_values)
    flags.DEFINE_integer("count", 48, "Photos on the sheet.", lower_bound=1, flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Seed of the draw of photos.", lower_bound=0, flag_values=flag_values)
    require(flag_values, "demo", "out")


def _contact_sheet(_: dict[str, Any], inputs: flags.FlagValues, __: list[str]) -> int:
    from data_pipelines.demo.contact_sheet import draw_contact_sheet

    print(draw_contact_sheet(Path(inputs.demo), Path(inputs.out), inputs.count, inputs.seed))
    return 0


MAKE_DEMO = Command(
    name="make-demo",
    summary="Write the demo collection in the YFCC100M, OSV-5M, MP16-Pro or webdataset layout (real "
    "locations and imagery; SIMULATED users, times and indoor photos).",
    define_inputs=_define_make_demo,
    run=_make_demo,
)

CONTACT_SHEET = Command(
    name="contact-sheet",
    summary="Draw a contact sheet of demo photos (red frame: SIMULATED indoor photo).",
    define_inputs=_define_contact_sheet,
    run=_contact_sheet,
)
