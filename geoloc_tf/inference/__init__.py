"""Using a trained model: `geoloc predict` on photo files and `geoloc serve` over HTTP.

- ``m1_model.M1Model``: the one place that loads M1 for inference (a run directory, its exported
  SavedModel, or its LiteRT or ONNX file), with the evaluation path's preprocessing
  (`geoloc_tf.preprocessing`).
- ``photo_predictor.Predictor``: M1 (and the run's M2 when a posting time is given, §3.2) to top-k cells,
  label points and the probability-mass sets of ``mass``.
- ``formats``, ``map_plot``: table/JSON/CSV/GeoJSON output and the probability map PNG.
- ``predict_files``, ``server``: what the two commands run (``config``: their settings);
  ``http_request`` parses a POST /predict,
  ``batcher`` answers queued photos in batches.
"""
