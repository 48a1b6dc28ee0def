"""voxray vs nibabel on a dense connectome: one row, a 1,000-row block, one column.

    python benchmarks/cifti.py [--small] [--repeat 5] [--n 23200]

The data is a CIFTI-2 ``.dconn.nii`` of ``n x n`` float32 values (default 23,200:
2.15 GB; ``--small``: 4,000, 64 MB) with real bytes, generated once into
``benchmarks/data`` (gitignored) from nibabel's own header and extension bytes.
Every measurement runs in a fresh process (``run.measure``), nibabel and voxray
alternating, with a warm page cache for both; the table gives median times, the
median and minimum ratios, and peak RSS. nibabel's fastest calls are measured:
``img.dataobj[r, :]`` and the row of its memory-mapped array, and
``np.asanyarray(img.dataobj[r0:r0 + 1000, :])``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (measure: one case in a fresh process)

# run.measure's child imports ``cases``; ours are in cases_cifti.
run.CHILD = run.CHILD.replace("import cases\n", "import cases_cifti as cases\n")

DATA = HERE / "data"


def make_dconn(n: int) -> Path:
    """An ``n x n`` float32 dense connectome with real (random) values, written once."""
    import numpy as np
    from nibabel import cifti2 as ci
    from nibabel.cifti2 import cifti2_axes as axes

    path = DATA / f"bench-{n}.dconn.nii"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    models = axes.BrainModelAxis.from_surface(np.arange(n), n, "CortexLeft")
    hdr = ci.Cifti2Header.from_axes((models, models))
    tiny = ci.Cifti2Image(np.zeros((n, n), np.float32)[:0, :0], hdr)  # header bytes only
    nhdr = tiny.nifti_header
    nhdr.extensions.append(ci.Cifti2Extension.from_bytes(hdr.to_xml()))
    nhdr.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE")
    nhdr.set_data_shape((1, 1, 1, 1, n, n))
    nhdr.set_data_dtype(np.float32)
    nhdr["pixdim"][:4] = 1
    tmp = path.with_suffix(".tmp")
    rng = np.random.default_rng(0)
    with open(tmp, "wb") as f:
        nhdr.write_to(f)
        f.write(b"\x00" * (int(nhdr.get_data_offset()) - f.tell()))
        cols = max(1, (64 * 2**20) // (4 * n))
        for c in range(0, n, cols):  # Fortran order: whole columns, in slabs
            k = min(cols, n - c)
            f.write(rng.standard_normal(n * k, dtype=np.float32).tobytes())
    os.replace(tmp, path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--small", action="store_true", help="a 4,000 x 4,000 (64 MB) connectome")
    ap.add_argument("--n", type=int, default=None, help="rows (= columns) of the connectome")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="JSON results (default: data/)")
    ap.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.n or (4000 if args.small else 23_200)
    if args.make_only:
        make_dconn(n)
        return
    # Generate in another process: Linux children inherit the parent's peak RSS through
    # fork + exec, so a runner that held the data would inflate every measurement.
    subprocess.run([sys.executable, __file__, "--n", str(n), "--make-only"], check=True)
    path = DATA / f"bench-{n}.dconn.nii"
    print(f"data: {path} ({path.stat().st_size / 1e9:.2f} GB, {n} x {n} float32)\n")
    env = dict(os.environ)
    comparisons = [
        ("one row, dataobj[r, :]", "nib_row", "vx_row"),
        ("one row, nibabel memmap", "nib_row_mmap", "vx_row"),
        ("1,000 rows, dataobj[r0:r0+1000, :]", "nib_block", "vx_block"),
        ("1,000 rows, nibabel memmap", "nib_block_mmap", "vx_block"),
        ("one column, dataobj[:, c]", "nib_column", "vx_column"),
    ]
    # Warm the page cache for both alike.
    run.measure("nib_block_mmap", path, env, 1)
    results = []
    for name, nib_case, vx_case in comparisons:
        nib_runs, vx_runs = [], []
        for _ in range(args.repeat):  # alternating: noise hits both alike
            nib_runs.append(run.measure(nib_case, path, env, 1))
            vx_runs.append(run.measure(vx_case, path, env, 1))
        summary = {}
        for who, runs in (("nibabel", nib_runs), ("voxray", vx_runs)):
            summary[who] = {
                "seconds": statistics.median(r["seconds"] for r in runs),
                "seconds_min": min(r["seconds"] for r in runs),
                "seconds_all": [r["seconds_all"][0] for r in runs],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            }
        ratio = summary["voxray"]["seconds"] / summary["nibabel"]["seconds"]
        ratio_min = summary["voxray"]["seconds_min"] / summary["nibabel"]["seconds_min"]
        results.append(dict(name=name, n=n, **summary, ratio=ratio, ratio_min=ratio_min))
        nib_r, vx_r = summary["nibabel"], summary["voxray"]
        print(
            f"{name:36s} nibabel {nib_r['seconds']:8.4f} s {nib_r['peak_rss_mb']:6.0f} MB | "
            f"voxray {vx_r['seconds']:8.4f} s {vx_r['peak_rss_mb']:6.0f} MB | "
            f"ratio {ratio:6.3f} (min {ratio_min:6.3f})",
            flush=True,
        )
    out = args.out or HERE / "results" / f"cifti-{n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
