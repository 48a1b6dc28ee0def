"""Looking at one volume: vx.plot_ortho vs nibabel + matplotlib and nilearn, in one run.

    python benchmarks/plot.py [--repeat 5] [--only PATTERN] [--big-gb 26 | --no-big]
                              [--small] [--peers-only]

The data is ``make_data.bold()`` (98 x 116 x 94 x 300 int16, 641 MB; MNI-based
BOLD-like series) and its ``.nii.gz`` (gzip -6, 319 MB). The picture: three orthogonal
slices through the centre of volume t (the middle one), saved to PNG. Every timed run
starts from the path (the load is timed) and ends with the PNG written; imports are
setup (matplotlib, pyplot, nibabel, nilearn, voxray and voxray.plotting alike).

Cases (``cases_plot``), each in a fresh process, runs alternating case by case:

* ``nib_walkthrough``: nibabel's "Nibabel images" tutorial: ``get_fdata()``, three
  centre slices, ``show_slices`` (``imshow(slice.T, cmap="gray", origin="lower")``);
* ``nib_proxy_slices`` / ``nib_proxy_volume``: nibabel's lazy proxy, three slices
  ``dataobj[i, :, :, t]``... or one volume ``dataobj[..., t]``, same drawing (indexed_gzip
  installed for the .nii.gz, nibabel's best case); the faster of the two (median) is
  "peer 2", nibabel's fastest call for this picture;
* ``nilearn_plot_anat``: ``plot_anat(index_img(img, t))`` (a third reference);
* ``vx_plot_ortho``: ``vx.plot_ortho(vx.load(path), t=t)``; for the .nii.gz with the index
  built once before (the common case) and on a never-indexed first view (an empty
  ``VOXRAY_CACHE_DIR`` every run).

Then an image larger than this machine's memory (voxray's plot_ortho and plot_mosaic;
nibabel's proxy volume as a reference): a 4-D ``.nii`` of ``--big-gb`` GB made of the
bold series' real volumes repeated (os.copy_file_range; not sparse), deleted at the end.
Each run there starts with the file's pages dropped from the page cache
(``posix_fadvise(DONTNEED)`` on that file only: a cold read), then warm runs.

Printed as a table; saved to ``benchmarks/results/plot.json`` (``plot-small.json``).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import make_data  # noqa: E402
import run  # noqa: E402

# run.CHILD runs ``cases.<case>`` in a child process; these cases live in cases_plot.
CHILD = run.CHILD.replace("import cases\n", "import cases_plot as cases\n")
assert "cases_plot" in CHILD, "benchmarks/run.py's child template changed"

SMALL_FRAMES = 24
WALKTHROUGH_TARGET = 0.2  # vx.plot_ortho / the walkthrough's time (issue 13)
RSS_TARGET_MB = 350.0
KEEP_FREE = 15e9  # bytes of disk left free after the larger-than-memory file

PEERS = ("nib_walkthrough", "nib_proxy_slices", "nib_proxy_volume", "nilearn_plot_anat")
LABELS = {
    "nib_walkthrough": "nibabel walkthrough (get_fdata)",
    "nib_proxy_slices": "nibabel proxy, 3 slices",
    "nib_proxy_volume": "nibabel proxy, volume t",
    "nilearn_plot_anat": "nilearn plot_anat(index_img)",
    "vx_plot_ortho": "voxray plot_ortho",
    "vx_plot_ortho_first": "voxray plot_ortho, first view",
    "vx_plot_mosaic": "voxray plot_mosaic (12 slices)",
}


def once(case: str, path: Path, env: dict) -> dict:
    """One run of ``cases_plot.<case>(path)`` in a fresh process (run.py's child)."""
    code = CHILD.format(here=str(HERE), case=case, path=str(path))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{case} on {path.name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(runs: list[dict]) -> dict:
    res = {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "seconds_min": min(r["seconds"] for r in runs),
        "seconds_all": [round(r["seconds"], 4) for r in runs],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }
    for key in ("bytes_read", "bytes_inflated"):
        if key in runs[0]:
            res[key] = max(r[key] for r in runs)
    return res


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def drop_file_cache(path: Path) -> int | None:
    """Drop ``path``'s clean pages from the page cache (this file only); returns the
    bytes of it still resident after (util-linux ``fincore``), or None without fincore."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    fincore = shutil.which("fincore")
    if fincore is None:
        return None
    out = subprocess.run(
        [fincore, "--bytes", "--noheadings", "--output", "RES", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout.strip() else None


def git_state() -> dict:
    """The commit measured, and whether the plotting code had uncommitted changes."""

    def git(*args: str) -> str:
        res = subprocess.run(
            ["git", *args], cwd=HERE.parent, capture_output=True, text=True, check=False
        )
        return res.stdout.rstrip("\n")

    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_in_src": git("status", "--porcelain", "--", "src").splitlines(),
    }


def big_nii(src: Path, dst: Path, nbytes: float) -> tuple[int, float]:
    """A 4-D ``.nii`` of about ``nbytes`` bytes: ``src``'s header with more volumes and its
    data block copied again and again (in-kernel, os.copy_file_range; every byte is
    written, the file is not sparse). Returns (volumes, seconds to write)."""
    import nibabel as nib
    import numpy as np

    img = nib.load(src)
    hdr = img.header.copy()
    offset = int(img.dataobj.offset)  # a loaded header's vox_offset is reset to 0
    hdr.set_data_offset(offset)
    vol_bytes = int(np.prod(img.shape[:3])) * hdr.get_data_dtype().itemsize
    nt_src = img.shape[3]
    nt = int((nbytes - offset) // vol_bytes)
    hdr.set_data_shape((*img.shape[:3], nt))
    t0 = time.perf_counter()
    tmp = dst.with_suffix(".tmp")
    with open(src, "rb") as fi, open(tmp, "wb") as fo:
        hdr.write_to(fo)
        fo.write(b"\x00" * (offset - fo.tell()))
        fo.flush()
        pos = offset
        left = nt * vol_bytes
        while left:
            block = min(left, nt_src * vol_bytes)
            src_off = offset
            while block:
                n = os.copy_file_range(fi.fileno(), fo.fileno(), block, src_off, pos)
                if n == 0:
                    raise RuntimeError(f"copy_file_range wrote nothing at {pos} of {dst}")
                pos, src_off, block, left = pos + n, src_off + n, block - n, left - n
        os.fsync(fo.fileno())
    os.replace(tmp, dst)
    return nt, time.perf_counter() - t0


def row(label: str, r: dict, ref: dict | None = None) -> str:
    s = f"  {label:34s} {r['seconds']:8.3f} {r['seconds_min']:8.3f} {r['peak_rss_mb']:8.0f}"
    if ref is not None:
        s += (
            f"   {ref['seconds'] / r['seconds']:7.3f} {ref['seconds_min'] / r['seconds_min']:7.3f}"
        )
    return s


HEAD = f"  {'case':34s} {'median s':>8s} {'min s':>8s} {'peak MB':>8s}   {'vx/this (median, min)'}"


def planes_bytes(path: Path, n_mosaic: int = 12) -> dict:
    """Bytes of what is shown: the three centre planes of one volume; n axial planes."""
    import nibabel as nib

    img = nib.load(path)
    ni, nj, nk = img.shape[:3]
    size = img.get_data_dtype().itemsize
    return {
        "ortho_planes_bytes": (nj * nk + ni * nk + ni * nj) * size,
        "mosaic_planes_bytes": n_mosaic * ni * nj * size,
        "volume_bytes": ni * nj * nk * size,
    }


def compare(name, path, cases, repeat, work, env_of) -> dict:
    """``cases`` run alternating (one run of each per round), ``repeat`` rounds."""
    runs: dict[str, list[dict]] = {c: [] for c in cases}
    load = [loadavg()]
    for i in range(repeat):
        for c in cases:
            png = work / f"{path.name}-{c}-{i}.png"
            env = dict(env_of(c), VOXRAY_BENCH_OUT=str(png), MPLBACKEND="Agg")
            runs[c].append(once(c.removesuffix("_first"), path, env))
        load.append(loadavg())
    return {
        "name": name,
        "file": path.name,
        "file_bytes": path.stat().st_size,
        "cases": {c: summary(r) for c, r in runs.items()},
        "loadavg": load,
        **planes_bytes(path),
    }


def report(res: dict, vx_case: str) -> None:
    cases = res["cases"]
    vx = cases.get(vx_case)
    print(f"\n{res['name']}  ({res['file']}, {res['file_bytes'] / 1e6:.0f} MB)")
    print(HEAD)
    for c, r in cases.items():
        ref = vx if (vx is not None and not c.startswith("vx_")) else None
        print(row(LABELS[c], r, ref))
    extra = {k: v for k, v in (vx or {}).items() if k.startswith("bytes")}
    if extra:
        print(
            "  voxray "
            + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in extra.items())
            + f" (the three planes: {res['ortho_planes_bytes'] / 1e6:.3f} MB of data, "
            f"one volume {res['volume_bytes'] / 1e6:.2f} MB)"
        )
    print(
        f"  load average (1, 5, 15 min) before/after: {res['loadavg'][0]} / {res['loadavg'][-1]}"
    )


def ratios(res: dict, vx_case: str) -> dict:
    """voxray / peer (median and min) for every peer; peer 2 = nibabel's faster proxy call."""
    cases = res["cases"]
    vx = cases[vx_case]
    out = {}
    for c in PEERS:
        if c in cases:
            out[c] = {
                "median": vx["seconds"] / cases[c]["seconds"],
                "min": vx["seconds_min"] / cases[c]["seconds_min"],
            }
    proxies = [c for c in ("nib_proxy_slices", "nib_proxy_volume") if c in cases]
    if proxies:
        out["peer2"] = min(proxies, key=lambda c: cases[c]["seconds"])
    return out


def verdict(res: dict, vx_case: str) -> None:
    r = res["ratios"][vx_case]
    vx = res["cases"][vx_case]
    w = r["nib_walkthrough"]
    ok_t = w["median"] <= WALKTHROUGH_TARGET
    ok_m = vx["peak_rss_mb"] <= RSS_TARGET_MB
    print(
        f"  {LABELS[vx_case]}: {w['median']:.3f}x the walkthrough's time (min {w['min']:.3f}; "
        f"target <= {WALKTHROUGH_TARGET}) {'ok' if ok_t else 'MISSED'}, peak RSS "
        f"{vx['peak_rss_mb']:.0f} MB (target <= {RSS_TARGET_MB:.0f}) {'ok' if ok_m else 'MISSED'}"
    )
    p2 = r["peer2"]
    print(
        f"  vs peer 2 ({LABELS[p2]}, nibabel's fastest call): {r[p2]['median']:.3f}x "
        f"(min {r[p2]['min']:.3f}); peak RSS {vx['peak_rss_mb']:.0f} vs "
        f"{res['cases'][p2]['peak_rss_mb']:.0f} MB"
    )
    res.setdefault("targets", {})[vx_case] = {
        "walkthrough_ratio": WALKTHROUGH_TARGET,
        "walkthrough_ratio_met": ok_t,
        "peak_rss_mb": RSS_TARGET_MB,
        "peak_rss_met": ok_m,
    }


def larger_than_memory(nii: Path, gb: float, repeat: int, work: Path, t: int | None) -> dict:
    """plot_ortho / plot_mosaic of one volume of a .nii larger than RAM (cold, then warm)."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    free = shutil.disk_usage(nii.parent).free
    want = gb * 1e9
    fits = free - KEEP_FREE
    note = ""
    if want > fits:
        note = (
            f"only {free / 1e9:.1f} GB free on {nii.parent}: built {fits / 1e9:.1f} GB "
            f"instead of {gb:.1f} GB (keeping {KEEP_FREE / 1e9:.0f} GB free)"
        )
        want = fits
    big = nii.with_name("bold-larger-than-memory.nii")
    print(
        f"\nlarger than memory: RAM {mem / 1e9:.1f} GB, disk free {free / 1e9:.1f} GB; writing "
        f"{want / 1e9:.1f} GB to {big} ...",
        flush=True,
    )
    if note:
        print("  NOTE: " + note)
    try:
        nt, secs = big_nii(nii, big, want)
        size = big.stat().st_size
        alloc = os.stat(big).st_blocks * 512
        print(
            f"  {size / 1e9:.2f} GB ({nt} volumes: {nii.name}'s real volumes repeated; "
            f"{alloc / 1e9:.2f} GB allocated on disk: not sparse), written in {secs:.0f} s "
            f"({size / secs / 1e6:.0f} MB/s)",
            flush=True,
        )
        env_t = {} if t is None else {"VOXRAY_BENCH_T": str(t)}
        cases = ("vx_plot_ortho", "vx_plot_mosaic", "nib_proxy_volume")
        runs: dict[str, dict[str, list[dict]]] = {c: {"cold": [], "warm": []} for c in cases}
        resident: list[int | None] = []  # bytes of the file cached after each drop
        load = [loadavg()]
        for i in range(repeat):
            for c in cases:
                for state in ("cold", "warm"):
                    if state == "cold":
                        resident.append(drop_file_cache(big))
                    png = work / f"big-{c}-{i}.png"
                    env = dict(os.environ, VOXRAY_BENCH_OUT=str(png), MPLBACKEND="Agg", **env_t)
                    runs[c][state].append(once(c, big, env))
            load.append(loadavg())
        res = {
            "file": big.name,
            "file_bytes": size,
            "allocated_bytes": alloc,
            "sparse": alloc < size * 0.99,
            "volumes": nt,
            "how": f"{nii.name}'s header with dim[4] raised and its volumes repeated "
            "(os.copy_file_range); each cold run after posix_fadvise(DONTNEED) on this file",
            "ram_bytes": mem,
            "write_seconds": secs,
            "note": note,
            **planes_bytes(big),
            "cases": {c: {s: summary(r) for s, r in v.items()} for c, v in runs.items()},
            "resident_after_drop_bytes": resident,
            "loadavg": load,
            "walkthrough": f"get_fdata() would need {size * 4 / 1e9:.0f} GB (float64) of "
            f"{mem / 1e9:.0f} GB RAM: not run",
        }
        print(f"  {'case':34s} {'':5s} {'median s':>8s} {'min s':>8s} {'peak MB':>8s}  bytes read")
        for c in cases:
            for s in ("cold", "warm"):
                r = res["cases"][c][s]
                b = f"{r['bytes_read'] / 1e6:8.2f} MB" if "bytes_read" in r else ""
                label = LABELS[c] + (" (ref.)" if c.startswith("nib") else "")
                print(
                    f"  {label:34s} {s:5s} {r['seconds']:8.3f} {r['seconds_min']:8.3f} "
                    f"{r['peak_rss_mb']:8.0f}  {b}"
                )
        print(
            f"  shown: the three planes {res['ortho_planes_bytes'] / 1e6:.3f} MB, the mosaic's "
            f"12 planes {res['mosaic_planes_bytes'] / 1e6:.3f} MB (one volume "
            f"{res['volume_bytes'] / 1e6:.2f} MB)"
        )
        known = [r for r in resident if r is not None]
        if known:
            print(
                f"  cold runs: at most {max(known) / 1e6:.1f} MB of the file cached after each "
                "drop (fincore)"
            )
        print(f"  {res['walkthrough']}")
        print(f"  load average before/after: {load[0]} / {load[-1]}")
        return res
    finally:
        for p in (big, big.with_suffix(".tmp")):
            p.unlink(missing_ok=True)
        print(f"  deleted {big}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="*", help="run comparisons whose name matches")
    ap.add_argument("--big-gb", type=float, default=28.0, help="larger-than-memory file, GB")
    ap.add_argument("--no-big", action="store_true", help="skip the larger-than-memory image")
    ap.add_argument("--small", action="store_true", help=f"{SMALL_FRAMES} frames, to check")
    ap.add_argument("--peers-only", action="store_true", help="no voxray cases")
    args = ap.parse_args()

    if args.small:
        nii = make_data.bold(SMALL_FRAMES, make_data.DATA / "bold-small.nii")
    else:
        nii = make_data.bold()
    gz = make_data.gzipped(nii)
    print(
        f"data: {nii} ({nii.stat().st_size / 1e6:.0f} MB), "
        f"{gz} ({gz.stat().st_size / 1e6:.0f} MB, gzip -6); load average {loadavg()}",
        flush=True,
    )

    at_start = git_state()  # others may commit while this runs: both ends are recorded
    work = Path(tempfile.mkdtemp(prefix="voxray-bench-plot-"))
    indexed = dict(os.environ, VOXRAY_CACHE_DIR=str(work / "indexed"))
    vx_cases = () if args.peers_only else ("vx_plot_ortho",)

    def env_of(case: str) -> dict:
        if case == "vx_plot_ortho_first":  # never indexed: an empty cache every run
            return dict(os.environ, VOXRAY_CACHE_DIR=str(work / f"empty-{time.monotonic_ns()}"))
        return indexed if case.startswith("vx_") else dict(os.environ)

    if not args.peers_only:  # the index, built once into the "indexed" cache
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import numpy as np, voxray as vx; np.asarray(vx.load({str(gz)!r}).dataobj)",
            ],
            env=indexed,
            check=True,
        )

    results = []
    plan = [
        ("one volume, .nii", nii, (*PEERS, *vx_cases)),
        (
            "one volume, .nii.gz (voxray indexed; nibabel with indexed_gzip)",
            gz,
            (*PEERS, *vx_cases, *(() if args.peers_only else ("vx_plot_ortho_first",))),
        ),
    ]
    for name, path, cases in plan:
        if not fnmatch.fnmatch(name, args.only):
            continue
        res = compare(name, path, cases, args.repeat, work, env_of)
        report(res, "vx_plot_ortho")
        if not args.peers_only:
            res["ratios"] = {c: ratios(res, c) for c in res["cases"] if c.startswith("vx_")}
            for c in res["ratios"]:
                verdict(res, c)
        results.append(res)
        # Keep one picture of each case to look at (benchmarks/results is not committed).
        pics = HERE / "results" / "plot-png"
        pics.mkdir(parents=True, exist_ok=True)
        for c in cases:
            src = work / f"{path.name}-{c}-0.png"
            if src.exists():
                shutil.copy(src, pics / f"{path.name}-{c}.png")

    big = None
    if not (args.no_big or args.peers_only) and fnmatch.fnmatch("larger than memory", args.only):
        gb = 0.5 if args.small else args.big_gb
        big = larger_than_memory(nii, gb, args.repeat, work, None)

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    meta = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
        "t": "middle volume (shape[-1] // 2)",
        "data": {"nii": str(nii), "gz": str(gz)},
        "loadavg_end": loadavg(),
        "git_start": at_start,
        "git_end": git_state(),
    }
    dest = out / ("plot-small.json" if args.small else "plot.json")
    dest.write_text(
        json.dumps({"meta": meta, "results": results, "larger_than_memory": big}, indent=2)
    )
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nsaved {dest}")


if __name__ == "__main__":
    main()
