"""Processing out of core (issue 14): voxray vs nilearn / nibabel.processing, in one run.

    python benchmarks/processing.py [--repeat 5] [--only PATTERN] [--big-gb 26 | --no-big]
                                    [--big-only] [--small] [--peers-only]

The data is ``make_data.bold()`` (98 x 116 x 94 x 300 int16, 641 MB; MNI-based
BOLD-like series, .nii). Every timed run starts from the path (the load is timed) and
ends with the result written to ``.nii`` (or, for the masked matrix, held as a numpy
array; ``vx_mask_clean_npy`` writes it to a ``.npy`` instead). Imports are setup.

Comparisons (``cases_processing``), each case in a fresh process, runs alternating case
by case (one run of each per round, ``--repeat`` rounds):

* resample to a 3 mm isotropic grid (3x3 target affine: nilearn's bounding box),
  ``interpolation="continuous"`` (cubic spline) and ``"linear"``: nilearn's resample_img
  vs voxray's;
* smooth, 6 mm FWHM: nilearn's smooth_img vs voxray's (nilearn's answer, float32) and
  nibabel.processing.smooth_image vs voxray's (nibabel's answer, int16);
* mask (nilearn's compute_epi_mask of the series, computed once and given to both) +
  detrend + standardise (zscore_sample) -> the (t, n_voxels) matrix: nilearn's
  apply_mask + signal.clean and its NiftiMasker (the faster is the peer) vs voxray's
  apply_mask + clean computed to a numpy array (and written to .npy);
* a seed-based correlation map: the cleaned matrix, the seed = the mean time course of
  the voxels within 6 mm of the PCC (0, -52, 18), r of every voxel with it, unmasked and
  written as a 3-D .nii (nilearn + numpy vs voxray, lazily: the seed, then the map).

Each comparison's outputs are checked against the peer's (max abs difference, relative
to the peer's max abs value). Reported: time ratio voxray / peer (median and minimum of
the per-round ratios), peak RSS (ru_maxrss of the run's process), CPU time (user + system),
bytes voxray read, input throughput (MB/s). Targets: voxray peak RSS <= 1 GB, time <= 1.0x
the peer's.

Then the voxray cases once each on a 4-D ``.nii`` larger than this machine's memory
(``--big-gb`` GB of the series' real volumes repeated, not sparse; the file's page cache
dropped before each case), throughput against the small image's (target within 30%),
deleted at the end (``clean`` with its default, two streamed passes; set
``VOXRAY_BENCH_RECHUNK=zarr`` for its Zarr rechunk). Results:
``benchmarks/results/processing.json`` (written after every comparison, merged across
``--only`` runs) and ``processing-big.json``.
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
import plot  # noqa: E402  (big_nii, drop_file_cache, git_state, loadavg)

CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, {here!r})
import cases_processing as cases
op = getattr(cases, {case!r})({path!r})
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
out = op()
seconds = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
extra = dict(out) if isinstance(out, dict) else {{}}
keep = extra.pop("_save", None)
del out
rss = r1.ru_maxrss / 1024
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
if keep is not None:  # untimed, after the peak was read: the matrix, for the check
    import numpy as np
    np.save(os.environ["VOXRAY_BENCH_OUT"], keep)
print(json.dumps({{"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": rss, **extra}}))
"""

SMALL_FRAMES = 40
RSS_TARGET_MB = 1024.0
TIME_TARGET = 1.0  # voxray / peer
THROUGHPUT_TARGET = 0.30  # the big image's MB/s within 30% of the small image's
KEEP_FREE = 5e9

