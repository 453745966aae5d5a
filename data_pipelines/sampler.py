"""The A.1 curriculum sampler for M1, by streaming resampling.

Appendix A.1: the epoch starts at ``num_cells * 200`` examples and grows 6 % per epoch; classes
are oversampled so that class c is drawn with probability proportional to ``count_c ** alpha``
(alpha = 0: all classes equal, as A.1 starts; alpha = 1: natural frequencies); alpha is raised
after each training cycle ("the class bias was reduced"); the final phase uses the natural
distribution and the full data set per epoch (every photo exactly once).

Why streaming resampling rather than random access: the shards are TFRecords, which read fast
only in order, and 14 M JPEGs do not fit in memory. Every label is known beforehand (the labels
of a shard are an array, see ``labels``), so the plan for an epoch is computed in numpy: photo i
of class c gets ``floor(r_c) + Bernoulli(frac(r_c))`` copies with
``r_c = epoch_size * p_c / n_c`` and ``p_c = n_c**alpha / sum_k n_k**alpha``. Then the expected
number of draws of class c is exactly ``epoch_size * p_c`` and the epoch size is
``epoch_size`` in expectation (with a small variance: floor + Bernoulli, not Poisson). The input
pipeline streams the shards, skips records with 0 copies before decoding them, repeats the
others, and a shuffle buffer spreads the copies. (tfds's array_record would give random access,
but would double the storage or replace TFRecords, which tf.data and tfds already read well.)

With ``shard_fraction < 1`` only a random subset of shards is read per biased epoch and the rates
are computed from the class counts within that subset, which saves I/O when the epoch is much
smaller than the split, at the cost of more variance for rare classes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data_pipelines import errors
from data_pipelines.config import SamplerConfig


@dataclasses.dataclass(frozen=True)
class EpochPlan:
    epoch: int
    cycle: int  # index into alpha_schedule; == len(alpha_schedule) in the final natural phase
    alpha: float
    size: int  # target examples this epoch (the full split in the final phase)
    natural: bool  # final phase: every photo once, no class bias


class CurriculumSampler:
    """Plans and draws the examples of each M1 training epoch (appendix A.1).

    The draws of an epoch are a function of (``seed``, epoch): every input pipeline of a
    distributed run, and a resumed run, draws the same copies.
    """

    def __init__(self, counts: np.ndarray, config: SamplerConfig = SamplerConfig(), *, seed: int):
        counts = np.asarray(counts, np.int64)
        if counts.ndim != 1 or counts.size == 0 or np.any(counts < 0) or counts.sum() == 0:
            raise errors.ConfigError(
                f"CurriculumSampler: counts of shape {counts.shape} with sum {counts.sum()}; "
                "expected one non-negative count per cell and at least one photo"
            )
        self.counts = counts
        self.config = config
        self.seed = seed

    @property
    def num_cells(self) -> int:
        return int(self.counts.size)

    def epoch_size(self, epoch: int) -> int:
        """``num_cells * 200 * 1.06 ** e`` (A.1), e = global epoch or epoch within the cycle."""
        c = self.config
        e = epoch % c.cycle_epochs if c.restart_growth_each_cycle else epoch
        return int(round(self.num_cells * c.examples_per_cell * (1.0 + c.epoch_growth) ** e))

    def plan(self, epoch: int) -> EpochPlan:
        c = self.config
        cycle = epoch // c.cycle_epochs
        if cycle >= len(c.alpha_schedule):
            return EpochPlan(epoch, len(c.alpha_schedule), 1.0, int(self.counts.sum()), True)
        return EpochPlan(epoch, cycle, float(c.alpha_schedule[cycle]), self.epoch_size(epoch), False)

    def class_probabilities(self, alpha: float, counts: np.ndarray | None = None) -> np.ndarray:
        """p_c proportional to count_c ** alpha over non-empty classes (0 for empty ones)."""
        counts = self.counts if counts is None else np.asarray(counts)
        weights = np.where(counts > 0, np.power(counts.astype(np.float64), alpha), 0.0)
        return weights / weights.sum()

    def copies(self, labels_by_shard: list[np.ndarray], epoch: int) -> list[np.ndarray]:
        """Copies of each record of each shard this epoch (int32, aligned with the labels).

        Records with label -1 (dropped cells) get 0. Deterministic in (seed, epoch).
        """
        plan = self.plan(epoch)
        if plan.natural:
            return [(np.asarray(s) >= 0).astype(np.int32) for s in labels_by_shard]
        rng = np.random.default_rng([self.seed, epoch])
        selected = np.ones(len(labels_by_shard), bool)
        if self.config.shard_fraction < 1.0:
            k = max(1, int(round(self.config.shard_fraction * len(labels_by_shard))))
            selected[:] = False
            selected[rng.choice(len(labels_by_shard), size=k, replace=False)] = True
        present = np.zeros(self.num_cells, np.int64)
        for shard_labels, keep in zip(labels_by_shard, selected):
            if keep:
                kept = np.asarray(shard_labels)
                kept = kept[kept >= 0]
                present += np.bincount(kept, minlength=self.num_cells)[: self.num_cells]
        # p_c from the full counts; classes absent from the streamed shards pass their mass on.
        p = np.where(present > 0, self.class_probabilities(plan.alpha), 0.0)
        p = p / p.sum()
        rate = np.divide(plan.size * p, present, out=np.zeros(self.num_cells), where=present > 0)
        out = []
        for shard_labels, keep in zip(labels_by_shard, selected):
            cells = np.asarray(shard_labels)
            if not keep:
                out.append(np.zeros(cells.shape, np.int32))
                continue
            r = np.where(cells >= 0, rate[np.clip(cells, 0, None)], 0.0)
            whole = np.floor(r)
            out.append((whole + (rng.random(cells.shape) < (r - whole))).astype(np.int32))
        return out
