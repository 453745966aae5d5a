"""geoloc: estimate where on Earth a photo was taken, from its pixels and its metadata.

Install (see README.md and BUILD.md):
    pip install -e ".[cpu,test]"     # CPU-only machines and CI (tensorflow-cpu, 274 MB wheel)
    pip install -e ".[gpu,test]"     # NVIDIA GPUs (tensorflow[and-cuda])

TensorFlow is in an extra, not in install_requires: `tensorflow-cpu` and `tensorflow` install the same
`tensorflow` package and must never be installed together, so the user picks one. `mesh/` needs only
numpy and scipy and works without either.
"""

from setuptools import find_packages, setup

TF_VERSION = "2.21.0"

# Versions that install together on Python 3.11 (resolved and tested; BUILD.md says why each).
REQUIRED = [
    "keras==3.15.1",
    "tensorflow-datasets==4.9.10",
    "tensorboard==2.21.0",  # TF 2.21 no longer installs it; keras' TensorBoard callback needs it
    "numpy==2.4.6",
    "scipy==1.17.1",
    "pandas==3.1.1",
    "pyarrow==25.0.1",  # Parquet tables of per-photo predictions and metadata (Beam 2.77: < 26)
    "absl-py==2.5.1",
    "matplotlib==3.11.2",
    "pillow==12.3.0",  # the one image decoder (data_pipelines.images); Beam 2.77 needs < 13
    "reverse_geocoder==1.5.1",  # offline admin-level accuracy, as OSV-5M (geoloc_tf.evaluation.admin)
    "tqdm==4.70.1",  # progress bars on a terminal (mesh.progress); tensorflow-datasets installs it too
]

# `geoloc serve`'s HTTP stack (geoloc_tf.inference.server says why these).
SERVE = ["starlette==1.10.0", "uvicorn==0.54.0", "h11==0.16.0", "python-multipart==0.0.34", "anyio==4.16.0"]

# Collection formats beyond CSV and archives the standard library reads: GeoEstimation's msgpack
# shards (data_pipelines.archives; --format=msgpack names this extra when it is missing).
FORMATS = ["msgpack==1.2.4"]

# Ingestion on Apache Beam (`geoloc ingest --engine=beam`; DirectRunner here, Dataflow/Flink/Spark
# per BUILD.md). Beam 2.77 caps pillow < 13 and pyarrow < 26, hence the pins above.
BEAM = ["apache-beam==2.77.0"]

# Approximate nearest-neighbour retrieval (`geoloc index --engine=faiss`). ScaNN 1.4.2 installs but
# does not import beside TensorFlow 2.21 (its TF op library is built against another abseil).
ANN = ["faiss-cpu==1.15.1"]

# M1 for other runtimes (the export stage's export/m1.tflite and export/m1.onnx, geoloc_tf.m1.portable;
# without them it writes the SavedModels and says what to install). LiteRT: the converter is
# TensorFlow's tf.lite, ai-edge-litert is the maintained runtime (tf.lite.Interpreter is deprecated).
# ONNX: Keras' model.export(format="onnx") converts with tf2onnx (Keras patches it for numpy 2);
# onnx adds the metadata, onnxruntime runs the check. All install beside TF 2.21, numpy 2.4.6 and
# protobuf 6.33 without changing them.
LITERT = ["ai-edge-litert==2.3.0"]
ONNX = ["tf2onnx==1.17.0", "onnx==1.23.2", "onnxruntime==1.32.0"]

# The browser tests of `geoloc serve`'s page drive Debian's chromium (.ci/run installs it) through
# Playwright; no browser is ever downloaded (`playwright install` is never run).
BROWSER_TESTS = ["playwright==1.65.2"]

# Keras on the JAX backend (KERAS_BACKEND=jax): every stage of the runner runs there (BUILD.md, "The
# runner on JAX"); the CPU wheel; on an NVIDIA GPU add jax[cuda12] of the same version.
JAX = ["jax==0.10.2", "jaxlib==0.10.2"]

EXTRAS = {
    "cpu": [f"tensorflow-cpu=={TF_VERSION}"],
    "gpu": [f"tensorflow[and-cuda]=={TF_VERSION}"],
    "serve": SERVE,
    "formats": FORMATS,
    "beam": BEAM,
    "ann": ANN,
    "litert": LITERT,
    "onnx": ONNX,
    "jax": JAX,
    "test": [
        "pytest==9.2.0",
        "ruff==0.17.6",
        "mypy==2.4.1",
        *SERVE,
        *FORMATS,
        *BEAM,
        *ANN,
        *BROWSER_TESTS,
        *LITERT,
        *ONNX,
        *JAX,
    ],
    "bench": ["h3==4.5.0"],  # baseline of the mesh benchmark
}

setup(
    name="geoloc",
    version="0.1.0",
    description="Multi-modal photo geolocation: Delaunay-mesh classification with Inception-v4, "
    "posting-time and user-album models (TensorFlow/Keras)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(
        include=[
            "mesh",
            "mesh.*",
            "data_pipelines",
            "data_pipelines.*",
            "geoloc_tf",
            "geoloc_tf.*",
            "experiments",
            "experiments.*",
        ]
    ),
    package_data={
        "experiments": ["configs/*.cfg"],
        # the basemap under every map (mesh.basemap): Natural Earth via world-atlas
        "mesh": ["data/*.geojson", "data/*.geojson.gz"],
        # published results of named systems on the standard test sets (geoloc_tf.evaluation.benchmarks)
        "geoloc_tf.evaluation": ["published/*.csv", "published/*.md"],
        # the page of `geoloc serve` (geoloc_tf.inference.server serves exactly these)
        "geoloc_tf.inference": ["static/*.html", "static/*.js", "static/*.css"],
    },
    install_requires=REQUIRED,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["geoloc=experiments.cli:main"]},
    license="Apache-2.0",
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "Topic :: Scientific/Engineering :: GIS",
    ],
)
