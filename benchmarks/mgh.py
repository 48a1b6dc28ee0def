"""voxray vs nibabel on a realistic 4-D MGZ, in one run: time ratios and peak memory.

    python benchmarks/mgh.py [--repeat 3] [--only PATTERN] [--small]

The data is ``make_data.bold()`` (98 x 116 x 94 x 300 int16, 641 MB, MNI-based
BOLD-like series) converted as FreeSurfer's ``mri_convert`` writes an ``.mgz``:
one gzip stream (level 6) of the 284-byte header, the big-endian data and the
footer (TR 2000 ms). ``--small`` uses 24 frames (51 MB) to check the script runs.

Every measurement is a fresh process (``run.measure``); nibabel and voxray runs
alternate, and the median and minimum ratios are reported with peak RSS:

* full read, index present (nibabel baseline ``np.asanyarray(img.dataobj)``, with
  indexed_gzip installed), and on first open with no index (voxray builds it while
  reading);
* the last frame, index present (open untimed), and open + last frame on first open
  with no index (voxray's open builds the index to reach the footer, as nibabel's
  load inflates the stream) vs nibabel's open + last frame;
* ``mri_convert``-style MGZ -> ``.nii.gz``: nibabel ``save(load(p))`` vs
  ``vx.save(vx.load(p))`` (first open, no index).

Results are printed and saved to ``benchmarks/results/mgh.json`` (``mgh-small.json``).
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402

import make_data  # noqa: E402
import run  # noqa: E402

# run.measure runs ``cases.<case>`` in a child process; these cases live in cases_mgh.
run.CHILD = run.CHILD.replace("import cases\n", "import cases_mgh as cases\n")
assert "cases_mgh" in run.CHILD, "benchmarks/run.py's child template changed"

SMALL_FRAMES = 24
TR_MS = 2000.0


def mgz_of(nii: Path, level: int = 6) -> Path:
    """``nii`` as an ``.mgz`` written the way ``mri_convert`` writes one (one gzip stream),
    frame by frame (memory stays at one frame)."""
    import nibabel as nib
    import numpy as np

    dst = nii.with_suffix(".mgz")
    if dst.exists():
        return dst
    src = nib.load(nii)
    hdr = nib.MGHImage(src.dataobj, src.affine).header  # int16; delta, Mdc, Pxyz_c set
    hdr["tr"] = TR_MS
    block = hdr.binaryblock
    tmp = dst.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=level) as f:
        f.write(block[:90] + b"\x00" * (284 - 90))
        for t in range(src.shape[3]):
            frame = np.asanyarray(src.dataobj[..., t]).astype(">i2")
            f.write(frame.tobytes(order="F"))
        f.write(block[90:110])
    os.replace(tmp, dst)
    return dst


COMPARISONS = [
    # name, nibabel case, voxray case, voxray cache ("indexed" / "empty"), what
    ("mgz full read, index present", "nib_full", "vx_full", "indexed", "np.asanyarray(dataobj)"),
    ("mgz full read, first open", "nib_full", "vx_full", "empty", "index built while reading"),
    ("mgz last frame, indexed", "nib_last_frame", "vx_last_frame", "indexed", "untimed open"),
    (
        "mgz open + last frame, first open",
        "nib_open_last_frame",
        "vx_open_last_frame",
        "empty",
        "voxray's open builds the index",
    ),
    ("mgz -> nii.gz (mri_convert)", "nib_convert", "vx_convert", "empty", "save(load(p))"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="*", help="run comparisons whose name matches")
    ap.add_argument("--small", action="store_true", help=f"{SMALL_FRAMES} frames, to check")
    args = ap.parse_args()

    if args.small:
        nii = make_data.bold(SMALL_FRAMES, make_data.DATA / "bold-small.nii")
    else:
        nii = make_data.bold()
    mgz = mgz_of(nii)
    import nibabel as nib

    shape = nib.load(nii).shape
    raw = 284 + 2 * int(np.prod(shape)) + 20
    print(f"data: {mgz} ({raw / 1e6:.0f} MB uncompressed, {mgz.stat().st_size / 1e6:.0f} MB)\n")

    work = Path(tempfile.mkdtemp(prefix="voxray-bench-mgh-"))
    indexed = dict(os.environ, VOXRAY_CACHE_DIR=str(work / "indexed"))

    def empty_cache() -> dict:
        return dict(os.environ, VOXRAY_CACHE_DIR=str(work / f"empty-{time.monotonic_ns()}"))

    # The index, built once into the "indexed" cache (what a second process finds).
    run.measure("vx_full", mgz, indexed, 1)

    results = []
    for name, nib_case, vx_case, cache, what in COMPARISONS:
        if not fnmatch.fnmatch(name, args.only):
            continue
        nib_runs, vx_runs = [], []
        for i in range(args.repeat):  # alternating: the machine's noise hits both alike
            out = {"VOXRAY_BENCH_OUT": str(work / f"out-{i}.nii.gz")}
            nib_runs.append(run.measure(nib_case, mgz, dict(os.environ, **out), 1))
            env = indexed if cache == "indexed" else empty_cache()
            vx_runs.append(run.measure(vx_case, mgz, dict(env, **out), 1))
        nib_r, vx_r = (
            {
                "seconds": statistics.median(r["seconds"] for r in runs),
                "seconds_min": min(r["seconds"] for r in runs),
                "seconds_all": [r["seconds_all"][0] for r in runs],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            }
            for runs in (nib_runs, vx_runs)
        )
        ratio = vx_r["seconds"] / nib_r["seconds"]
        ratio_min = vx_r["seconds_min"] / nib_r["seconds_min"]
        results.append(
            dict(name=name, what=what, nibabel=nib_r, voxray=vx_r, ratio=ratio, min=ratio_min)
        )
        print(
            f"{name:36s} nibabel {nib_r['seconds']:7.3f} s {nib_r['peak_rss_mb']:7.0f} MB | "
            f"voxray {vx_r['seconds']:7.3f} s {vx_r['peak_rss_mb']:7.0f} MB | "
            f"ratio {ratio:6.3f} (min {ratio_min:6.3f})",
            flush=True,
        )

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    meta = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "data": {"mgz": str(mgz), "mgz_bytes": mgz.stat().st_size, "uncompressed_bytes": raw},
        "repeat": args.repeat,
    }
    dest = out / ("mgh-small.json" if args.small else "mgh.json")
    dest.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    print(f"\nsaved {dest}")


if __name__ == "__main__":
    main()
