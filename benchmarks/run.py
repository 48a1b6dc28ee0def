"""voxray vs nibabel on realistic data, in one run: time ratios and peak memory.

    python benchmarks/run.py [--repeat 3] [--only PATTERN]

Every measurement runs in a fresh Python process (imports and setup are not
timed; peak RSS is the process's maximum resident set). The page cache is warm
for both libraries alike. nibabel runs with indexed_gzip installed, its best
case for .nii.gz. Results are printed as a table and saved as JSON.
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

CHILD = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
import cases
op = getattr(cases, {case!r})({path!r})
t0 = time.perf_counter()
out = op()
seconds = time.perf_counter() - t0
extra = out if isinstance(out, dict) else {{}}  # e.g. bytes transferred
del out
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": seconds, "peak_rss_mb": rss, **extra}}))
"""


def measure(case: str, path: Path, env: dict, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        code = CHILD.format(here=str(HERE), case=case, path=str(path))
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise RuntimeError(f"{case} failed:\n{out.stderr[-2000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "seconds_all": [round(r["seconds"], 4) for r in runs],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }
    if "bytes" in runs[0]:
        result["bytes"] = max(r["bytes"] for r in runs)
    return result


def _moto_server():
    """moto's S3 API server in its own process (its memory stays out of the measurements)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)


def remote_benchmarks(gz: Path, nii: Path, work: Path, repeat: int) -> list[dict]:
    """The last volume from a local S3 API server (moto) and a local HTTP server with
    Range support: voxray by byte ranges (the .nii.gz with an index, built once by
    ``voxray index URL``), vs downloading the object and reading it with nibabel."""
    from voxray.testing.httpserver import RangeServer

    out = []
    moto, endpoint = _moto_server()
    s3_options = {"key": "bench", "secret": "bench", "endpoint_url": endpoint}
    try:
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

        def s3(code: str) -> None:
            # In a child process: this one stays small (children inherit its peak RSS).
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"import s3fs; fs = s3fs.S3FileSystem(**{s3_options!r}); {code}",
                ],
                check=True,
            )

        s3("fs.mkdir('bench')")
        with RangeServer(gz.parent) as http:
            servers = [
                ("s3 (moto)", lambda p: f"s3://bench/{p.name}", s3_options),
                ("http", lambda p: http.url(p.name), {}),
            ]
            for server, url_of, options in servers:
                env = dict(
                    os.environ,
                    VOXRAY_BENCH_OPTIONS=json.dumps(options),
                    VOXRAY_CACHE_DIR=str(work / "remote-index"),
                )
                for label, path in ((".nii.gz", gz), (".nii", nii)):
                    url = url_of(path)
                    if server.startswith("s3"):
                        s3(f"fs.put({str(path)!r}, {url!r})")
                    if label == ".nii.gz":  # the index, built once by streaming the object
                        opts = [f"-o{k}={v}" for k, v in options.items()]
                        voxray = str(Path(sys.executable).parent / "voxray")
                        subprocess.run([voxray, "index", "-q", url, *opts], env=env, check=True)
                    probe = measure("range_get_64k", url, env, repeat)
                    print(
                        f"{server}: one 64 KiB range request to {path.name} takes "
                        f"{probe['seconds'] * 1000:.1f} ms",
                        flush=True,
                    )
                    nib_r = measure("nib_remote_last_volume", url, env, repeat)
                    vx_r = measure("vx_remote_last_volume", url, env, repeat)
                    ratio = vx_r["seconds"] / nib_r["seconds"]
                    byte_ratio = vx_r["bytes"] / nib_r["bytes"]
                    target = 0.02 if label == ".nii.gz" else None
                    name = f"{server} last volume {label}" + (", indexed" if target else "")
                    out.append(
                        dict(
                            name=name,
                            what="download + nibabel vs voxray byte ranges",
                            nibabel=nib_r,
                            voxray=vx_r,
                            ratio=ratio,
                            byte_ratio=byte_ratio,
                            target=target,
                            byte_target=target,
                            range_request_seconds=probe["seconds"],
                        )
                    )
                    ok = ""
                    if target is not None:
                        met = ratio <= target and byte_ratio <= target
                        ok = "  ok" if met else "  MISSED"
                    print(
                        f"{name:38s} nibabel {nib_r['seconds']:7.3f} s "
                        f"{nib_r['peak_rss_mb']:7.0f} MB | voxray {vx_r['seconds']:7.3f} s "
                        f"{vx_r['peak_rss_mb']:7.0f} MB | ratio {ratio:6.4f}, bytes "
                        f"{vx_r['bytes']}/{nib_r['bytes']} = {byte_ratio:.4f}"
                        + (f" (targets <= {target}){ok}" if target else ""),
                        flush=True,
                    )
                    if server.startswith("s3"):
                        s3(f"fs.rm({url!r})")
    finally:
        moto.terminate()
        moto.wait()
    return out


def command_time(cmd: list[str], env: dict, repeat: int) -> dict:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "seconds_all": [round(t, 4) for t in times]}


def write_benchmarks(nii: Path, work: Path, repeat: int, empty_cache) -> list[dict]:
    """vx.save vs nib.save to .nii.gz; then the last volume of voxray's file, fresh cache."""
    out = []
    nib_out, vx_out = work / "nib-written.nii.gz", work / "vx-written.nii.gz"
    nib_r = measure("nib_save_gz", nii, dict(os.environ, VOXRAY_BENCH_OUT=str(nib_out)), repeat)
    vx_r = measure("vx_save_gz", nii, dict(empty_cache(), VOXRAY_BENCH_OUT=str(vx_out)), repeat)
    ratio = vx_r["seconds"] / nib_r["seconds"]
    size = vx_out.stat().st_size / nib_out.stat().st_size
    out.append(
        dict(
            name="save to .nii.gz",
            nibabel=nib_r,
            voxray=vx_r,
            ratio=ratio,
            target=0.5,
            size_ratio=size,
            nibabel_bytes=nib_out.stat().st_size,
            voxray_bytes=vx_out.stat().st_size,
        )
    )
    print(
        f"{'save to .nii.gz':38s} nibabel {nib_r['seconds']:7.3f} s {nib_r['peak_rss_mb']:7.0f} MB"
        f" | voxray {vx_r['seconds']:7.3f} s {vx_r['peak_rss_mb']:7.0f} MB | ratio {ratio:6.3f} "
        f"(target <= 0.5){'  ok' if ratio <= 0.5 else '  MISSED'}; size ratio {size:.3f} "
        f"(target <= 1.1), RSS target <= 500 MB",
        flush=True,
    )
    # Reading the last volume of voxray's own file: every voxray run in a fresh process
    # with an empty cache (the index comes from the file's trailer).
    nib_r = measure("nib_last_volume", vx_out, dict(os.environ), repeat)
    runs = [measure("vx_last_volume", vx_out, empty_cache(), 1) for _ in range(repeat)]
    vx_r = {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "seconds_all": [r["seconds_all"][0] for r in runs],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
    }
    ratio = vx_r["seconds"] / nib_r["seconds"]
    out.append(
        dict(
            name="last volume of voxray's .nii.gz, empty cache",
            nibabel=nib_r,
            voxray=vx_r,
            ratio=ratio,
            target=0.05,
        )
    )
    print(
        f"{'last vol of vx .nii.gz, empty cache':38s} nibabel {nib_r['seconds']:7.3f} s "
        f"{nib_r['peak_rss_mb']:7.0f} MB | voxray {vx_r['seconds']:7.3f} s "
        f"{vx_r['peak_rss_mb']:7.0f} MB | ratio {ratio:6.3f} (target <= 0.05)"
        f"{'  ok' if ratio <= 0.05 else '  MISSED'}",
        flush=True,
    )
    return out


def zarr_benchmarks(gz: Path, anat: Path, work: Path, repeat: int, empty_cache) -> list[dict]:
    """voxray.to_zarr vs nifti-zarr's nii2zarr (same chunks, hence the same levels)."""
    out = []
    for label, src in (("4D .nii.gz", gz), ("3D anatomical 4x, pyramid", anat)):
        theirs = dict(os.environ, VOXRAY_BENCH_OUT=str(work / "niizarr.nii.zarr"))
        ours = dict(empty_cache(), VOXRAY_BENCH_OUT=str(work / "voxray.nii.zarr"))
        nz = measure("niizarr_convert", src, theirs, max(1, repeat - 2))
        for case, what in (("vx_zarr_convert", "chunks=64"), ("vx_zarr_default", "defaults")):
            runs = [
                measure(
                    case, src, dict(empty_cache(), VOXRAY_BENCH_OUT=ours["VOXRAY_BENCH_OUT"]), 1
                )
                for _ in range(repeat)
            ]
            vx_r = {
                "seconds": statistics.median(r["seconds"] for r in runs),
                "seconds_all": [r["seconds_all"][0] for r in runs],
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            }
            ratio = vx_r["seconds"] / nz["seconds"]
            rss = vx_r["peak_rss_mb"] / nz["peak_rss_mb"]
            name = f"to zarr, {label} ({what})"
            out.append(
                dict(
                    name=name,
                    nibabel=nz,
                    voxray=vx_r,
                    ratio=ratio,
                    rss_ratio=rss,
                    target=0.5 if what == "chunks=64" and "4D" in label else None,
                )
            )
            print(
                f"{name:38s} niizarr {nz['seconds']:7.3f} s {nz['peak_rss_mb']:7.0f} MB | "
                f"voxray {vx_r['seconds']:7.3f} s {vx_r['peak_rss_mb']:7.0f} MB | "
                f"ratio {ratio:6.3f} rss ratio {rss:5.3f}",
                flush=True,
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="*", help="run comparisons whose name matches")
    args = ap.parse_args()

    nii = make_data.bold()
    gz = make_data.gzipped(nii)
    print(
        f"data: {nii} ({nii.stat().st_size / 1e6:.0f} MB), "
        f"{gz} ({gz.stat().st_size / 1e6:.0f} MB, gzip -6)\n"
    )

    work = Path(tempfile.mkdtemp(prefix="voxray-bench-"))
    indexed = dict(os.environ, VOXRAY_CACHE_DIR=str(work / "indexed"))
    bin_dir = Path(sys.executable).parent

    def empty_cache() -> dict:
        d = work / f"empty-{time.monotonic_ns()}"
        return dict(os.environ, VOXRAY_CACHE_DIR=str(d))

    # Build the index once, into the "indexed" cache (what a second process finds).
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import numpy as np, voxray as vx; np.asarray(vx.load({str(gz)!r}).dataobj)",
        ],
        env=indexed,
        check=True,
    )

    comparisons = [
        # name, nibabel case, voxray case, path, voxray env, target (ratio), what
        ("nii full read", "nib_full", "vx_full", nii, None, 1.1, "nibabel np.array(dataobj)"),
        ("nii one volume", "nib_volume", "vx_volume", nii, None, None, "dataobj[..., t]"),
        (
            "nii mean over time",
            "nib_mean",
            "vx_mean",
            nii,
            None,
            None,
            "get_fdata().mean(-1) vs to_dask().mean(-1)",
        ),
        (
            "gz full read, index present",
            "nib_full",
            "vx_full",
            gz,
            "indexed",
            0.35,
            "nibabel np.asanyarray(dataobj)",
        ),
        (
            "gz full read, first open, no index",
            "nib_full",
            "vx_full",
            gz,
            "empty",
            0.6,
            "index built during the read",
        ),
        (
            "gz last volume, index present",
            "nib_last_volume",
            "vx_last_volume",
            gz,
            "indexed",
            0.05,
            "",
        ),
        ("gz mean over time, index present", "nib_mean", "vx_mean", gz, "indexed", None, ""),
        # xarray vs voxray's own dask graph: the baseline here is img.to_dask()
        (
            "gz mean('t') xarray vs to_dask",
            "vx_mean",
            "vx_xarray_mean",
            gz,
            "indexed",
            1.1,
            "baseline: to_dask().mean(-1)",
        ),
    ]
    results = []
    for name, nib_case, vx_case, path, vx_env, target, what in comparisons:
        if not fnmatch.fnmatch(name, args.only):
            continue
        env = {"indexed": indexed, "empty": None, None: dict(os.environ)}[vx_env]
        base_env = env if nib_case.startswith("vx_") else dict(os.environ)
        # Alternating runs (nibabel, voxray, nibabel, ...): this VM's noise hits both alike.
        nib_runs, vx_runs = [], []
        for _ in range(args.repeat):
            nib_runs.append(measure(nib_case, path, base_env, 1))
            vx_env_now = empty_cache() if vx_env == "empty" else env  # fresh cache each time
            vx_runs.append(measure(vx_case, path, vx_env_now, 1))
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
            dict(
                name=name,
                what=what,
                nibabel=nib_r,
                voxray=vx_r,
                ratio=ratio,
                ratio_min=ratio_min,
                target=target,
            )
        )
        ok = "" if target is None else ("  ok" if ratio <= target else "  MISSED")
        print(
            f"{name:38s} {'base' if nib_case.startswith('vx_') else 'nibabel':7s} "
            f"{nib_r['seconds']:7.3f} s {nib_r['peak_rss_mb']:7.0f} MB | "
            f"voxray {vx_r['seconds']:7.3f} s {vx_r['peak_rss_mb']:7.0f} MB | "
            f"ratio {ratio:6.3f} (min {ratio_min:6.3f})"
            + (f" (target <= {target}){ok}" if target else ""),
            flush=True,
        )

    if fnmatch.fnmatch("save to .nii.gz", args.only):
        results += write_benchmarks(nii, work, args.repeat, empty_cache)

    if fnmatch.fnmatch("nifti to zarr", args.only):
        results += zarr_benchmarks(gz, make_data.anatomical_4x(), work, args.repeat, empty_cache)

    if fnmatch.fnmatch("remote last volume", args.only):
        results += remote_benchmarks(gz, nii, work, args.repeat)

    if fnmatch.fnmatch("info vs nib-ls", args.only):
        env = dict(os.environ)
        nib_ls = command_time([str(bin_dir / "nib-ls"), str(gz)], env, args.repeat + 2)
        info = command_time([str(bin_dir / "voxray"), "info", str(gz)], env, args.repeat + 2)
        ratio = info["seconds"] / nib_ls["seconds"]
        results.append(
            dict(
                name="voxray info vs nib-ls (.nii.gz)",
                nibabel=nib_ls,
                voxray=info,
                ratio=ratio,
                target=1.5,
            )
        )
        print(
            f"{'voxray info vs nib-ls (.nii.gz)':38s} nib-ls  {nib_ls['seconds']:7.3f} s "
            f"           | voxray {info['seconds']:7.3f} s            | ratio {ratio:6.3f} "
            f"(target <= 1.5){'  ok' if ratio <= 1.5 else '  MISSED'}"
        )

    out = HERE / "results"
    out.mkdir(exist_ok=True)
    meta = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "data": {
            "nii": str(nii),
            "gz": str(gz),
            "nii_bytes": nii.stat().st_size,
            "gz_bytes": gz.stat().st_size,
        },
    }
    (out / "latest.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nsaved {out / 'latest.json'}")


if __name__ == "__main__":
    main()
