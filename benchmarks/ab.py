"""voxray at another commit vs the working tree, alternating fresh processes.

    python benchmarks/ab.py REV [--repeat 5]

Separates the machine from the code when figures move between sessions: both
sides run the same case on the same data, one after the other, each in a fresh
process with its own empty index cache (except the indexed read, which shares one
index built up front). REV is checked out into a temporary git worktree.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_data  # noqa: E402

CASES = {
    "indexed .nii.gz full read": (
        "gz",
        "img = vx.load({path!r}); t = time.perf_counter(); np.asarray(img.dataobj)",
    ),
    "first .nii.gz read, no index": (
        "gz",
        "img = vx.load({path!r}); t = time.perf_counter(); np.asarray(img.dataobj)",
    ),
    "save to .nii.gz": (
        "nii",
        "img = vx.load({path!r}); t = time.perf_counter(); vx.save(img, {out!r}, progress=False)",
    ),
    "convert to .nii.zarr": (
        "nii",
        "img = vx.load({path!r}); t = time.perf_counter(); "
        "vx.to_zarr(img, {zout!r}, overwrite=True, progress=False)",
    ),
}
CHILD = "import time, numpy as np, voxray as vx\n{body}\nprint(time.perf_counter() - t)\n"


def run(src: Path, body: str, cache: str) -> float:
    env = dict(os.environ, PYTHONPATH=str(src), VOXRAY_CACHE_DIR=cache)
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(body=body)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("rev", help="the other commit")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    nii = make_data.bold()
    data = {"nii": nii, "gz": make_data.gzipped(nii)}
    work = Path(tempfile.mkdtemp(prefix="voxray-ab-", dir=nii.parent))
    other = work / "other"
    subprocess.run(["git", "worktree", "add", "-q", str(other), args.rev], check=True)
    sides = {args.rev: other / "src", "working tree": HERE.parent / "src"}
    shared = str(work / "shared-cache")
    try:
        for name, (kind, body) in CASES.items():
            body = body.format(
                path=str(data[kind]), out=str(work / "out.nii.gz"), zout=str(work / "out.nii.zarr")
            )
            if name.startswith("indexed"):
                run(HERE.parent / "src", body, shared)  # build the index once
            times: dict[str, list[float]] = {s: [] for s in sides}
            for i in range(args.repeat):
                for side, src in sides.items():
                    cache = shared if name.startswith("indexed") else str(work / f"c{i}{side}")
                    times[side].append(run(src, body, cache))
            for side, ts in times.items():
                print(
                    f"{name:30s} {side:14s} median {statistics.median(ts):7.3f} s  "
                    f"min {min(ts):7.3f} s",
                    flush=True,
                )
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(other)], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
