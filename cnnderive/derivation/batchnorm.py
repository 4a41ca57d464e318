"""The records of batch norm in a batch: its statistics and the three paths of its backward pass.

Each example's Derivation gets one `BatchNormRecord` per batch-norm layer (`Derivation.batch_norm`,
by layer position): the channel statistics (the same for every example) and this example's
dL/dx split into the path through x̂, through σ² and through μ. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..maths.layers.batchnorm import BackwardPaths, Statistics
from ..maths.network import Pass
from ..maths.ops import FloatOps


@dataclass(frozen=True)
class BatchNormRecord:
    """One batch-norm layer as one example sees it: statistics and its own three paths, shown and as floats."""

    position: int
    example: int  # 0-based
    count: int  # m: the numbers of a channel over the batch
    divisor: int  # m, or m - 1 for the unbiased variance
    stats: Statistics  # as shown (exact when the batch is small)
    stats_approx: Statistics
    paths: BackwardPaths  # stacked over the batch; [example] is this example's part
    paths_approx: BackwardPaths


def batch_norm_records(batch, shown: list[Pass], floats: list[Pass], ops) -> list[dict[int, BatchNormRecord]]:
    """For each example: layer position -> its BatchNormRecord."""
    layers, first = batch.first.layers, batch.first
    found: list[dict[int, BatchNormRecord]] = [{} for _ in shown]
    for k, layer in enumerate(layers):
        if not layer.batch_wide:
            continue
        tracks = []
        for passes, track in ((shown, ops), (floats, FloatOps())):
            xs = [np.asarray(p.values[k], dtype=object if track.exact else float) for p in passes]
            stats = layer.statistics(xs, track)
            params = first._params(layer, track)
            paths = layer.paths(stats, [p.deltas[k + 1] for p in passes], params, track)
            tracks.append((stats, paths))
        m = layer.count(len(shown))
        for n, record in enumerate(found):
            record[k] = BatchNormRecord(
                k, n, m, m - layer.unbiased, tracks[0][0], tracks[1][0], tracks[0][1], tracks[1][1]
            )
    return found
