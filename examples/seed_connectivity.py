"""A seed-based connectivity map, out of core, on a cluster of worker processes.

A 4-D run is masked (nilearn's EPI mask), cleaned (detrended, z-scored), averaged over a
seed region, and every voxel's time course is correlated with the seed's: the map is
written as a 3-D NIfTI. Everything is lazy: voxray builds dask graphs over chunked reads
of the file and the two worker processes of a ``distributed.LocalCluster`` compute them a
few chunks at a time, so the run can be larger than memory.

    python examples/seed_connectivity.py            # a small generated run (~20 MB)
    python examples/seed_connectivity.py --gb 30    # a 30 GB run, built in a temp dir

The generated run has two "networks" (boxes of voxels) sharing one slow signal; the seed
is the first box, so the map is high on both boxes and about 0 elsewhere. The peak
memory of this process (the client) and of each worker is printed at the end.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

import voxray as vx
import voxray.masking as vm

SHAPE = (40, 48, 40)  # the small run: 2 mm voxels
BIG_SHAPE = (98, 116, 94)  # a 2 mm MNI grid, as large runs are made of
SEED_BOX = (slice(10, 14), slice(12, 16), slice(16, 20))  # the first network
OTHER_BOX = (slice(26, 30), slice(30, 34), slice(16, 20))  # the second one
TR = 2.0


def on_grid(box, shape):
    """A box of the small grid (``SHAPE``) scaled onto a grid of ``shape``."""
    return tuple(
        slice(int(b.start * n / s), int(b.stop * n / s))
        for b, n, s in zip(box, shape, SHAPE, strict=True)
    )


def volumes(shape, nt, rng):
    """``nt`` int16 BOLD-like volumes of ``shape``: an ellipsoid "brain" with a slow
    drift and noise; the two boxes carry one shared signal."""
    i, j, k = np.ogrid[tuple(slice(0, n) for n in shape)]
    r2 = sum(((g - n / 2) / (0.42 * n)) ** 2 for g, n in zip((i, j, k), shape, strict=True))
    brain = np.where(r2 < 1, 800.0, 0.0)
    boxes = [on_grid(box, shape) for box in (SEED_BOX, OTHER_BOX)]
    t = np.arange(nt)
    signal = 40 * np.sin(2 * np.pi * t * TR / 60.0) + 20 * np.sin(2 * np.pi * t * TR / 23.0)
    for n in range(nt):
        vol = brain * (1 + 0.0005 * n) + rng.normal(0, 15, shape) * (brain > 0)
        for box in boxes:
            vol[box] += signal[n]
        yield np.clip(np.rint(vol), -32768, 32767).astype(np.int16)


def write_run(path: Path, shape, nt: int, repeat_every: int | None = None) -> Path:
    """A 4-D .nii written volume by volume (never held whole); ``repeat_every`` reuses
    that many generated volumes over and over (how a many-GB run is made quickly)."""
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.int16)
    hdr.set_data_shape((*shape, nt))
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-n for n in shape]
    hdr.set_sform(affine, code=4)
    hdr.set_qform(affine, code=4)
    hdr.set_xyzt_units("mm", "sec")
    hdr["pixdim"][4] = TR
    rng = np.random.default_rng(0)
    block = None
    if repeat_every:
        block = b"".join(v.tobytes(order="F") for v in volumes(shape, repeat_every, rng))
    with open(path, "wb") as f:
        hdr.write_to(f)
        f.write(b"\x00" * (int(hdr.get_data_offset()) - f.tell()))
        if block is None:
            for v in volumes(shape, nt, rng):
                f.write(v.tobytes(order="F"))
        else:
            left = nt
            while left:
                n = min(left, repeat_every)
                f.write(block[: n * len(block) // repeat_every])
                left -= n
    return path


def seed_map(path: Path, out: Path) -> dict:
    """The analysis, lazily: returns the map's values at the two networks' centres."""
    img = vx.load(path)
    mask = vm.compute_epi_mask(img)  # computes the mean volume (one pass), lazily after
    X = vm.clean(vm.apply_mask(img, mask), detrend=True, standardize="zscore_sample")
    in_mask = np.asarray(mask.dataobj) != 0
    seed_region = np.zeros(img.shape[:3], bool)
    seed_region[on_grid(SEED_BOX, img.shape[:3])] = True
    cols = np.flatnonzero(seed_region[in_mask])  # the seed's columns of X
    seed = np.asarray(X[:, cols].mean(axis=1).compute(), dtype=np.float64)  # one small pass
    seed = (seed - seed.mean()) / seed.std(ddof=1)
    r = (seed @ X) / (X.shape[0] - 1)  # columns are z-scored (ddof=1): Pearson's r
    corr = vm.unmask(r.astype(np.float32), mask)  # a lazy 3-D image
    corr.to_filename(out)  # the second pass, streamed, while it writes
    got = np.asarray(nib.load(out).dataobj)
    centre = [
        tuple((b.start + b.stop) // 2 for b in on_grid(box, img.shape[:3]))
        for box in (SEED_BOX, OTHER_BOX)
    ]
    return {
        "mask voxels": int(in_mask.sum()),
        "seed voxels": int(cols.size),
        "r at the seed": float(got[centre[0]]),
        "r at the other network": float(got[centre[1]]),
        "median |r| elsewhere": float(np.median(np.abs(got[in_mask & ~seed_region]))),
    }


def peak_rss_mb() -> float:
    """This process's peak resident set (MB); run on each worker too."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, help="build an N GB run (may exceed memory)")
    ap.add_argument("--nt", type=int, default=120, help="volumes of the small run")
    args = ap.parse_args()

    from dask.distributed import Client, LocalCluster

    work = Path(tempfile.mkdtemp(prefix="voxray-seed-"))
    try:
        t0 = time.perf_counter()
        if args.gb:
            vol_bytes = int(np.prod(BIG_SHAPE)) * 2
            nt = max(int(args.gb * 1e9 // vol_bytes), 8)
            if shutil.disk_usage(work).free < nt * vol_bytes * 1.1:
                raise SystemExit(f"not enough free disk in {work.parent} for {args.gb} GB")
            path = write_run(work / "bold.nii", BIG_SHAPE, nt, repeat_every=60)
        else:
            path = write_run(work / "bold.nii", SHAPE, args.nt)
        size = path.stat().st_size
        img = vx.load(path)
        print(
            f"run: {path.name} {img.shape} int16, {size / 1e9:.2f} GB "
            f"(written in {time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            t0 = time.perf_counter()
            found = seed_map(path, work / "seed_map.nii")
            secs = time.perf_counter() - t0
            workers = client.run(peak_rss_mb)
        print(f"seed map written in {secs:.1f} s ({size / 1e6 / secs:.0f} MB/s of input)")
        for key, value in found.items():
            print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        print(f"peak memory (RAM {ram / 1e9:.1f} GB, the run {size / 1e9:.2f} GB):")
        print(f"  client: {peak_rss_mb():.0f} MB")
        for address, mb in sorted(workers.items()):
            print(f"  worker {address}: {mb:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
