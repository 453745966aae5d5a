"""Query by example and kNN geolocation with M1's penultimate features (paper appendix B).

- ``feature_index``: the on-disk index (features.npy memory map, photos.parquet, index.json),
  built from a run's TFRecords by M1 (``geoloc index``), resumable by record shard.
- ``search``: exact L2 nearest neighbours by blocked float32 matrix products, bounded memory.
- ``ann``: the FAISS engine: a compressed IVF-PQ index in the index folder, exact re-rank.
- ``knn``: kNN geolocation (Vo et al. 2017), the "M1 kNN" row of the evaluation.
- ``query``: one query image against an index (``geoloc search``); ``sheet``: the Figure 4 sheet.
- ``config``: the settings of ``geoloc index`` and ``geoloc search``, the engine and the FAISS index.
"""
