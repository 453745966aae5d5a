"""`geoloc make-demo` and `geoloc contact-sheet`: the demo collection (real MP-16 locations and NASA
Blue Marble imagery; SIMULATED users, posting times and indoor photos), and a sheet of its photos.

    geoloc make-demo --out=DIR [--demo_size=small|default] [--seed=0]
    geoloc contact-sheet --demo=DIR --out=sheet.png [--count=48]

`--demo_size` and `--seed` are the data section's settings (`IngestConfig`, the runner's
`--data_demo_size` and `--data_seed`); the rest are the tools' own.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from absl import flags

from data_pipelines.config import IngestConfig
from experiments.commands import Command, require
from experiments.settings_flags import define_setting_flags


def _define_make_demo(flag_values: flags.FlagValues) -> None:
    from data_pipelines.demo.generate import DEFAULT_IMAGE_SIZE, SIZES

    define_setting_flags(
        flag_values, {"": IngestConfig}, module_name="geoloc make-demo: settings", only=("demo_size", "seed")
    )
    flags.DEFINE_string("out", None, "Folder to write the collection into.", flag_values=flag_values)
    flags.DEFINE_integer(
        "num_photos",
        None,
        f"Photos to generate; overrides --demo_size {SIZES}.",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "image_size",
        DEFAULT_IMAGE_SIZE,
        "Side of the square photos, px.",
        lower_bound=8,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "workers", 0, "Processes rendering images; 0: all cores.", lower_bound=0, flag_values=flag_values
    )
    require(flag_values, "out")


def _make_demo(_: dict[str, Any], inputs: flags.FlagValues, __: list[str]) -> int:
    from data_pipelines.demo.generate import SIZES, DemoSpec, generate

    logging.basicConfig(
        level=logging.INFO, datefmt="%H:%M:%S", format="%(asctime)s %(levelname).1s %(name)s] %(message)s"
    )
    spec = DemoSpec(
        num_photos=inputs.num_photos or SIZES[inputs.demo_size],
        seed=inputs.seed,
        image_size=inputs.image_size,
        workers=inputs.workers,
    )
    info = generate(inputs.out, spec)
    print(
        json.dumps(
            {
                k: info[k]
                for k in ("photos", "users", "photos_per_user", "indoor_share", "generation_seconds")
            },
            indent=2,
        )
    )
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
    summary="Write the demo collection in the YFCC100M layout (real locations and imagery; "
    "SIMULATED users, times and indoor photos).",
    define_inputs=_define_make_demo,
    run=_make_demo,
)

CONTACT_SHEET = Command(
    name="contact-sheet",
    summary="Draw a contact sheet of demo photos (red frame: SIMULATED indoor photo).",
    define_inputs=_define_contact_sheet,
    run=_contact_sheet,
)
