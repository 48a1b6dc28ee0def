"""Scale benchmark (issue 15): a 4-D image larger than this machine's memory.

    python benchmarks/scale.py [--gb N] [--keep] [--cases PATTERN] [--print]

Builds a ``.nii`` of about ``--gb`` GB (default: 5% more than total RAM) from the
realistic series (``benchmarks/data/bold.nii``: its header with more volumes and its
real volumes repeated, not sparse; ``plot.big_nii``), and a ``.nii.gz`` of it with
``gzip -1`` (one ordinary gzip stream, as nibabel or FSL write: never indexed by
voxray). Then, each case in a fresh process, run once, after the files' pages are
dropped from the page cache (``posix_fadvise(DONTNEED)`` on the input):

* ``nii_read``: the whole image read by chunks (``to_dask().sum()``, 2 threads);
* ``nii_mean_threads`` / ``nii_mean_cluster``: mean over t on 2 threads / on a
  ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``;
* ``nii_to_zarr_*`` / ``nii_to_niigz_*``: ``vx.to_zarr`` and ``vx.save(.nii.gz)``
  (voxray's writer, zlib-ng level 3) on threads and on the cluster;
* ``gz_read_first``: the ``gzip -1`` file read by chunks on its first open (a fresh,
  empty ``VOXRAY_CACHE_DIR``), ``gz_read_indexed`` the same again with that cache,
  ``gz_mean_threads`` / ``gz_mean_cluster`` mean over t with that cache.

Reported: seconds, MB/s of input (decompressed bytes), peak RSS of the main process
(``ru_maxrss``) and, for the cluster, the largest worker's peak RSS (psutil sampling
every 0.2 s of the main process's descendants), and the commit each case ran at.
Results: ``benchmarks/results/scale.json`` (``--print`` prints its table). The big
files are deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import plot  # noqa: E402  (big_nii, drop_file_cache, git_state, loadavg)

DATA = HERE / "data"
RESULTS = HERE / "results" / "scale.json"
SRC = DATA / "bold.nii"

CASES = (
    "gz_read_first",
    "gz_read_indexed",
    "nii_read",
    "nii_mean_threads",
    "nii_mean_cluster",
    "gz_mean_threads",
    "gz_mean_cluster",
    "nii_to_zarr_threads",
    "nii_to_zarr_cluster",
    "nii_to_niigz_threads",
    "nii_to_niigz_cluster",
)


class PeakSampler:
    """Largest RSS seen of each descendant of this process (sampled)."""

    def __init__(self, every: float = 0.2):
        import psutil

        self.me = psutil.Process()
        self.every = every
        self.peaks: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            for p in self.me.children(recursive=True):
                try:
                    rss = p.memory_info().rss / 2**20
                except Exception:  # a process that just ended
                    continue
                self.peaks[p.pid] = max(self.peaks.get(p.pid, 0.0), rss)

    def done(self) -> float | None:
        self.stop.set()
        self.thread.join()
        return max(self.peaks.values()) if self.peaks else None


def child(case: str, path: str, out: str) -> dict:
    """Run one case in this (fresh) process; returns its measures."""
    import dask

    import voxray as vx

    cluster = case.endswith("_cluster")
    client = sampler = None
    if cluster:
        from distributed import Client, LocalCluster

        lc = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(lc)
        sampler = PeakSampler()
    else:
        dask.config.set(scheduler="threads", num_workers=2)
    t0 = time.perf_counter()
    img = vx.load(path)
    if "_read" in case:
        img.to_dask().sum(dtype="int64").compute()
    elif "_mean" in case:
        img.to_dask().mean(-1).compute()
    elif "_to_zarr" in case:
        vx.to_zarr(img, out, progress=False)
    elif "_to_niigz" in case:
        vx.save(img, out, progress=False)
    seconds = time.perf_counter() - t0
    res = {
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if cluster:
        res["worker_peak_rss_mb"] = sampler.done()
        client.close()
        lc.close()
    return res


def run_case(case: str, path: Path, out: Path, env: dict) -> dict:
    resident = plot.drop_file_cache(path)
    commit = plot.git_state()
    load = plot.loadavg()
    cmd = [sys.executable, __file__, "--child", case, str(path), str(out)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{p.stderr[-3000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res.update(
        resident_before=resident, loadavg_before=load, commit=commit["commit"],
        uncommitted_in_src=commit["uncommitted_in_src"],
    )  # fmt: skip
    if out.exists():
        res["output_bytes"] = du(out)
    return res


def du(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def remove(p: Path) -> None:
    if p.is_dir():
        shutil.rmtree(p)
    elif p.exists():
        p.unlink()


def table(res: dict) -> str:
    nbytes = res["input"]["data_bytes"]
    lines = [
        "| case | input | seconds | input MB/s | main peak RSS MB | worker peak RSS MB | commit |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, r in res["cases"].items():
        w = r.get("worker_peak_rss_mb")
        lines.append(
            f"| {name} | {'.nii.gz' if name.startswith('gz') else '.nii'} "
            f"| {r['seconds']:.1f} | {nbytes / 1e6 / r['seconds']:.0f} "
            f"| {r['peak_rss_mb']:.0f} | {'' if w is None else f'{w:.0f}'} "
            f"| {r['commit'][:7]}{'+dirty' if r['uncommitted_in_src'] else ''} |"
        )
    return "\n".join(lines)


def save(res: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=1))


def main() -> None:
    import psutil

    ap = argparse.ArgumentParser(description=__doc__)
    mem = psutil.virtual_memory().total
    ap.add_argument("--gb", type=float, default=mem * 1.05 / 1e9, help="image size, GB")
    ap.add_argument("--keep", action="store_true", help="keep (and reuse) the big files")
    ap.add_argument("--cases", default="*", help="cases matching this pattern")
    ap.add_argument("--print", action="store_true", help="print the last results' table")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    if args.print:
        print(table(json.loads(RESULTS.read_text())))
        return
    import nibabel as nib
    import numpy as np

    nii = DATA / "bold-scale.nii"
    gz = DATA / "bold-scale.nii.gz"
    work = Path(tempfile.mkdtemp(prefix="scale-", dir=DATA))
    res: dict = {
        "machine": {
            "ram_bytes": mem,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "runs_per_case": 1,
        "cache": "posix_fadvise(DONTNEED) on the input before each case",
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit_at_start": plot.git_state()["commit"],
        "cases": {},
    }
    want = args.gb * 1e9
    if nii.exists() and abs(nii.stat().st_size - want) < 5e6:
        print(f"reusing {nii}", flush=True)
    else:
        remove(gz)
        print(f"writing {nii} ({args.gb:.1f} GB)", flush=True)
        _, secs = plot.big_nii(SRC, nii, want)
        res["build_nii_seconds"] = secs
    if not gz.exists():
        print(f"writing {gz} (gzip -1)", flush=True)
        t0 = time.perf_counter()
        with open(gz.with_suffix(".tmp"), "wb") as f:
            subprocess.run(["gzip", "-1", "-c", str(nii)], stdout=f, check=True)
        os.replace(gz.with_suffix(".tmp"), gz)
        res["build_gz_seconds"] = time.perf_counter() - t0
    img = nib.load(nii)
    data_bytes = int(np.prod(img.shape)) * img.get_data_dtype().itemsize
    res["input"] = {
        "shape": list(img.shape),
        "dtype": str(img.get_data_dtype()),
        "data_bytes": data_bytes,
        "nii_bytes": nii.stat().st_size,
        "gz_bytes": gz.stat().st_size,
        "gz_how": "gzip -1 (one stream, no voxray member list)",
        "larger_than_ram": data_bytes > mem,
    }
    save(res)
    cache = work / "gzcache"
    env = dict(os.environ, VOXRAY_CACHE_DIR=str(cache))
    try:
        for case in CASES:
            if not fnmatch.fnmatch(case, args.cases):
                continue
            src = gz if case.startswith("gz") else nii
            if case == "gz_read_first":
                remove(cache)
            out = work / ("out.nii.zarr" if "zarr" in case else "out.nii.gz")
            print(f"{case} ...", flush=True)
            r = run_case(case, src, out, env)
            remove(out)
            res["cases"][case] = r
            save(res)
            print(f"  {r['seconds']:.1f} s, {data_bytes / 1e6 / r['seconds']:.0f} MB/s, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB, workers "
                  f"{r.get('worker_peak_rss_mb')}", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            remove(nii)
            remove(gz)
    res["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    save(res)
    print(table(res))


if __name__ == "__main__":
    main()
