"""Demo "photos": patches of NASA's Blue Marble around a location, each one made different.

The Blue Marble is an equirectangular image of the whole Earth (5400 x 2700 px: 15 px per degree,
about 7.4 km per pixel at the equator). A demo photo of a place is a square patch of it around the
place, seen through a random camera so that no two photos are alike and the pixels are not a pure
function of the label:

- offset: the patch centre is moved by up to `max_offset_px` raster pixels (about 90 km);
- scale: one output pixel covers between `min_zoom` and `max_zoom` raster pixels, so a 96 px photo
  shows a region 4 to 10 degrees wide;
- rotation: up to +-`max_rotation_deg`;
- colour: brightness, contrast and saturation jitter, then pixel noise;
- JPEG compression at a random quality.

Sampling is bilinear; the longitude wraps around the antimeridian and a patch reaching over a pole
continues on the other side of it, as on a globe.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Camera:
    """Ranges of the random camera (not from the paper: chosen so patches look varied but local)."""

    max_offset_px: float = 12.0
    min_zoom: float = 0.6
    max_zoom: float = 1.6
    max_rotation_deg: float = 30.0
    jitter: float = 0.2  # brightness, contrast and saturation factors in [1 - jitter, 1 + jitter]
    noise_std: float = 3.0  # grey levels
    min_quality: int = 55
    max_quality: int = 95


class Raster:
    """An equirectangular Earth image, sampled at lat/lon with bilinear interpolation."""

    def __init__(self, pixels: np.ndarray):
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.shape[1] != 2 * pixels.shape[0]:
            raise ValueError(
                f"expected an equirectangular RGB image with width = 2 x height, got shape {pixels.shape}"
            )
        # one extra column (a copy of the first) so bilinear sampling wraps at the antimeridian
        self.pixels = np.concatenate([pixels, pixels[:, :1]], axis=1).astype(np.float32)
        self.height, self.width = pixels.shape[0], pixels.shape[1]

    @classmethod
    def load(cls, path: Path | str) -> "Raster":
        from PIL import Image

        Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, 5400 * 2700 + 1)
        with Image.open(path) as image:
            return cls(np.asarray(image.convert("RGB")))

    def to_pixel(self, lat: float, lon: float) -> tuple[float, float]:
        """(row, column) of a location, continuous, pixel centres at integers."""
        return (90.0 - lat) / 180.0 * self.height - 0.5, (lon + 180.0) / 360.0 * self.width - 0.5

    def sample(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Bilinear samples (..., 3) at continuous pixel positions, wrapping like a globe."""
        h, w = self.height, self.width
        over_pole = (rows < -0.5) | (rows > h - 0.5)
        rows = np.where(rows < -0.5, -1.0 - rows, np.where(rows > h - 0.5, 2 * h - 1.0 - rows, rows))
        cols = np.where(over_pole, cols + w / 2, cols)
        rows = np.clip(rows, 0.0, h - 1.0)
        cols = np.mod(cols, w)
        r0 = np.minimum(np.floor(rows).astype(np.int64), h - 2)
        c0 = np.floor(cols).astype(np.int64)
        fr = (rows - r0)[..., None]
        fc = (cols - c0)[..., None]
        p = self.pixels
        top = p[r0, c0] * (1 - fc) + p[r0, c0 + 1] * fc
        bottom = p[r0 + 1, c0] * (1 - fc) + p[r0 + 1, c0 + 1] * fc
        return top * (1 - fr) + bottom * fr


def render_photo(
    raster: Raster, lat: float, lon: float, size: int, rng: np.random.Generator, camera: Camera = Camera()
) -> bytes:
    """JPEG bytes of one random view of the place at lat/lon (see the module docstring)."""
    from PIL import Image

    row0, col0 = raster.to_pixel(lat, lon)
    row0 += rng.uniform(-camera.max_offset_px, camera.max_offset_px)
    col0 += rng.uniform(-camera.max_offset_px, camera.max_offset_px)
    zoom = rng.uniform(camera.min_zoom, camera.max_zoom)
    angle = np.radians(rng.uniform(-camera.max_rotation_deg, camera.max_rotation_deg))
    offsets = (np.arange(size) - (size - 1) / 2.0) * zoom
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    rows = row0 + dy * np.cos(angle) - dx * np.sin(angle)
    cols = col0 + dy * np.sin(angle) + dx * np.cos(angle)
    pixels = raster.sample(rows, cols)

    low, high = 1 - camera.jitter, 1 + camera.jitter
    grey = pixels.mean(axis=2, keepdims=True)
    pixels = grey + (pixels - grey) * rng.uniform(low, high)  # saturation
    pixels = pixels.mean() + (pixels - pixels.mean()) * rng.uniform(low, high)  # contrast
    pixels = pixels * rng.uniform(low, high)  # brightness
    pixels = pixels + rng.normal(0.0, camera.noise_std, size=pixels.shape)
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=int(rng.integers(camera.min_quality, camera.max_quality + 1)))
    return out.getvalue()
