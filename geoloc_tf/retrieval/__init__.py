"""Query by example and kNN geolocation with M1's penultimate features (paper appendix B).

- ``feature_index``: the on-disk index (features.npy memory map, photos.parquet, index.json),
  built from a run's TFRecords by M1 (``geoloc index``), resumable by record shard.
- ``search``: exact L2 nearest neighbours by blocked float32 matrix products, bounded memory.
- ``ann``: the FAISS engine: a compressed IVF-PQ index in the index folder, exact re-rank.
- ``knn``: kNN geolocation (Vo et al. 2017), the "M1 kNN" row of the evaluation.
- ``cell_retrieval``: retrieval inside M1's top cells (Vo et al. 2017; Kordopatis-Zilos et al. 2021),
  the "M1 Cell Retrieval" row and the ``retrieval`` answer of `geoloc predict` and `geoloc serve`.
- ``query``: one query image against an index (``geoloc search``); ``sheet``: the Figure 4 sheet.
- ``config``: the settings of ``geoloc index`` and ``geoloc search``, the engine, the FAISS index
  and retrieval inside the top cells.
"""
