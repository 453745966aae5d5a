"""The CLIs: CSV header variants, bad rows, clear errors, outputs; best possible on a hand example."""

import json
import math

import numpy as np
import pytest

from experiments.cli import main as geoloc
from mesh import build_mesh
from mesh.best_possible import best_possible
from mesh.coords_csv import read_coords_csv
from mesh.geodesy import great_circle_km


def build_main(args):
    return geoloc(["build-mesh", *args])


def best_main(args):
    return geoloc(["best-possible", *args])


@pytest.mark.parametrize(
    "header,order",
    [
        ("lat,lon", (0, 1)),
        ("LAT,LON", (0, 1)),
        ("Latitude,Longitude", (0, 1)),
        ("id,lng,lat", (2, 1)),
        ('"longitude","latitude"', (1, 0)),
    ],
)
def test_csv_header_variants(tmp_path, header, order):
    rows = [(10.5, 20.25), (-33.0, 151.0)]
    lines = [header]
    for la, lo in rows:
        vals = {order[0]: la, order[1]: lo}
        n = len(header.split(","))
        lines.append(",".join(str(vals.get(i, 7)) for i in range(n)))
    f = tmp_path / "c.csv"
    f.write_text("\n".join(lines) + "\n")
    c = read_coords_csv(f)
    assert c.lat.tolist() == [10.5, -33.0] and c.lon.tolist() == [20.25, 151.0]
    assert c.rows_skipped == 0


def test_bad_rows_are_skipped_and_counted(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("lat,lon\n1,2\nabc,3\n91,0\n4,\nnan,5\n6,-181\n7,8\n")
    c = read_coords_csv(f)
    assert c.lat.tolist() == [1.0, 7.0]
    assert (c.rows_total, c.rows_skipped) == (7, 5)
    assert c.bad_examples[0].startswith(f"{f}:3:")  # file:line of the first bad row
    assert f"{f}:4:" in c.bad_examples[1]


def test_out_of_range_rows_in_a_clean_file(tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("lat,lon\n1,2\n95,3\n")
    c = read_coords_csv(f)
    assert (c.lat.size, c.rows_skipped) == (1, 1)
    assert c.bad_examples[0].startswith(f"{f}:3:")


def test_build_cli_missing_file_is_one_clear_line(tmp_path, capsys):
    rc = build_main([f"--coords={tmp_path}/nope.csv", "--preset=coarse", f"--out={tmp_path}/o"])
    err = capsys.readouterr().err
    assert rc != 0
    assert err.startswith("error:") and "nope.csv" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_build_cli_bad_header_and_missing_args(tmp_path, capsys):
    f = tmp_path / "h.csv"
    f.write_text("x,y\n1,2\n")
    assert build_main([f"--coords={f}", "--preset=fine", f"--out={tmp_path}/o"]) == 2
    assert "latitude" in capsys.readouterr().err
    assert build_main([f"--coords={f}", f"--out={tmp_path}/o"]) == 2  # neither preset nor limits
    assert build_main(["--bogus"]) == 2


def test_build_and_best_possible_cli(tmp_path, capsys, make_points):
    lat, lon = make_points(3000, seed=2)
    f = tmp_path / "pts.csv"
    lines = ["Latitude,Longitude"] + [f"{a:.6f},{b:.6f}" for a, b in zip(lat, lon)] + ["oops,1"]
    f.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    rc = build_main(
        [f"--coords={f}", "--refinement_limit=300", "--min_examples=30", "--init_grid=11", f"--out={out}"]
    )
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_skipped"] == 1 and summary["photos"] == 3000
    assert summary["cells_kept"] > 0 and summary["photos_per_cell"]["max"] <= 300
    assert summary["photos_per_cell"]["min"] >= 30
    assert summary["cells_kept"] + summary["cells_dropped"] == summary["triangles"]
    g = json.loads((out / "mesh.geojson").read_text())
    assert len(g["features"]) == summary["cells_kept"]
    assert (out / "mesh.png").read_bytes()[:4] == b"\x89PNG"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    capsys.readouterr()
    assert best_main([f"--mesh={out}", f"--coords={f}"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["num_photos"] == 3000
    assert {r["label_point"] for r in table["rows"]} == {"cell centroid", "imagery centroid"}


def test_best_possible_hand_example(make_points):
    lat, lon = make_points(4000, seed=3)
    m = build_mesh(lat, lon, refinement_limit=500, min_examples=50, init_grid=11)
    # photo 1 sits exactly on a cell centroid; photo 2 lies 0.1 degree (11.1 km) north of another
    # cell's imagery centroid (inside that cell); photo 3 lies in a dropped cell.
    c0 = m.cell_centroids[0]
    i1 = m.imagery_centroids[1]
    dropped_tri = np.flatnonzero(m.triangle_class < 0)[0]
    v = m.vertices[m.triangles[dropped_tri]].mean(axis=0)
    d_lat = math.degrees(math.asin(v[2] / np.linalg.norm(v)))
    d_lon = math.degrees(math.atan2(v[1], v[0]))
    hl = np.array([c0[0], i1[0] + 0.1, d_lat])
    ho = np.array([c0[1], i1[1], d_lon])
    cls = m.locate(hl, ho)
    assert cls[0] == 0 and cls[1] == 1 and cls[2] == -1
    t = best_possible(m, hl, ho)
    assert t["num_in_kept_cells"] == 2 and math.isclose(t["share_in_kept_cells_percent"], 200 / 3)
    rows = {(r["label_point"], r["over"]): r for r in t["rows"]}
    img_kept = rows[("imagery centroid", "photos in kept cells")]
    # photo 2 is 11.12 km from its label: within 25 km but not 1 km; photo 1's distance to the
    # imagery centroid of cell 0 decides the rest
    d1 = float(great_circle_km(c0[0], c0[1], m.imagery_centroids[0, 0], m.imagery_centroids[0, 1]))
    assert math.isclose(img_kept["accuracy_percent"]["1"], 50.0 * (d1 <= 1.0))
    assert img_kept["accuracy_percent"]["25"] == 50.0 * (1 + (d1 <= 25.0))
    cell_kept = rows[("cell centroid", "photos in kept cells")]
    assert cell_kept["accuracy_percent"]["1"] >= 50.0  # photo 1 is exactly on its cell centroid
    # the dropped photo is scored against the nearest cell centroid of any kept cell
    d3 = great_circle_km(d_lat, d_lon, m.cell_centroids[:, 0], m.cell_centroids[:, 1]).min()
    d2 = float(great_circle_km(hl[1], ho[1], m.cell_centroids[1, 0], m.cell_centroids[1, 1]))
    all_cell = rows[("cell centroid", "all photos")]
    assert math.isclose(all_cell["mean_km"], (0.0 + d2 + d3) / 3, rel_tol=1e-9, abs_tol=1e-9)


def test_csv_without_final_newline_and_with_blank_lines(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("lat,lon\n1,2\n3,4")
    assert read_coords_csv(f).lat.tolist() == [1.0, 3.0]
    g = tmp_path / "b.csv"
    g.write_text("lat,lon\n1,2\n\n95,4\n5,6\n")
    c = read_coords_csv(g)
    assert c.lat.tolist() == [1.0, 5.0] and c.rows_skipped == 1
    assert c.bad_examples[0].startswith(f"{g}:4:")  # line numbers count the blank line
