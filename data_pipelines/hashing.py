"""Stable hashes: split assignment (vectorized) and salted user-id hashing (privacy).

Splits must not move when the data set is rebuilt, re-sharded or grown (appendix A splits are
random but must be reproducible), so they come from a hash of the key we define here, not from
Python's ``hash`` (randomized per process) nor a library's internal hash (may change).
"""

from __future__ import annotations

import hashlib

import numpy as np

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def _as_bytes_matrix(keys) -> tuple[np.ndarray, np.ndarray]:
    """Keys (str/bytes/int array-like) -> (uint8 matrix N x W, lengths N)."""
    arr = np.asarray(keys)
    if arr.dtype.kind in "iu":
        arr = arr.astype(str)
    if arr.dtype.kind == "U":
        try:
            arr = arr.astype("S")
        except UnicodeEncodeError:  # non-ASCII keys: encode one by one (rare; still correct).
            arr = np.array([str(k).encode("utf-8") for k in arr.ravel()], dtype="S")
    elif arr.dtype.kind == "O":
        arr = np.array(
            [k if isinstance(k, bytes) else str(k).encode("utf-8") for k in arr.ravel()], dtype="S"
        )
    arr = arr.ravel()
    width = max(arr.dtype.itemsize, 1)
    if arr.size == 0:
        return np.zeros((0, width), np.uint8), np.zeros((0,), np.int64)
    lengths = np.char.str_len(arr).astype(np.int64)
    matrix = np.frombuffer(arr.tobytes(), np.uint8).reshape(arr.size, arr.dtype.itemsize)
    return matrix, lengths


def _splitmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def stable_hash64(keys, salt: str = "") -> np.ndarray:
    """64-bit FNV-1a of ``salt + '\\x00' + str(key)`` (UTF-8), finished with splitmix64.

    Vectorized over keys (a loop over the <= ~30 byte positions, not over photos). The value of a
    key depends only on the key and the salt, never on the other keys in the array.
    """
    matrix, lengths = _as_bytes_matrix(keys)
    h = np.full(matrix.shape[0], _FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for byte in salt.encode("utf-8") + b"\x00":
            h = (h ^ np.uint64(byte)) * _FNV_PRIME
        for j in range(matrix.shape[1]):
            mixed = (h ^ matrix[:, j].astype(np.uint64)) * _FNV_PRIME
            h = np.where(j < lengths, mixed, h)
        return _splitmix64(h)


def stable_unit(keys, salt: str = "") -> np.ndarray:
    """Maps keys to floats in [0, 1), uniform and stable (top 53 bits of ``stable_hash64``)."""
    return (stable_hash64(keys, salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class UserHasher:
    """Salted, keyed BLAKE2b of a user id -> 16 hex characters (64 bits).

    The salt is per data set and stored in its metadata.json, so hashed ids join across that data
    set's tables but not with other data sets, and the raw Flickr NSID is never written.
    A cache makes repeated users (most YFCC lines) a dict lookup.

    The id is hashed as the bytes the metadata file holds: two different ids are two different
    byte strings, whatever their encoding, so they never share a hash (up to 64-bit collisions),
    whereas decoding first (with replacement characters) would merge every non-UTF-8 id of the
    same length and shape into one user. A ``str`` is taken as its UTF-8 bytes
    (``surrogateescape``, the inverse of how the CSV reader decodes), so a valid UTF-8 id hashes
    the same whether given as text or bytes, and as it did before ids were hashed as bytes.
    """

    def __init__(self, salt: str):
        self._key = hashlib.sha256(salt.encode("utf-8")).digest()[:32]
        self._cache: dict[bytes | str, str] = {}

    def __call__(self, user: bytes | str) -> str:
        hashed = self._cache.get(user)
        if hashed is None:
            raw = user if isinstance(user, bytes) else user.encode("utf-8", "surrogateescape")
            hashed = hashlib.blake2b(raw, digest_size=8, key=self._key).hexdigest()
            if len(self._cache) < 5_000_000:
                self._cache[user] = hashed
        return hashed
