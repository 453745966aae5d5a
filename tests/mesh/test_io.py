"""save/load round trip, versioning, GeoJSON."""

import json

import numpy as np
import pytest

from mesh import FORMAT_VERSION, Mesh
from mesh.errors import MeshFormatError


def test_save_load_round_trip(small_mesh, tmp_path, make_points):
    path = tmp_path / "m.npz"
    small_mesh.save(path)
    m = Mesh.load(path)
    for name in ("vertices", "triangles", "triangle_counts", "cell_triangle"):
        assert np.array_equal(getattr(m, name), getattr(small_mesh, name))
    np.testing.assert_array_equal(m.imagery_centroids, small_mesh.imagery_centroids)
    np.testing.assert_array_equal(m.cell_centroids, small_mesh.cell_centroids)
    assert (m.refinement_limit, m.min_examples, m.init_grid) == (400, 40, 11)
    lat, lon = make_points(3000, seed=4)
    assert np.array_equal(m.locate(lat, lon), small_mesh.locate(lat, lon))
    small_mesh.save(tmp_path / "mesh.npz")
    assert Mesh.load(tmp_path).num_cells == m.num_cells  # a directory means <dir>/mesh.npz


def test_newer_format_version_fails_clearly(small_mesh, tmp_path):
    path = tmp_path / "m.npz"
    small_mesh.save(path)
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    data["format_version"] = np.array(FORMAT_VERSION + 1)
    with open(path, "wb") as f:
        np.savez(f, **data)
    with pytest.raises(MeshFormatError, match="newer"):
        Mesh.load(path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(MeshFormatError, match="no such mesh file"):
        Mesh.load(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(MeshFormatError):
        Mesh.load(bad)


def test_geojson_cells_and_antimeridian(small_mesh):
    g = json.loads(json.dumps(small_mesh.to_geojson()))
    assert g["type"] == "FeatureCollection"
    assert len(g["features"]) == small_mesh.num_cells
    f0 = g["features"][0]["properties"]
    assert set(f0) == {
        "class_id",
        "count",
        "cell_centroid_lat",
        "cell_centroid_lon",
        "imagery_centroid_lat",
        "imagery_centroid_lon",
    }
    split = 0
    for f in small_mesh.to_geojson(include_dropped=True)["features"]:
        geom = f["geometry"]
        polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        split += geom["type"] == "MultiPolygon"
        for poly in polys:
            ring = np.array(poly[0])
            assert np.all(np.abs(ring[:, 0]) <= 180.0) and np.all(np.abs(ring[:, 1]) <= 90.0)
            assert np.array_equal(ring[0], ring[-1])
            # no edge jumps across the map, except along a pole (a cell containing a pole)
            jump = np.abs(np.diff(ring[:, 0])) > 180.0
            at_pole = (np.abs(ring[:-1, 1]) == 90.0) & (np.abs(ring[1:, 1]) == 90.0)
            assert np.all(~jump | at_pole)
    assert split > 0  # some triangles straddle 180 degrees and are cut there


def test_atomic_write_creates_parent_and_leaves_no_temp(tmp_path):
    from mesh.atomic import write_text_atomic

    target = tmp_path / "a" / "b" / "s.json"
    write_text_atomic(target, "{}\n")
    write_text_atomic(target, '{"x": 1}\n')  # replaces in place
    assert target.read_text() == '{"x": 1}\n'
    assert [p.name for p in target.parent.iterdir()] == ["s.json"]


def test_a_failed_atomic_write_keeps_the_old_file_and_folder(tmp_path):
    import pytest

    from mesh.atomic import atomic_dir, atomic_path, write_text_atomic

    target = tmp_path / "model.keras"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.endswith(".keras")  # tools that check the suffix accept it
            open(tmp, "w").write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    folder = tmp_path / "export"
    with atomic_dir(folder) as tmp:
        open(f"{tmp}/a.txt", "w").write("first")
    with pytest.raises(RuntimeError):
        with atomic_dir(folder) as tmp:
            open(f"{tmp}/a.txt", "w").write("second")
            raise RuntimeError("killed")
    assert (folder / "a.txt").read_text() == "first"
    with atomic_dir(folder) as tmp:
        open(f"{tmp}/b.txt", "w").write("third")
    assert sorted(p.name for p in folder.iterdir()) == ["b.txt"]  # replaced whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "model.keras"]