LABELS = {
    "nl_resample_cubic": "nilearn resample_img (continuous)",
    "vx_resample_cubic": "voxray resample_img (continuous)",
    "nl_resample_linear": "nilearn resample_img (linear)",
    "vx_resample_linear": "voxray resample_img (linear)",
    "nl_resample_linear_noclip": "nilearn resample_img (linear, clip=False)",
    "vx_resample_linear_noclip": "voxray resample_img (linear, clip=False)",
    "nl_smooth": "nilearn smooth_img",
    "vx_smooth": "voxray smooth_img",
    "nib_smooth": "nibabel.processing.smooth_image",
    "vx_smooth_image": "voxray smooth_image",
    "nl_mask_clean": "nilearn apply_mask + signal.clean",
    "nl_masker": "nilearn NiftiMasker.fit_transform",
    "vx_mask_clean": "voxray apply_mask + clean (numpy)",
    "vx_mask_clean_npy": "voxray apply_mask + clean (.npy)",
    "vx_masker": "voxray NiftiMasker.fit_transform (numpy)",
    "vx_seed_map": "voxray seed map",
    "nl_seed_map": "nilearn apply_mask+clean, numpy seed map",
    "nl_seed_masker": "nilearn NiftiMasker, numpy seed map",
}
#: name, peers (the fastest is "the peer"), voxray cases, output suffix
COMPARISONS = [
    ("resample 3 mm, cubic", ("nl_resample_cubic",), ("vx_resample_cubic",), ".nii"),
    ("resample 3 mm, linear", ("nl_resample_linear",), ("vx_resample_linear",), ".nii"),
    (
        "resample 3 mm, linear, clip=False",
        ("nl_resample_linear_noclip",),
        ("vx_resample_linear_noclip",),
        ".nii",
    ),
    ("smooth 6 mm (nilearn)", ("nl_smooth",), ("vx_smooth",), ".nii"),
    ("smooth 6 mm (nibabel)", ("nib_smooth",), ("vx_smooth_image",), ".nii"),
    (
        "mask + detrend + zscore",
        ("nl_mask_clean", "nl_masker"),
        ("vx_mask_clean", "vx_mask_clean_npy", "vx_masker"),
        ".npy",
    ),
    ("seed correlation map", ("nl_seed_map", "nl_seed_masker"), ("vx_seed_map",), ".nii"),
]
#: voxray cases run on the larger-than-memory image (the matrix does not fit: .npy)
#: (smooth_img's float32 output would be twice the input: smooth_image's int16 is run)
BIG_CASES = (
    "vx_resample_linear",
    "vx_smooth_image",
    "vx_mask_clean_npy",
    "vx_seed_map",
    "vx_resample_cubic",
    "vx_resample_linear_noclip",
)


