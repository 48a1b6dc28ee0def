"""The fuzz campaign: damaged files through every public read path, classified.

Case ``i`` of campaign seed ``S`` is fully determined by ``random.Random(f"{S}:{i}")``:
it draws a format, a seed file of that format (:mod:`.fuzz_seeds`) and a mutator
(:mod:`.fuzz_mutate`), copies the seed into a fresh directory and damages it. The
worker (:mod:`.fuzz_pool`: a memory limit, a time limit, restarted if it dies) then
reads the case twice:

* the oracle: nibabel (``nib.load``, ``np.asanyarray(dataobj)``, ``affine``), warnings
  ignored, any exception recorded; for ``.nii.zarr`` (nibabel has no reader) the
  undamaged seed's data as voxray reads it;
* voxray: ``vx.load``, ``header``/``affine``, ``np.asanyarray(img.dataobj)``, a random
  slice of ``dataobj``, ``img.to_dask().sum()`` (sync scheduler), and for images with an
  affine ``vx.as_closest_canonical`` + a read and ``img.to_xarray()`` + its values;
  every derived result is checked against voxray's own full read.

Classes (``DEFECTS`` must stay empty):

``equal``         both read; same dtype, values (NaN-equal) and affine (close)
``voxray_error``  the oracle fails too and voxray raises a ``VoxrayError`` naming the file
``refused``       the oracle reads, voxray raises a ``VoxrayError`` naming the file (listed:
                  voxray may be stricter only where the data could be wrong)
``tolerant``      the oracle fails, voxray reads consistently (listed)
``unnamed``       a ``VoxrayError`` whose message names no file of the case
``other``         any other exception escaping voxray
``wrong``         both read and differ, or voxray's own paths disagree
``hang``          the time limit passed (the worker is killed and replaced)
``crash``         the worker died, or a ``MemoryError`` under the memory limit
``changed``       Zarr chunk bytes flipped (still decoding) or chunks swapped: a valid store
                  of other values, undetectable without checksums (listed)
``oracle_fail``   nibabel itself hung or crashed the worker (not voxray's defect)

Run ``python -m voxray.testing.fuzz --cases 100000`` (``make fuzz``); reproduce one
case with ``python -m voxray.testing.fuzz --seed S --case I`` (in-process, traceback
shown, ``--keep DIR`` keeps the damaged files).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing as mp
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .fuzz_mutate import mutate
from .fuzz_pool import DEFAULT_MEMORY_LIMIT, DEFAULT_TIME_LIMIT, run_pool
from .fuzz_seeds import FORMATS, Seed, build_seeds, load_seeds

__all__ = [
    "CLASSES",
    "DEFECTS",
    "Report",
    "build_case",
    "main",
    "prepare_seeds",
    "run_campaign",
    "run_case",
    "run_corpus",
    "run_named",
]

CLASSES = (
    "equal",
    "voxray_error",
    "refused",
    "tolerant",
    "unnamed",
    "other",
    "wrong",
    "hang",
    "crash",
    "changed",
    "oracle_fail",
)
#: The classes a finished campaign must not contain.
DEFECTS = ("other", "wrong", "hang", "crash", "unnamed")


# --- building a case -------------------------------------------------------------------------


def _choose(seeds: list[Seed], rng: random.Random, formats) -> Seed:
    by_format: dict[str, list[Seed]] = defaultdict(list)
    for s in seeds:
        if formats is None or s.format in formats:
            by_format[s.format].append(s)
    fmt = rng.choice(sorted(by_format))
    return rng.choice(by_format[fmt])


def build_case(seeds_dir, seed: int, case: int, out_dir, formats=None) -> dict:
    """Build case ``case`` of campaign ``seed`` into ``out_dir``; return its description.

    The returned dict holds ``seed_file`` (the seed's name), ``format``, ``mutator`` and
    ``path`` (what to load). The same arguments always give the same bytes.

    Examples
    --------
    >>> case = build_case(seeds_dir, 0, 17, tmp)  # doctest: +SKIP
    >>> sorted(case)  # doctest: +SKIP
    ['format', 'mutation', 'mutator', 'path', 'seed_file']
    """
    rng = random.Random(f"{seed}:{case}")
    seeds = sorted(load_seeds_cached(seeds_dir).values(), key=lambda s: s.name)
    s = _choose(seeds, rng, formats)
    out = Path(out_dir)
    shutil.copytree(Path(seeds_dir) / s.name, out, dirs_exist_ok=True)
    desc = mutate(out, s, rng)
    return {
        "seed_file": s.name,
        "format": s.format,
        "mutator": desc.split(":", 1)[0],
        "mutation": desc,
        "path": os.fspath(out / s.main),
    }


# --- reading a case ----------------------------------------------------------------------------


def _same(a: np.ndarray, b: np.ndarray) -> str | None:
    """None if ``a`` and ``b`` are the same array (dtype, shape, NaN-equal values)."""
    if a.shape != b.shape:
        return f"shape {a.shape} != {b.shape}"
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} != {b.dtype}"
    if a.dtype.names is not None or a.dtype.kind == "V":
        eq = np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
    elif a.dtype.kind in "fc":
        eq = np.array_equal(a, b, equal_nan=True)
    else:
        eq = np.array_equal(a, b)
    return None if eq else f"values differ ({int(np.sum(a != b))} of {a.size})"


def _same_affine(a, b) -> str | None:
    if a is None or b is None:
        return None if (a is None) == (b is None) else f"affine {a} vs {b}"
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return f"affine shape {a.shape} != {b.shape}"
    with np.errstate(all="ignore"):
        ok = np.allclose(a, b, rtol=1e-5, atol=1e-5, equal_nan=True)
    return None if ok else f"affine differs:\n{a}\nvs\n{b}"


def _random_slice(rng: random.Random, shape) -> tuple:
    out = []
    for n in shape:
        r = rng.random()
        if n == 0 or r < 0.3:
            out.append(slice(None))
        elif r < 0.55:
            out.append(rng.randrange(n))
        elif r < 0.85:
            a, b = sorted((rng.randrange(n + 1), rng.randrange(n + 1)))
            out.append(slice(a, b, rng.choice([1, 1, 2, 3])))
        else:
            out.append(slice(None, None, -rng.choice([1, 2])))
    return tuple(out)


def _nibabel_read(path: str):
    import nibabel as nib

    # nib.load cannot tell ECAT by its name or first bytes: its own loader then
    img = nib.ecat.load(path) if path.endswith(".v") else nib.load(path)
    data = np.asanyarray(img.dataobj)
    if data.size == 0 and data.shape != tuple(img.shape):
        # nibabel reads an image with a zero dim as shape (0,) though img.shape is, e.g.,
        # (1, 0, 256): the image's shape is the one to match
        data = data.reshape(img.shape)
    try:
        affine = img.affine
    except AttributeError:
        affine = None
    return data, affine


class _Inconsistent(Exception):
    """voxray's own read paths disagree (-> ``wrong``)."""


def _voxray_read(path: str, rng: random.Random, extra: float = 0.6):
    """Every public read path of voxray on ``path``; raise ``_Inconsistent`` on disagreement.

    ``to_dask().sum()``, ``as_closest_canonical`` and ``to_xarray`` each run with
    probability ``extra`` (the slowest steps; over a campaign each runs thousands of times).
    """
    import nibabel as nib

    import voxray as vx

    img = vx.load(path)
    img.header  # noqa: B018 - the access is the test
    shape = tuple(img.shape)
    full = np.asanyarray(img.dataobj)
    if full.shape != shape:
        raise _Inconsistent(f"dataobj shape {full.shape} != img.shape {shape}")
    try:
        affine = img.affine
    except AttributeError:  # CIFTI-2: NoAffineError is a VoxrayError and an AttributeError
        affine = None
    sl = _random_slice(rng, shape)
    part = np.asanyarray(img.dataobj[sl])
    if (why := _same(part, full[sl])) is not None:
        raise _Inconsistent(f"dataobj[{sl}] vs full read: {why}")
    if full.dtype.names is None and rng.random() < extra:
        total = img.to_dask().sum().compute(scheduler="sync")
        with np.errstate(all="ignore"):
            expected = full.sum()
        why = _same(np.asarray(total), np.asarray(expected))
        # summation order may differ for floats: close is enough there
        if why is not None and not (
            full.dtype.kind in "fc"
            and np.allclose(total, expected, rtol=1e-6, atol=1e-6, equal_nan=True)
        ):
            raise _Inconsistent(f"to_dask().sum() {total!r} != {expected!r}: {why}")
    if affine is not None and len(shape) >= 3 and rng.random() < extra:
        can = vx.as_closest_canonical(img)
        cdata = np.asanyarray(can.dataobj)
        try:
            ornt = nib.orientations.io_orientation(affine)
            expected = nib.orientations.apply_orientation(full, ornt)
        except Exception:
            expected = None
        if expected is not None and (why := _same(cdata, expected)) is not None:
            raise _Inconsistent(f"as_closest_canonical data: {why}")
    if (affine is None or len(shape) >= 3) and rng.random() < extra:
        da = img.to_xarray()  # CIFTI-2 (no affine) has its own DataArray
        values = np.asarray(da.data)
        if (why := _same(values, full)) is not None:
            raise _Inconsistent(f"to_xarray values: {why}")
    return full, affine


_SEED_CACHE: dict[str, tuple] = {}
_WORK: dict[str, Path] = {}


def _work_dir(root) -> Path:
    key = f"{root}:{os.getpid()}"
    if key not in _WORK:
        d = Path(root) / f"w{os.getpid()}"
        d.mkdir(parents=True, exist_ok=True)
        os.environ["VOXRAY_CACHE_DIR"] = os.fspath(d / "gzcache")
        _WORK[key] = d
    return _WORK[key]


def _names(seeds_dir, seed_file: str) -> set[str]:
    """The names a message may use for the case's file: the files of its seed."""
    return set(load_seeds_cached(seeds_dir)[seed_file].files)


_SEEDS: dict[str, dict[str, Seed]] = {}


def load_seeds_cached(seeds_dir) -> dict[str, Seed]:
    key = os.fspath(seeds_dir)
    if key not in _SEEDS:
        _SEEDS[key] = {s.name: s for s in load_seeds(seeds_dir)}
    return _SEEDS[key]


def _names_file(message: str, names: set[str]) -> bool:
    return any(n in message for n in names)


def _nifti_header_oracle(store: Path, seed_store: Path, out: Path):
    """What a store whose ``nifti`` header array was edited must read as: nibabel's read
    of a NIfTI file made of that header and the seed's stored (raw) level-0 values.

    None where nibabel refuses the header or the file (then voxray is ``tolerant``).
    """
    import nibabel as nib
    import zarr

    raw = (store / "nifti" / "c" / "0").read_bytes()
    try:
        little = int.from_bytes(raw[:4], "little") in (348, 540)
        size = int.from_bytes(raw[:4], "little" if little else "big")
        klass = nib.Nifti2Header if size == 540 else nib.Nifti1Header
        n = klass.template_dtype.itemsize
        hdr = klass(binaryblock=raw[:n], check=False)
        hdr["vox_offset"] = n + 4
        values = np.asarray(zarr.open_array(os.fspath(seed_store / "0"), mode="r")[...])
        values = values.transpose().astype(values.dtype.newbyteorder("<" if little else ">"))
        out.write_bytes(hdr.binaryblock + b"\0" * 4 + values.tobytes(order="F"))
        data, affine = _nibabel_read(os.fspath(out))
        return data.astype(data.dtype.newbyteorder("=")), affine  # Zarr reads native order
    except Exception:
        return None


def _undetectable(mutation: str) -> bool:
    """Damage a Zarr store cannot reveal: chunks carry no checksum, so flipped bytes that
    still decode, or two chunks of one shape swapped, are a valid store of other values."""
    return mutation.startswith(("zarr_chunk: zarr_chunk flip", "zarr_chunk: zarr_chunk swap"))


#: Address space voxray may add while it reads one case (the seeds are under 1 MB; the
#: dask threads' stacks and malloc arenas fit): more is an allocation sized by a lying
#: header, a ``MemoryError`` and so a ``crash``, even below the worker's hard limit.
READ_BUDGET = 1024**3


@contextlib.contextmanager
def _memory_budget(nbytes: int):
    """Lower the soft ``RLIMIT_AS`` to the current size + ``nbytes`` for the block."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * resource.getpagesize()
    except OSError:
        yield
        return
    limit = size + nbytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _classify(
    info: dict, path: str, names, oracle, oracle_error, rng, phase, seed_store=None
) -> dict:
    """Read ``path`` with voxray and put the case in its class (``info["cls"]``).

    ``oracle``: ``(data, affine)`` the read must equal, or None where the oracle failed
    (``oracle_error`` says how); ``names``: file names a VoxrayError message may use;
    ``seed_store``: the undamaged store of a Zarr case.
    """
    import voxray as vx

    info["oracle_error"] = oracle_error
    phase("voxray")
    try:
        with _memory_budget(READ_BUDGET):
            full, affine = _voxray_read(path, rng)
    except vx.VoxrayError as exc:
        msg = f"{type(exc).__name__}: {exc}"
        info["detail"] = msg[:500]
        if not _names_file(str(exc), names):
            info["cls"] = "unnamed"
        elif oracle is None or info["format"] == "zarr":
            info["cls"] = "voxray_error"
        else:
            info["cls"] = "refused"
        return info
    except _Inconsistent as exc:
        info.update(cls="wrong", detail=f"voxray paths disagree: {exc}"[:1500])
        return info
    except MemoryError:
        import traceback

        info.update(cls="crash", detail="MemoryError", tb=traceback.format_exc()[-3000:])
        return info
    except Exception as exc:
        import traceback

        info.update(
            cls="other",
            detail=f"{type(exc).__name__}: {str(exc)[:300]}",
            tb=traceback.format_exc()[-3000:],
        )
        return info
    phase("compare")
    if oracle is None:
        info["cls"] = "tolerant"
        info["detail"] = f"nibabel: {oracle_error}"
        return info
    if seed_store is not None and info["mutation"].startswith(
        ("zarr_nifti: zarr_nifti field", "zarr_nifti: zarr_nifti bytes")
    ):
        # An edited NIfTI header is a new header: the store must read as nibabel reads
        # that header over the seed's stored values.
        expected = _nifti_header_oracle(Path(path), seed_store, Path(path).parent / "oracle.nii")
        if expected is None:
            info.update(cls="tolerant", detail="nibabel refuses the edited nifti header")
            return info
        why = _same(full, expected[0]) or _same_affine(affine, expected[1])
    else:
        why = _same(full, oracle[0]) or _same_affine(affine, oracle[1])
    if why is None:
        info["cls"] = "equal"
    elif info["format"] == "zarr" and _undetectable(info["mutation"]):
        info.update(cls="changed", detail=f"voxray vs seed: {why}"[:500])
    else:
        info.update(cls="wrong", detail=f"voxray vs oracle: {why}"[:1500])
    return info


def run_case(seeds_dir, seed: int, case: int, formats=None, phase=lambda _: None, keep=None):
    """Build and read one case; return its classification (a dict with ``cls``).

    Runs in a fuzz worker (or in-process for ``--case``). ``keep``: a directory to
    build the case in and leave there.

    Examples
    --------
    >>> seeds = prepare_seeds(tempfile.mkdtemp())  # doctest: +SKIP
    >>> run_case(seeds, 12, 7)["cls"]  # doctest: +SKIP
    'equal'
    """
    import voxray as vx

    warnings.simplefilter("ignore")
    logging.getLogger("nibabel").setLevel(logging.CRITICAL)
    phase("setup")
    root = Path(seeds_dir).parent / "work"
    out_dir = Path(keep) if keep else _work_dir(root) / f"case{case}"
    try:
        info = build_case(seeds_dir, seed, case, out_dir, formats)
        info["case"] = case
        path = info["path"]
        names = _names(seeds_dir, info["seed_file"])
        if info["format"] == "zarr":
            phase("setup")
            if info["seed_file"] not in _SEED_CACHE:
                clean = Path(seeds_dir) / info["seed_file"] / info["seed_file"]
                img = vx.load(os.fspath(clean))
                _SEED_CACHE[info["seed_file"]] = (np.asanyarray(img.dataobj), img.affine)
            oracle, oracle_error = _SEED_CACHE[info["seed_file"]], None
        else:
            phase("nibabel")
            try:
                oracle, oracle_error = _nibabel_read(path), None
            except Exception as exc:
                oracle, oracle_error = None, f"{type(exc).__name__}: {str(exc)[:200]}"
        phase("voxray")
        rng = random.Random(f"{seed}:{case}:read")
        seed_store = None
        if info["format"] == "zarr":
            seed_store = Path(seeds_dir) / info["seed_file"] / info["seed_file"]
        return _classify(info, path, names, oracle, oracle_error, rng, phase, seed_store)
    finally:
        if not keep:
            shutil.rmtree(out_dir, ignore_errors=True)


# --- campaigns -------------------------------------------------------------------------------


def _build_seeds_child(directory) -> None:  # pragma: no cover - in a child process
    try:
        build_seeds(directory)
    except BaseException:
        import traceback

        Path(f"{directory}.error").write_text(traceback.format_exc())
        raise


def prepare_seeds(directory) -> Path:
    """Build the seeds into ``directory/seeds`` in a child process; return that path.

    The child keeps the caller free of the threads a Zarr write starts, so the fuzz
    workers fork from a single-threaded parent. An existing ``seeds.json`` is reused.

    Examples
    --------
    >>> seeds = prepare_seeds(tempfile.mkdtemp())  # doctest: +SKIP
    >>> (seeds / "seeds.json").exists()  # doctest: +SKIP
    True
    """
    seeds = Path(directory) / "seeds"
    if (seeds / "seeds.json").exists():
        return seeds
    proc = mp.get_context("fork").Process(target=_build_seeds_child, args=(os.fspath(seeds),))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        error = Path(f"{seeds}.error")
        why = error.read_text() if error.exists() else ""
        raise RuntimeError(f"building the fuzz seeds failed (exit code {proc.exitcode}):\n{why}")
    return seeds


@dataclass
class Report:
    """A finished campaign: every case's class, counts, and the non-clean cases."""

    seed: int
    cases: int
    seconds: float
    counts: Counter = field(default_factory=Counter)
    by_format: dict = field(default_factory=lambda: defaultdict(Counter))
    by_mutator: dict = field(default_factory=lambda: defaultdict(Counter))
    listed: list = field(default_factory=list)

    def add(self, r: dict) -> None:
        """Count one case; keep it in ``listed`` unless it is ``equal`` or ``voxray_error``."""
        cls = r["cls"]
        self.counts[cls] += 1
        self.by_format[r.get("format", "?")][cls] += 1
        self.by_mutator[r.get("mutator", "?")][cls] += 1
        if cls not in ("equal", "voxray_error"):
            r.pop("path", None)
            self.listed.append(r)

    def defects(self) -> list[dict]:
        """The cases in a defect class (``other``, ``wrong``, ``hang``, ``crash``, ``unnamed``)."""
        return [r for r in self.listed if r["cls"] in DEFECTS]

    def to_json(self) -> dict:
        return {
            "seed": self.seed,
            "cases": self.cases,
            "seconds": round(self.seconds, 1),
            "cases_per_second": round(self.cases / max(self.seconds, 1e-9), 1),
            "counts": dict(self.counts),
            "by_format": {k: dict(v) for k, v in sorted(self.by_format.items())},
            "by_mutator": {k: dict(v) for k, v in sorted(self.by_mutator.items())},
            "listed": self.listed,
        }

    def summary(self) -> str:
        cols = [c for c in CLASSES if self.counts.get(c)]
        lines = [
            f"{self.cases} cases (seed {self.seed}) in {self.seconds:.1f} s "
            f"({self.cases / max(self.seconds, 1e-9):.1f} cases/s)",
            "",
            f"{'format':<16}" + "".join(f"{c:>13}" for c in cols),
        ]
        for name, counter in sorted(self.by_format.items()):
            lines.append(f"{name:<16}" + "".join(f"{counter.get(c, 0):>13}" for c in cols))
        lines.append(f"{'total':<16}" + "".join(f"{self.counts.get(c, 0):>13}" for c in cols))
        lines.append("")
        lines.append(f"{'mutator':<16}" + "".join(f"{c:>13}" for c in cols))
        for name, counter in sorted(self.by_mutator.items()):
            lines.append(f"{name:<16}" + "".join(f"{counter.get(c, 0):>13}" for c in cols))
        bad = self.defects()
        if bad:
            lines += ["", f"{len(bad)} defect cases:"]
            for r in bad[:60]:
                lines.append(describe(r, self.seed))
        return "\n".join(lines)


def describe(r: dict, seed: int) -> str:
    """One listed case: class, format, mutation, detail, reproducer.

    Examples
    --------
    >>> r = {"cls": "other", "format": "mgh", "seed_file": "test.mgz", "case": 3,
    ...      "mutation": "flip: ...", "detail": "KeyError: 7"}
    >>> print(describe(r, 12).splitlines()[-1].strip())
    python -m voxray.testing.fuzz --seed 12 --case 3
    """
    return (
        f"[{r['cls']}] {r.get('format')} {r.get('seed_file')} {r.get('mutation')}\n"
        f"    {str(r.get('detail', ''))[:400]}\n"
        f"    python -m voxray.testing.fuzz --seed {seed} --case {r.get('case')}"
    )


def _describe_case(seeds_dir, seed: int, case: int, formats) -> dict:
    """Format, seed file and mutation of a case whose worker died (rebuilt in a temp dir)."""
    with tempfile.TemporaryDirectory() as d:
        info = build_case(seeds_dir, seed, case, Path(d) / "case", formats)
    info.pop("path", None)
    return info


def _run_one(item, phase, seeds_dir, seed, formats):
    return run_case(seeds_dir, seed, item, formats, phase)


def _preimport() -> None:
    """Import what every case needs once, in the parent, so forked workers start warm."""
    import importlib

    for name in ("voxray", "dask.array", "dask.local", "xarray", "zarr", "nibabel",
                 "nibabel.minc2", "nibabel.parrec", "nibabel.brikhead", "nibabel.ecat",
                 "nibabel.cifti2", "nibabel.freesurfer", "nibabel.orientations", "h5py",
                 "scipy.io"):  # fmt: skip
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def run_campaign(
    cases: int,
    seed: int = 0,
    *,
    start: int = 0,
    workers: int | None = None,
    formats=None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    directory=None,
    progress=None,
) -> Report:
    """Run cases ``start .. start+cases-1`` of campaign ``seed``; return the report.

    Parameters
    ----------
    cases, seed, start : int
        How many cases, the campaign seed, the first case number.
    workers : int, optional
        Worker processes (default ``os.cpu_count()``).
    formats : sequence of str, optional
        Only these seed formats (:data:`FORMATS`).
    time_limit, memory_limit
        Per-case seconds and per-worker ``RLIMIT_AS`` bytes (see :func:`run_pool`).
    directory : path, optional
        Where the seeds are built (and reused); default a temporary directory.
    progress : callable, optional
        ``progress(done, report)`` after every case.

    Examples
    --------
    >>> report = run_campaign(200, seed=1, workers=2)  # doctest: +SKIP
    >>> report.defects()  # doctest: +SKIP
    []
    """
    import functools

    _preimport()
    tmp = tempfile.mkdtemp(prefix="voxray-fuzz-") if directory is None else None
    root = Path(directory or tmp)
    try:
        seeds_dir = prepare_seeds(root)
        fn = functools.partial(
            _run_one, seeds_dir=os.fspath(seeds_dir), seed=seed, formats=formats
        )
        report = Report(seed, cases, 0.0)
        t0 = time.monotonic()
        for done, (item, r) in enumerate(
            run_pool(
                range(start, start + cases),
                fn,
                workers=workers,
                time_limit=time_limit,
                memory_limit=memory_limit,
            ),
            start=1,
        ):
            r.setdefault("case", item)
            if r["cls"] in ("hang", "crash") and r.get("phase") == "nibabel":
                r["cls"] = "oracle_fail"  # nibabel itself hung or killed the worker
            if "format" not in r:  # the worker died: rebuild the description (cheap)
                r.update(_describe_case(seeds_dir, seed, item, formats))
            report.add(r)
            if progress is not None:
                progress(done, report)
        report.seconds = time.monotonic() - t0
        report.counts = Counter({k: v for k, v in report.counts.items() if v})
        return report
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _malformed_case(case, phase) -> dict:
    """Build one hand-made malformed file (``voxray.testing.malformed.Case``) and classify
    it as a fuzz case: the oracle is nibabel (for a Zarr store, nibabel on the case's
    ``oracle`` NIfTI file, if it has one)."""
    warnings.simplefilter("ignore")
    logging.getLogger("nibabel").setLevel(logging.CRITICAL)
    phase("setup")
    d = Path(tempfile.mkdtemp(prefix="voxray-malformed-"))
    try:
        path = os.fspath(case.build(d))
        info = {
            "case": case.name,
            "seed_file": case.name,
            "format": case.name.split("-")[0],
            "mutator": "malformed",
            "mutation": f"malformed: {case.description}"[:300],
        }
        names = {p.name for p in d.iterdir()} | {Path(path).name}
        if case.names:
            names.add(case.names)
        oracle, oracle_error = None, "nibabel has no reader"
        source = path
        if path.rstrip("/").endswith(".zarr"):
            source = None
            if case.oracle is not None:
                (d / "_oracle").mkdir()
                source = os.fspath(case.oracle(d / "_oracle"))
        if source is not None:
            phase("nibabel")
            try:
                oracle, oracle_error = _nibabel_read(source), None
            except Exception as exc:
                oracle_error = f"{type(exc).__name__}: {str(exc)[:200]}"
        if path.rstrip("/").endswith(".zarr"):
            info["format"] = "zarr-malformed"  # the seed-oracle rules of the campaign do not apply
        return _classify(info, path, names, oracle, oracle_error, random.Random(case.name), phase)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_corpus(
    corpus: dict | None = None,
    *,
    workers: int | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> Report:
    """Run a corpus of hand-made malformed files through the fuzz workers and classes.

    ``corpus`` maps names to :class:`voxray.testing.malformed.Case` (default: its
    ``CORPUS``). Each case is read by nibabel and by every voxray read path, under the
    campaign's memory and time limits, and classified as a fuzz case; the report's
    ``seed`` is -1 and its listed cases carry the corpus name as ``case``.

    Examples
    --------
    >>> report = run_corpus(workers=2)  # doctest: +SKIP
    >>> report.defects()  # doctest: +SKIP
    []
    """
    if corpus is None:
        from .malformed import CORPUS as corpus
    _preimport()
    report = Report(-1, len(corpus), 0.0)
    t0 = time.monotonic()
    for name, r in run_pool(
        list(corpus),
        lambda name, phase: _malformed_case(corpus[name], phase),
        workers=workers,
        time_limit=time_limit,
        memory_limit=memory_limit,
    ):
        r.setdefault("case", name)
        r.setdefault("format", name.split("-")[0])
        report.add(r)
    report.seconds = time.monotonic() - t0
    return report


def run_named(
    cases: dict,
    *,
    workers: int | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
) -> dict[str, dict]:
    """Run named callables ``{name: fn}`` in the fuzz workers; return ``{name: result}``.

    Each ``fn()`` runs in a worker under the same limits as the campaign; it returns a
    dict with ``cls`` (or anything: then ``cls`` is ``"ok"``). An exception escaping it
    is ``other`` (``crash`` for ``MemoryError``), a timeout ``hang``, a dead worker
    ``crash``. For hand-made malformed files: ``fn`` loads one and classifies it.

    Examples
    --------
    >>> run_named({"ok": lambda: {"cls": "equal"}}, workers=1)["ok"]["cls"]
    'equal'
    """

    def call(name, phase):
        out = cases[name]()
        return out if isinstance(out, dict) and "cls" in out else {"cls": "ok", "value": out}

    return {
        name: r
        for name, r in run_pool(
            list(cases), call, workers=workers, time_limit=time_limit, memory_limit=memory_limit
        )
    }


# --- command line ----------------------------------------------------------------------------


def main(argv=None) -> int:
    """``python -m voxray.testing.fuzz``: run a campaign, or one case in-process."""
    p = argparse.ArgumentParser(
        prog="python -m voxray.testing.fuzz", description=__doc__.split("\n")[0]
    )
    p.add_argument("--cases", type=int, default=1000, help="number of cases (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="campaign seed (default 0)")
    p.add_argument("--start", type=int, default=0, help="first case number (default 0)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPUs)")
    p.add_argument("--formats", nargs="+", choices=FORMATS, default=None)
    p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT)
    p.add_argument(
        "--memory-limit", type=float, default=DEFAULT_MEMORY_LIMIT / 1024**3, help="GiB"
    )
    p.add_argument("--json", default=None, help="write the report here")
    p.add_argument("--case", type=int, default=None, help="run this one case in-process")
    p.add_argument("--keep", default=None, help="with --case: build the case in this directory")
    p.add_argument("--seeds", default=None, help="reuse (or build) the seeds under this directory")
    p.add_argument(
        "--malformed", action="store_true", help="run voxray.testing.malformed.CORPUS instead"
    )
    args = p.parse_args(argv)
    if args.malformed:
        report = run_corpus(workers=args.workers, time_limit=args.time_limit)
        print(report.summary())
        for r in report.listed:
            print(describe(r, -1).rsplit("\n", 1)[0])
        if args.json:
            _write_json(args.json, report)
        return 1 if report.defects() else 0
    formats = tuple(args.formats) if args.formats else None
    if args.case is not None:
        root = Path(args.seeds or tempfile.mkdtemp(prefix="voxray-fuzz-"))
        seeds_dir = prepare_seeds(root)
        keep = args.keep
        if keep:
            shutil.rmtree(keep, ignore_errors=True)
        r = run_case(seeds_dir, args.seed, args.case, formats, keep=keep)
        print(json.dumps({k: v for k, v in r.items() if k != "tb"}, indent=2, default=str))
        if r.get("tb"):
            print(r["tb"])
        if keep:
            print(f"case files kept in {keep}")
        elif not args.seeds:
            shutil.rmtree(root, ignore_errors=True)
        return 1 if r["cls"] in DEFECTS else 0

    last = [time.monotonic(), time.monotonic(), 0]  # last line, last JSON, listed seen

    def progress(done, report):
        # defects as they come, a status line every 10 s, the JSON so far every minute
        for r in report.listed[last[2] :]:
            if r["cls"] in DEFECTS:
                print(describe(r, args.seed), file=sys.stderr, flush=True)
        last[2] = len(report.listed)
        now = time.monotonic()
        if now - last[0] > 10 or done == args.cases:
            last[0] = now
            bad = sum(report.counts.get(c, 0) for c in DEFECTS)
            print(f"  {done}/{args.cases} cases, {bad} defects", file=sys.stderr, flush=True)
        if args.json and now - last[1] > 60:
            last[1] = now
            report.seconds, total = now - t0, report.cases
            report.cases = done  # the JSON so far says how many cases it holds
            _write_json(args.json, report)
            report.cases = total

    t0 = time.monotonic()

    report = run_campaign(
        args.cases,
        args.seed,
        start=args.start,
        workers=args.workers,
        formats=formats,
        time_limit=args.time_limit,
        memory_limit=int(args.memory_limit * 1024**3) if args.memory_limit else None,
        directory=args.seeds,
        progress=progress,
    )
    print(report.summary())
    if args.json:
        _write_json(args.json, report)
    return 1 if report.defects() else 0


def _write_json(path, report: Report) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(report.to_json(), indent=1, default=str))
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
