"""Photographers and photos shared by the test set and the training data.

A photographer's photos look alike (same camera, same places, same habits), so a model tested on
photos whose photographer it was trained on scores higher than on strangers' photos: a known source
of inflated Im2GPS3k / YFCC4k numbers for systems trained on YFCC100M subsets such as MP-16 (the
same Flickr users). Where the test photos name their photographers, the report therefore adds, per
model, a row on the test photos whose photographer is absent from the training data beside the row
on all photos, and counts the test photo ids that are themselves in the training data.

Training data of a run: its ingested data set's training splits (``data/tables/<split>.parquet``),
``m1_train`` (trains M1) and ``m23_train`` (trains M2 and M3); a run split by user
(``--data_split_by=user``) has no shared photographer by construction. User ids are compared as
their salted hashes (``data_pipelines.hashing.UserHasher``), so an external test set must hash its
user ids with the training data set's salt (``training_user_hasher``) for its photographers to be
comparable; hashed with any other salt, no photographer matches.

Photos without a photographer (a CSV without a user column makes each photo its own user,
"photo:<id>") cannot leak by photographer: when no test photographer has two photos and none
appears in training, ``has_users`` is False and no photographer-disjoint row is made.

Near-duplicates: a test photo taken where a training photo was (a burst, the same landmark from
the same spot; on the demo collection, the very same coordinates) is nearly a training photo, and
a retrieval model (M1 kNN) all but looks it up. The report therefore also scores every model on the
test photos with no training photo within ``EvalConfig.near_duplicate_km`` great-circle km
(``near_training``, geometry in ``mesh.proximity``), beside all photos, and counts the test photos
near each training split. Location is the one sign of a near-duplicate every data set has (pixel
hashes would need the training images, absent once the records are deleted); it also catches the
same scene photographed by someone else, which photographer-disjoint rows miss.

Photo ids. The run's own test split comes from its training data set: its ids have the training
ids' form and are compared as written. An external test set writes the same Flickr photo otherwise
(MP-16's ``e5/2d/2218633389.jpg``, GeoEstimation's Im2GPS3k ``2218633389_<secret>_<server>_
<owner>.jpg``, YFCC100M's ``2218633389``), so its ids are compared by Flickr photo id
(``data_pipelines.photo_identity.flickr_ids``), on the test photos whose Flickr id is known, when
the training ids have Flickr ids at all: ``num_test_ids_comparable`` of them. Where no test photo
can be compared so, the count is unknown (``num_test_ids_in_training`` None, the reason in
``ids_unknown_reason``), never 0. The ids found as written in the training data
(``num_test_ids_in_training_as_written``) are kept beside it: they catch the one overlap Flickr ids
cannot, two copies of the same non-Flickr data set (OSV-5M's ids, Mapillary's), and say nothing when
0.

Photographers are compared by user hash only: the training tables keep no raw NSID, and an external
set's user ids are hashed with the training salt (``training_user_hasher``), so a test set whose
user column holds the NSID (Im2GPS3k's AUTHOR, YFCC4k's OwnerNSID) is compared already; where the
test photo id is Flickr's file name with its owner, ``external.read_test_set`` hashes that NSID
instead of the user column (GeoEstimation's Im2GPS garbles AUTHOR for some photos).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike, NDArray

from data_pipelines.photo_identity import flickr_ids, numeric_ids_are_flickr
from mesh.geodesy import EARTH_RADIUS_KM
from mesh.proximity import PointIndex

#: The training splits of a run's data set: M1's, and M2's and M3's (``data_pipelines.splits``).
TRAINING_SPLITS: tuple[str, ...] = ("m1_train", "m23_train")

#: The columns read from each training split: ids, photographers, and locations (degrees).
TRAINING_COLUMNS: tuple[str, ...] = ("photo_id", "user_hash", "lat", "lon")


@dataclasses.dataclass(frozen=True)
class TrainingPhotos:
    """Photo ids, user hashes and locations of the photos the models were trained on, per
    training split."""

    splits: dict[str, pd.DataFrame]  # split -> columns photo_id, user_hash, and lat, lon where known
    source: str = ""  # where they were read, for the report
    # The data set's collection format (its summary.json): whether its bare numeric ids are Flickr's.
    id_format: str = ""

    @property
    def has_locations(self) -> bool:
        """Whether every training split gives its photos' lat and lon (a data set's tables do)."""
        return bool(self.splits) and all({"lat", "lon"} <= set(f.columns) for f in self.splits.values())

    @functools.cached_property
    def location_index(self) -> dict[str, PointIndex]:
        """Per training split, its photos' locations indexed for ``near_training`` (built once:
        seconds for millions of photos)."""
        return {
            split: PointIndex(frame["lat"], frame["lon"], f"training split {split} ({self.source})")
            for split, frame in self.splits.items()
        }

    @functools.cached_property
    def user_hashes(self) -> pa.Array:
        """The distinct photographers (user hashes) of every training split (computed once)."""
        return self._distinct("user_hash")

    @functools.cached_property
    def flickr_ids(self) -> dict[str, pa.Array]:
        """Per split, the distinct Flickr photo ids of its photos (``photo_identity.flickr_ids``)."""
        numeric = numeric_ids_are_flickr(self.id_format)
        return {
            split: pc.unique(
                pa.array(flickr_ids(frame["photo_id"], numeric)["flickr_id"].dropna(), pa.string())
            )
            for split, frame in self.splits.items()
        }

    def _distinct(self, column: str) -> pa.Array:
        return pc.unique(
            pa.chunked_array([text(frame[column]) for frame in self.splits.values()], pa.string())
        )


def text(values: ArrayLike) -> pa.Array:
    """Ids as an Arrow string array (set membership over millions of ids is ~10x faster in Arrow
    than in pandas' object or string columns)."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    return pa.array(series.astype(str), pa.string())


def is_in(values: ArrayLike, value_set: pa.Array) -> NDArray[np.bool_]:
    """For each of ``values``, whether it is in ``value_set``."""
    return np.asarray(pc.is_in(text(values), value_set=value_set).to_numpy(zero_copy_only=False), dtype=bool)


def read_training_photos(
    data_dir: str | os.PathLike, splits: Sequence[str] = TRAINING_SPLITS
) -> TrainingPhotos:
    """The training splits' photo ids, user hashes and locations (``TRAINING_COLUMNS``) of the
    data set written at ``data_dir``."""
    from data_pipelines import dataset

    written = dataset.load(os.fspath(data_dir))
    frames = {split: written.table(split, list(TRAINING_COLUMNS)) for split in splits}
    # Named by the data set's name, not its path: the same run gives the same report wherever it lies.
    name = written.metadata.get("dataset_name", "")
    return TrainingPhotos(frames, f"data set {name} ({', '.join(splits)})", _collection_format(data_dir))


def _collection_format(data_dir: str | os.PathLike) -> str:
    """The collection format the data set was ingested from (its summary.json); "" if unknown."""
    import json

    from data_pipelines.ingest.layout import SUMMARY_FILE

    try:
        with open(os.path.join(os.fspath(data_dir), SUMMARY_FILE), encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return ""
    return str(summary.get("format", "")) if isinstance(summary, dict) else ""


def training_user_hasher(data_dir: str | os.PathLike):
    """A ``UserHasher`` with the salt of the data set at ``data_dir`` (its metadata.json): user ids
    of an external test set hashed with it compare with that data set's photographers."""
    from data_pipelines import dataset
    from data_pipelines.hashing import UserHasher

    return UserHasher(dataset.load(os.fspath(data_dir)).user_hash_salt)


def unseen_photographers(user_hash: ArrayLike, training: TrainingPhotos) -> NDArray[np.bool_]:
    """True for each test photo whose photographer (user hash) is in no training split."""
    return ~is_in(user_hash, training.user_hashes)


def leakage_counts(
    photo_id: ArrayLike,
    user_hash: ArrayLike,
    training: TrainingPhotos,
    test_numeric_flickr: bool | None = None,
) -> dict[str, Any]:
    """What the test photos share with the training data: photo ids and photographers, in all and
    per training split, and whether the test photos name photographers at all (``has_users``).

    ``test_numeric_flickr``: None when the test photos are a split of the training data set (ids
    compared as written); for an external test set, whether its bare numeric ids are Flickr photo
    ids (``photo_identity``; ids then compared by Flickr id, module docstring)."""
    ids = np.asarray(photo_id, dtype=object)
    users = pd.Series(np.asarray(user_hash, dtype=object).astype(str))
    unseen = unseen_photographers(users, training)
    as_written = {
        split: is_in(ids, pc.unique(text(frame["photo_id"]))) for split, frame in training.splits.items()
    }
    in_split, comparable, reason = _ids_in_training(ids, training, test_numeric_flickr, as_written)
    per_split = {
        split: {
            "num_training_photos": len(frame),
            "num_test_ids_in_split": int(in_split[split].sum()) if comparable else None,
            "num_test_photos_whose_photographer_is_in_split": int(
                is_in(users, pc.unique(text(frame["user_hash"]))).sum()
            ),
        }
        for split, frame in training.splits.items()
    }
    in_any, written_any = any_split(in_split, len(ids)), any_split(as_written, len(ids))
    return {
        "training": training.source,
        "has_users": bool(users.duplicated().any() or (~unseen).any()),
        "num_photos": len(ids),
        "num_photographers": int(users.nunique()),
        "num_unseen_photographers": int(users[unseen].nunique()),
        "num_photos_unseen_photographers": int(unseen.sum()),
        "photo_ids_compared": "as written" if test_numeric_flickr is None else "by Flickr photo id",
        "num_test_ids_comparable": comparable,
        "num_test_ids_in_training": int(in_any.sum()) if comparable else None,
        "ids_unknown_reason": reason,
        "num_test_ids_in_training_as_written": int(written_any.sum()),
        "by_split": per_split,
    }


def near_training(
    lat: ArrayLike,
    lon: ArrayLike,
    training: TrainingPhotos,
    distance_km: float,
    radius_km: float = EARTH_RADIUS_KM,
) -> dict[str, NDArray[np.bool_]]:
    """Per training split, True for each test photo (degrees) with a photo of that split within
    ``distance_km`` great-circle km on an Earth of ``radius_km`` (the evaluation's)."""
    return {
        split: index.any_within_km(lat, lon, distance_km, radius_km, "test photos")
        for split, index in training.location_index.items()
    }


def no_near_duplicate(
    lat: ArrayLike,
    lon: ArrayLike,
    training: TrainingPhotos,
    distance_km: float,
    radius_km: float = EARTH_RADIUS_KM,
) -> NDArray[np.bool_]:
    """True for each test photo with no photo of any training split within ``distance_km``."""
    return ~any_split(near_training(lat, lon, training, distance_km, radius_km), np.size(lat))


def near_duplicate_counts(
    near: dict[str, NDArray[np.bool_]], num_photos: int, training: TrainingPhotos, distance_km: float
) -> dict[str, Any]:
    """How many of ``num_photos`` test photos have a training photo within ``distance_km``, from
    ``near_training``'s masks: of any training split and per split (a photo near both counts in
    each)."""
    any_near = any_split(near, num_photos)
    return {
        "training": training.source,
        "radius_km": float(distance_km),
        "num_photos": int(np.size(any_near)),
        "num_near_duplicates": int(np.count_nonzero(any_near)),
        "num_no_near_duplicate": int(np.size(any_near) - np.count_nonzero(any_near)),
        "by_split": {
            split: {
                "num_training_photos": len(training.splits[split]),
                "num_test_photos_near": int(np.count_nonzero(mask)),
            }
            for split, mask in near.items()
        },
    }


def any_split(found: dict[str, NDArray[np.bool_]], n: int) -> NDArray[np.bool_]:
    """Which of ``n`` test photos are in (or near) some training split, from per-split masks."""
    return np.asarray(np.vstack([np.zeros(n, bool), *found.values()]).any(axis=0), dtype=bool)


def _ids_in_training(
    ids: NDArray[Any],
    training: TrainingPhotos,
    test_numeric_flickr: bool | None,
    as_written: dict[str, NDArray[np.bool_]],
) -> tuple[dict[str, NDArray[np.bool_]], int, str]:
    """Per split, which test photos are in it; how many test photos could be compared; and why
    none could ("" when some could)."""
    if test_numeric_flickr is None:  # a split of the training data set: same id form
        return as_written, len(ids), ""
    test = flickr_ids(ids, test_numeric_flickr)["flickr_id"]
    known = test.notna().to_numpy()
    trained = training.flickr_ids
    train_known = any(len(v) for v in trained.values())
    problems = []
    if not known.any():
        problems.append("no test photo id is a recognisable Flickr photo id")
    if not train_known:
        problems.append("no training photo id is a recognisable Flickr photo id")
    if problems:
        return {split: np.zeros(len(ids), bool) for split in trained}, 0, "; ".join(problems)
    found = {split: known & is_in(test.fillna(""), value_set) for split, value_set in trained.items()}
    return found, int(known.sum()), ""
