#!/usr/bin/env bash
# M1 on one GPU without TensorFlow: geoloc's Inception-v4 next to keras.applications' InceptionV3,
# Keras 3 on JAX, 299 px, bfloat16, synthetic batches; one table in a few minutes (BUILD.md,
# "M1 on a GPU without TensorFlow"). Needs only Python with Keras and JAX for CUDA (numpy comes
# with them) and this repository's files; geoloc itself is not installed (its requirements pull
# TensorFlow):
#
#   pip install keras==3.15.1 "jax[cuda12]"
#   experiments/benchmarks/gpu_m1_bench.sh                 # any m1_bench flag may follow
#   KERAS_BACKEND=torch experiments/benchmarks/gpu_m1_bench.sh   # the same on PyTorch
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
exec "${PYTHON:-python3}" -m experiments.benchmarks.m1_bench --backend="$KERAS_BACKEND" \
  --image_size=299 --precision=bf16 --synthetic "$@"
