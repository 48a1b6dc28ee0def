"""Seek-point spacing: index size against the cost of a random one-volume read.

    python benchmarks/spacing.py

For each spacing, builds the index of the realistic .nii.gz, then reads random
volumes through it (one thread, so the numbers are per read, not per machine)
and reports the index size, the mean time and bytes inflated per volume.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_data
from voxray.sources import GzipSource, LocalFileSource
from voxray.sources.gzindex import GzipIndex


def main() -> None:
    gz = make_data.gzipped(make_data.bold())
    vol = 98 * 116 * 94 * 2
    rng = np.random.default_rng(0)
    picks = rng.integers(0, 300, 40)
    print(
        f"{'spacing':>8} {'points':>7} {'index MB':>9} {'% of data':>9} "
        f"{'ms/volume':>10} {'inflated/volume':>16}"
    )
    for spacing in (256, 512, 1024, 2048, 4096):
        src = GzipSource(
            LocalFileSource(str(gz)), index=GzipIndex(gz.stat().st_size, spacing << 10)
        )
        idx = src.build_index()
        size = len(idx.to_bytes({}))
        buf = np.empty(vol, np.uint8)
        src.stats.reset()
        t0 = time.perf_counter()
        for t in picks:
            src._read_piece(
                idx.locate(352 + int(t) * vol),
                352 + int(t) * vol,
                352 + (int(t) + 1) * vol,
                [(352 + int(t) * vol, memoryview(buf))],
            )
        ms = (time.perf_counter() - t0) / len(picks) * 1000
        inflated = src.stats.bytes_inflated / len(picks)
        print(
            f"{spacing:>7}K {len(idx):>7} {size / 1e6:>9.1f} "
            f"{100 * size / idx.uncompressed_size:>8.2f}% "
            f"{ms:>10.1f} {inflated / vol:>15.2f}x"
        )
        src.close()


if __name__ == "__main__":
    main()
