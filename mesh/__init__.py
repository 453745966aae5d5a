"""geoloc's classification mesh: adaptive Delaunay triangles on the sphere (paper §3.1.1).

Pure numpy/scipy (never TensorFlow): the lowest layer of geoloc, usable alone by a GIS person.

- ``build_mesh(lat, lon, refinement_limit, min_examples)`` -> ``Mesh`` (Table 1 presets in
  ``mesh.presets.PRESETS``); ``Mesh.locate`` gives class ids (-1 in dropped cells).
- ``mesh.geodesy.great_circle_km``: the project's one great-circle distance (§3.1.3).
- ``mesh.best_possible``: Table 6's "Best Possible" rows.
- ``mesh.proximity``: which points have one of a (large) set of points within r great-circle km.
- ``mesh.build.build_from_config``: the mesh a ``mesh.config.MeshConfig`` describes; the command
  line tools are ``geoloc build-mesh`` and ``geoloc best-possible`` (package ``experiments``).
"""

from mesh.errors import MeshError, MeshFormatError
from mesh.mesh import FORMAT_VERSION, MESH_FILE, Mesh, build_mesh
from mesh.presets import PRESETS

__all__ = ["FORMAT_VERSION", "MESH_FILE", "Mesh", "MeshError", "MeshFormatError", "PRESETS", "build_mesh"]