def once(case: str, path: Path, env: dict) -> dict:
    """One run of ``cases_processing.<case>(path)`` in a fresh process."""
    code = CHILD.format(here=str(HERE), case=case, path=str(path))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{case} on {path.name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(runs: list[dict], nbytes: int) -> dict:
    med = statistics.median(r["seconds"] for r in runs)
    res = {
        "seconds": med,
        "seconds_min": min(r["seconds"] for r in runs),
        "seconds_all": [round(r["seconds"], 3) for r in runs],
        "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "input_mb_per_s": nbytes / 1e6 / med,
    }
    if "bytes_read" in runs[0]:
        res["bytes_read"] = max(r["bytes_read"] for r in runs)
        res["reads_of_input"] = res["bytes_read"] / nbytes
    return res


def epi_mask(nii: Path) -> Path:
    """nilearn's compute_epi_mask of the series, once (given to both libraries)."""
    dst = nii.with_name(nii.name.replace(".nii", "-epi-mask.nii"))
    if not dst.exists():  # in a child: this process stays small (see check)
        tmp = dst.with_name("tmp-" + dst.name)
        code = "import sys; from nilearn.masking import compute_epi_mask as m; "
        code += "m(sys.argv[1]).to_filename(sys.argv[2])"
        subprocess.run([sys.executable, "-c", code, str(nii), str(tmp)], check=True)
        os.replace(tmp, dst)
    return dst


CHECK = """
import json, sys
import nibabel as nib
import numpy as np
got, want = sys.argv[1:3]
if got.endswith(".npy"):
    got, want = np.load(got, mmap_mode="r"), np.load(want, mmap_mode="r")
else:
    got, want = nib.load(got).dataobj, nib.load(want).dataobj
if got.shape != want.shape:
    print(json.dumps({"shape_vx": list(got.shape), "shape_peer": list(want.shape)}))
    raise SystemExit
err = ref = 0.0
for t in range(got.shape[-1] if len(got.shape) == 4 else 1):  # a volume at a time
    key = (..., t) if len(got.shape) == 4 else ...
    g, w = np.asarray(got[key], np.float64), np.asarray(want[key], np.float64)
    if w.size:
        err, ref = max(err, float(np.abs(g - w).max())), max(ref, float(np.abs(w).max()))
print(json.dumps({"shape": list(got.shape), "max_abs_error": err,
                  "relative_error": err / ref if ref else err, "peer_max_abs": ref}))
"""


def check(vx_out: Path, peer_out: Path) -> dict:
    """max |voxray - peer| and that over max |peer| (images as stored, scaled), in a
    child process: this one stays small, as a child's ru_maxrss starts from its
    parent's resident set at the fork."""
    out = subprocess.run(
        [sys.executable, "-c", CHECK, str(vx_out), str(peer_out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(name, path, peers, vx_cases, suffix, repeat, work, mask) -> dict:
    cases = (*peers, *vx_cases)
    runs: dict[str, list[dict]] = {c: [] for c in cases}
    nbytes = path.stat().st_size
    load = [plot.loadavg()]
    for i in range(repeat):
        for c in cases:
            out = work / (c + (".npy" if c == "vx_mask_clean_npy" else suffix))
            env = dict(os.environ, VOXRAY_BENCH_OUT=str(out), VOXRAY_BENCH_MASK=str(mask))
            if i == repeat - 1:
                env["VOXRAY_BENCH_KEEP"] = "1"
            r = once(c, path, env)
            runs[c].append(r)
            print(
                f"    {c:22s} run {i + 1}: {r['seconds']:8.2f} s, cpu {r['cpu_seconds']:7.1f} s, "
                f"{r['peak_rss_mb']:6.0f} MB",
                flush=True,
            )
        load.append(plot.loadavg())
    res = {
        "name": name,
        "file": path.name,
        "file_bytes": nbytes,
        "cases": {c: summary(r, nbytes) for c, r in runs.items()},
        "loadavg": load,
    }
    if peers and vx_cases:
        peer = min(peers, key=lambda c: res["cases"][c]["seconds"])
        res["peer"] = peer
        res["ratios"], res["checks"], res["targets"] = {}, {}, {}
        for v in vx_cases:
            per_round = [a["seconds"] / b["seconds"] for a, b in zip(runs[v], runs[peer])]
            res["ratios"][v] = {
                "median": statistics.median(per_round),
                "min": min(per_round),
                "all": [round(x, 3) for x in per_round],
            }
            res["checks"][v] = {
                p: check(
                    work / (v + (".npy" if v.endswith("npy") else suffix)), work / (p + suffix)
                )
                for p in peers
            }
            vr = res["cases"][v]
            res["targets"][v] = {
                "time_ratio_met": res["ratios"][v]["median"] <= TIME_TARGET,
                "peak_rss_met": vr["peak_rss_mb"] <= RSS_TARGET_MB,
            }
    return res


HEAD = (
    f"  {'case':44s} {'median s':>8s} {'min s':>8s} {'cpu s':>7s} {'peak MB':>8s} "
    f"{'MB/s in':>8s} {'reads':>6s}"
)


def report(res: dict) -> None:
    print(f"\n{res['name']}  ({res['file']}, {res['file_bytes'] / 1e6:.0f} MB)")
    print(HEAD)
    for c, r in res["cases"].items():
        reads = f"{r['reads_of_input']:6.2f}" if "reads_of_input" in r else ""
        mark = " (peer)" if c == res.get("peer") else ""
        print(
            f"  {LABELS[c] + mark:44s} {r['seconds']:8.2f} {r['seconds_min']:8.2f} "
            f"{r['cpu_seconds']:7.1f} {r['peak_rss_mb']:8.0f} {r['input_mb_per_s']:8.1f} {reads}"
        )
    for v, q in res.get("ratios", {}).items():
        t = res["targets"][v]
        print(
            f"  {LABELS[v]} / {LABELS[res['peer']]}: {q['median']:.3f}x (min {q['min']:.3f}) "
            f"time target <= {TIME_TARGET} {'ok' if t['time_ratio_met'] else 'MISSED'}; peak "
            f"RSS {res['cases'][v]['peak_rss_mb']:.0f} MB (<= {RSS_TARGET_MB:.0f}) "
            f"{'ok' if t['peak_rss_met'] else 'MISSED'}"
        )
        for p, ch in res["checks"][v].items():
            if "error" in ch:
                print(f"    vs {p}: CHECK FAILED {ch['error']}")
            elif "max_abs_error" in ch:
                print(
                    f"    vs {p}: max abs diff {ch['max_abs_error']:.3g} "
                    f"(relative {ch['relative_error']:.3g}), shape {tuple(ch['shape'])}"
                )
            else:
                print(f"    vs {p}: SHAPES DIFFER {ch}")
    print(f"  load average before/after: {res['loadavg'][0]} / {res['loadavg'][-1]}")


def big_need(nii: Path, gb: float, cases) -> float:
    """Disk the big file and its largest output need (bytes)."""
    out = {"vx_resample_cubic": 2 / 3.375, "vx_resample_linear": 1 / 3.375}
    out["vx_resample_linear_noclip"] = 1 / 3.375
    out |= {"vx_smooth_image": 1.0, "vx_smooth": 2.0, "vx_mask_clean_npy": 0.95}
    return gb * 1e9 * (1 + max((out.get(c, 0.01) for c in cases), default=0))


def larger_than_memory(
    nii: Path, mask: Path, gb: float, work: Path, small: dict, keep: bool, only: str
):
    """Each voxray case once on a .nii larger than RAM (cold: its pages dropped first)."""
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    big = nii.with_name(nii.stem + "-processing-big.nii")
    free = shutil.disk_usage(nii.parent).free + (big.stat().st_size if big.exists() else 0)
    chosen = [c for c in BIG_CASES if fnmatch.fnmatch(c, only)]
    cases = [c for c in chosen if big_need(nii, gb, [c]) + KEEP_FREE <= free]
    skipped = [c for c in chosen if c not in cases]
    print(
        f"\nlarger than memory: RAM {mem / 1e9:.1f} GB, disk free {free / 1e9:.1f} GB, "
        f"{gb:.1f} GB image at {big}",
        flush=True,
    )
    if skipped:
        print(f"  NOTE: not enough disk for the outputs of {skipped}: skipped")
    want = gb * 1e9
    dest = (
        HERE
        / "results"
        / ("processing-big-small.json" if "small" in nii.name else "processing-big.json")
    )
    earlier = json.loads(dest.read_text())["larger_than_memory"] if dest.exists() else {}
    res: dict = {"file": big.name, "ram_bytes": mem, "skipped_for_disk": skipped}
    res["cases"] = dict(earlier.get("cases", {}))  # an earlier --big-cases run's
    try:
        if big.exists() and abs(big.stat().st_size - want) < 2 * 2.2e6:
            print(f"  reusing {big} ({big.stat().st_size / 1e9:.2f} GB)", flush=True)
            secs = None
        else:
            _, secs = plot.big_nii(nii, big, want)
        size = big.stat().st_size
        alloc = os.stat(big).st_blocks * 512
        import nibabel as nib

        res |= {
            "file_bytes": size,
            "allocated_bytes": alloc,
            "sparse": alloc < size * 0.99,
            "shape": list(nib.load(big).shape),
            "write_seconds": secs,
            "how": f"{nii.name}'s header with dim[4] raised, its volumes repeated "
            "(os.copy_file_range); posix_fadvise(DONTNEED) on it before each case",
        }
        print(f"  {size / 1e9:.2f} GB, shape {res['shape']}, allocated {alloc / 1e9:.2f} GB")
        for c in cases:
            out = work / ("big-" + c + (".npy" if c.endswith("npy") else ".nii"))
            resident = plot.drop_file_cache(big)
            env = dict(os.environ, VOXRAY_BENCH_OUT=str(out), VOXRAY_BENCH_MASK=str(mask))
            r_how = os.environ.get("VOXRAY_BENCH_RECHUNK")  # clean's default: streamed
            t0 = time.perf_counter()
            try:
                r = once(c, big, env)
            except RuntimeError as e:
                r = {"error": str(e)[-1500:]}
                print(f"  {LABELS[c]:36s} FAILED after {time.perf_counter() - t0:.0f} s:\n{e}")
            finally:
                out.unlink(missing_ok=True)
            r["resident_after_drop_bytes"] = resident
            r["clean_rechunk"] = r_how
            if "seconds" in r:
                r["input_mb_per_s"] = size / 1e6 / r["seconds"]
                if "bytes_read" in r:
                    r["reads_of_input"] = r["bytes_read"] / size
                ref = small.get(c)
                if ref is not None:
                    r["small_input_mb_per_s"] = ref["input_mb_per_s"]
                    r["throughput_vs_small"] = r["input_mb_per_s"] / ref["input_mb_per_s"]
                    r["throughput_met"] = r["throughput_vs_small"] >= 1 - THROUGHPUT_TARGET
                r["peak_rss_met"] = r["peak_rss_mb"] <= RSS_TARGET_MB
                vs = (
                    f", {r['throughput_vs_small']:.2f}x the small image's "
                    f"{r['small_input_mb_per_s']:.0f} MB/s"
                    if "throughput_vs_small" in r
                    else ""
                )
                reads = f", read {r['reads_of_input']:.2f}x" if "reads_of_input" in r else ""
                print(
                    f"  {LABELS[c]:36s} {r['seconds']:8.1f} s, cpu {r['cpu_seconds']:7.1f} s, "
                    f"peak {r['peak_rss_mb']:6.0f} MB, {r['input_mb_per_s']:6.1f} MB/s{vs}{reads}",
                    flush=True,
                )
            r["git"] = plot.git_state()
            r["loadavg"] = plot.loadavg()
            res["cases"][c] = r
            save(dest, {"larger_than_memory": res})
        return res
    finally:
        if not keep:
            for p in (big, big.with_suffix(".tmp")):
                p.unlink(missing_ok=True)
            print(f"  deleted {big}", flush=True)


def merged(dest: Path, key: str, new: list[dict]) -> list[dict]:
    """The comparisons already in ``dest`` (an earlier ``--only`` run) with ``new``'s
    replacing those of the same name: one file holds the latest of each."""
    old = json.loads(dest.read_text()).get(key, []) if dest.exists() else []
    names = {r["name"] for r in new}
    return [r for r in old if r["name"] not in names] + new


def save(dest: Path, payload: dict) -> None:
    dest.parent.mkdir(exist_ok=True)
    meta = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "git": plot.git_state(),
        "loadavg": plot.loadavg(),
    }
    dest.write_text(json.dumps({"meta": meta, **payload}, indent=2))


def oracle_errors() -> dict:
    """voxray's answers against the oracles' on nilearn's MNI152 T1 template (1 mm,
    197 x 233 x 189): resampled to 3 mm (axis-aligned and rotated 10 degrees about z)
    with each interpolation, in one output block and in 16^3 tiles (each tile's input
    region prefiltered on its own: the cubic spline's halo approximation), and smoothed
    6 mm; max abs difference and that over the oracle's max abs value."""
    import nibabel as nib
    import numpy as np
    from nibabel.processing import smooth_image as nib_smooth
    from nilearn.image import resample_img as nl_resample
    from nilearn.image import smooth_img as nl_smooth

    import voxray as vx
    import voxray.processing as vp

    path = make_data.template().get_filename()
    ref, img = nib.load(path), vx.load(path)
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    rotated = np.array(
        [[3 * c, -3 * s, 0, -90], [3 * s, 3 * c, 0, -126], [0, 0, 3, -72], [0, 0, 0, 1]]
    )
    targets = {"3 mm (3x3 affine)": (np.diag([3.0, 3.0, 3.0]), None)}
    targets["3 mm rotated 10 deg"] = (rotated, (66, 78, 64))
    out: dict = {"template": Path(path).name, "shape": list(ref.shape)}

    def err(got, want):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        e = float(np.abs(got - want).max())
        return {"max_abs_error": e, "relative_error": e / float(np.abs(want).max())}

    for name, (affine, shape) in targets.items():
        for interp in ("continuous", "linear", "nearest"):
            kw = {"target_affine": affine, "target_shape": shape, "interpolation": interp}
            want = nl_resample(ref, **kw, force_resample=True, copy_header=True).get_fdata()
            for chunks in (None, 16):  # one block (the volume is small), 16^3 tiles
                got = vp.resample_img(img, **kw, chunks=chunks).get_fdata()
                tiles = "one block" if chunks is None else f"{chunks}^3 tiles"
                out[f"resample_img {interp}, {name}, {tiles}"] = err(got, want)
    # float64 copies: the spline tiles' prefilter approximation, below float32 rounding
    d64 = np.asarray(ref.dataobj, np.float64)
    ref64, img64 = nib.Nifti1Image(d64, ref.affine), vx.Image(d64, ref.affine)
    for name, (affine, shape) in targets.items():
        kw = {"target_affine": affine, "target_shape": shape, "interpolation": "continuous"}
        want = nl_resample(ref64, **kw, force_resample=True, copy_header=True).get_fdata()
        got = vp.resample_img(img64, **kw, chunks=16).get_fdata()
        out[f"resample_img continuous, float64, {name}, 16^3 tiles"] = err(got, want)
    out["smooth_img 6 mm"] = err(vp.smooth_img(img, 6).get_fdata(), nl_smooth(ref, 6).get_fdata())
    out["smooth_image 6 mm"] = err(
        vp.smooth_image(img, 6).get_fdata(), nib_smooth(ref, 6).get_fdata()
    )
    for k, v in out.items():
        if isinstance(v, dict):
            print(
                f"  {k:44s} max abs {v['max_abs_error']:.3g}, relative {v['relative_error']:.3g}"
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="*", help="run comparisons whose name matches")
    ap.add_argument("--big-gb", type=float, default=26.0, help="larger-than-memory file, GB")
    ap.add_argument("--no-big", action="store_true", help="skip the larger-than-memory image")
    ap.add_argument("--big-only", action="store_true", help="only the larger-than-memory image")
    ap.add_argument("--keep-big", action="store_true", help="keep (and reuse) the big file")
    ap.add_argument("--big-cases", default="*", help="big-image cases matching this pattern")
    ap.add_argument("--small", action="store_true", help=f"{SMALL_FRAMES} frames, to check")
    ap.add_argument("--peers-only", action="store_true", help="no voxray cases")
    ap.add_argument("--cases", default="*", help="only the voxray cases matching this")
    ap.add_argument(
        "--oracle", action="store_true", help="only voxray's errors against nilearn/nibabel"
    )
    args = ap.parse_args()
    if args.oracle:
        print("voxray vs the oracles on the MNI152 template:", flush=True)
        save(HERE / "results" / "processing-oracle.json", {"errors": oracle_errors()})
        return

    if args.small:
        nii = make_data.bold(SMALL_FRAMES, make_data.DATA / "bold-small.nii")
    else:
        nii = make_data.bold()
    mask = epi_mask(nii)
    print(
        f"data: {nii} ({nii.stat().st_size / 1e6:.0f} MB), mask {mask.name}; "
        f"load average {plot.loadavg()}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="voxray-bench-processing-", dir=nii.parent))
    dest = HERE / "results" / ("processing-small.json" if args.small else "processing.json")
    git_start = plot.git_state()
    try:
        if not args.big_only:
            for name, peers, vx_cases, suffix in COMPARISONS:
                if not fnmatch.fnmatch(name, args.only):
                    continue
                print(f"\n{name}", flush=True)
                vx_cases = [c for c in vx_cases if fnmatch.fnmatch(c, args.cases)]
                res = compare(
                    name,
                    nii,
                    peers,
                    () if args.peers_only else vx_cases,
                    suffix,
                    args.repeat,
                    work,
                    mask,
                )
                report(res)
                res["git_start"], res["git_end"] = git_start, plot.git_state()
                results = merged(dest, "results", [res])
                save(dest, {"results": results})
            print(f"\nsaved {dest}")
        if not (args.no_big or args.peers_only):
            small = {}
            if dest.exists():  # the small image's throughput, from this or the last run
                for r in json.loads(dest.read_text())["results"]:
                    small |= {c: v for c, v in r["cases"].items() if c.startswith("vx_")}
            gb = 0.5 if args.small else args.big_gb
            larger_than_memory(nii, mask, gb, work, small, args.keep_big, args.big_cases)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
