"""The malformed-file corpus (voxray.testing.malformed): each case's expectation, checked.

For every case: the expected ``VoxrayError`` subclass is raised exactly where the case
says (at ``vx.load``, or at the first read after a successful load), and its message
names the file and matches the case's pattern; a case expected to read (``expected is
None``) reads as nibabel reads it: same dtype, values and affine, with the warning the
case names. Each case is also checked for not being trivially satisfied: its undamaged
form reads as nibabel reads it, and the damage changes the files.

Cases voxray does not meet yet are kept (their expectation is the specification) and
marked ``xfail(strict=True)`` below; ``/work/notes/malformed-findings.md`` has their
reproducers.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import voxray as vx
from voxray.testing.malformed import CASES, CORPUS, Case

#: Cases voxray does not meet yet (name: what happens now), marked xfail(strict=True).
#: Empty since the lead's header validation: the seven found so far are fixed or decided.
XFAIL: dict[str, str] = {}

#: The families the issue names; each must have cases.
FAMILIES = (
    "nifti1",
    "nifti2",
    "pair",
    "analyze",
    "niigz",
    "zarr",
    "mgh",
    "mgz",
    "minc1",
    "minc2",
    "afni",
    "parrec",
    "ecat",
    "cifti",
)


def _params(cases=CASES, *, marks: bool = True):
    out = []
    for case in cases:
        mark = ()
        if marks and case.name in XFAIL:
            mark = (pytest.mark.xfail(strict=True, reason=XFAIL[case.name]),)
        out.append(pytest.param(case, id=case.name, marks=mark))
    return out


def _nib_load(path: Path):
    """nibabel's own loader for the file (``nib.load`` does not sniff ECAT ``.v``)."""
    if path.suffix == ".v":
        return nib.ecat.load(str(path))
    return nib.load(str(path))


def _read(img) -> np.ndarray:
    return np.asanyarray(img.dataobj)


def _check_message(case: Case, error: BaseException, path: Path) -> None:
    message = str(error)
    name = case.names or path.name
    assert name in message, f"{case.name}: the message does not name {name!r}: {message}"
    assert re.search(case.matches, message), (
        f"{case.name}: the message does not match {case.matches!r}: {message}"
    )


def _assert_reads_as_nibabel(path: Path, reference: Path, warning=None) -> None:
    ref = _nib_load(reference)
    expected = np.asanyarray(ref.dataobj)
    with pytest.warns(warning) if warning else warnings.catch_warnings():
        if warning is None:  # no voxray warning unless the case names one
            warnings.simplefilter("error", vx.VoxrayWarning)
        img = vx.load(path)
        got = _read(img)
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    if getattr(ref, "affine", None) is not None:
        np.testing.assert_array_equal(img.affine, ref.affine)  # NaN == NaN here
    # nibabel's EcatHeader.get_zooms is broken; a CIFTI-2 header has no zooms
    if path.suffix not in (".zarr", ".v") and hasattr(ref.header, "get_zooms"):
        np.testing.assert_array_equal(img.header.get_zooms(), ref.header.get_zooms())


def _varies(data: np.ndarray) -> bool:
    """More than one distinct value (structured RGB values too)."""
    return len(np.unique(data.reshape(-1))) > 1


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- the corpus itself ------------------------------------------------------------------


def test_the_corpus_is_large_named_and_covers_every_format():
    names = [c.name for c in CASES]
    assert len(names) >= 40
    assert len(set(names)) == len(names), "duplicate case names"
    assert list(CORPUS) == names
    for family in FAMILIES:
        assert any(n.startswith(family + "-") for n in names), family
    for case in CASES:
        assert case.description and "\n" not in case.description, case.name
        assert case.at in ("load", "read"), case.name
        if case.expected is None:
            assert case.at == "load" and case.matches == "", case.name
        else:
            assert issubclass(case.expected, vx.VoxrayError), case.name
            assert issubclass(case.expected, vx.InputError) != issubclass(
                case.expected, vx.StorageError
            ), case.name
            assert case.matches, f"{case.name}: an error case must say what its message names"
            assert case.warning is None, case.name
    assert set(XFAIL) <= set(CORPUS), set(XFAIL) - set(CORPUS)


# -- each case's expectation ------------------------------------------------------------


@pytest.mark.parametrize("case", _params())
def test_malformed_file(case: Case, tmp_path, fresh_cache):
    path = case.build(tmp_path)
    if case.expected is None:
        reference = case.oracle(_mkdir(tmp_path / "oracle")) if case.oracle else path
        _assert_reads_as_nibabel(path, reference, case.warning)
        return
    if case.at == "load":
        with pytest.raises(case.expected) as error:
            vx.load(path)
        _check_message(case, error.value, path)
        return
    img = vx.load(path)  # a read-time failure: the load itself must succeed
    for read in (_read, lambda im: im.get_fdata(), lambda im: im.to_dask().compute()):
        with pytest.raises(case.expected) as error:
            read(img)
        _check_message(case, error.value, path)


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


# -- and that it is not trivially met ---------------------------------------------------


@pytest.mark.parametrize("case", _params([c for c in CASES if c.intact], marks=False))
def test_the_damage_is_what_the_expectation_is_about(case: Case, tmp_path, fresh_cache):
    """The undamaged file reads as nibabel reads it, and the damage changes the files;
    a case that reads must compare real data (not an empty or constant array)."""
    damaged, intact = _mkdir(tmp_path / "damaged"), _mkdir(tmp_path / "intact")
    case.build(damaged)
    intact_path = case.intact(intact)
    assert _snapshot(damaged) != _snapshot(intact)
    if intact_path.suffix == ".zarr":
        with warnings.catch_warnings():
            warnings.simplefilter("error", vx.VoxrayWarning)
            assert _varies(_read(vx.load(intact_path)))
    else:
        _assert_reads_as_nibabel(intact_path, intact_path)
        assert _varies(np.asanyarray(_nib_load(intact_path).dataobj))


@pytest.mark.parametrize(
    "case", _params([c for c in CASES if c.expected is not None and c.at == "read"], marks=False)
)
def test_a_read_time_case_loads_first(case: Case, tmp_path, fresh_cache):
    """``at="read"`` is not a load failure in disguise: the load succeeds and the header
    part of the image (shape, affine) is usable before the read fails."""
    img = vx.load(case.build(tmp_path))
    assert len(img.shape) >= 3 and np.all(np.isfinite(img.affine))


@pytest.mark.parametrize(
    "case", _params([c for c in CASES if c.expected is None and c.oracle is None], marks=False)
)
def test_a_tolerated_case_is_one_nibabel_reads(case: Case, tmp_path):
    """Where voxray must read as nibabel, nibabel does read the file (and real data)."""
    data = np.asanyarray(_nib_load(case.build(tmp_path)).dataobj)
    assert data.size == 0 or _varies(data)


def test_lying_dimensions_allocate_nothing(tmp_path):
    """Under a 2 GiB address-space limit, every case whose header claims a giant array
    (up to 2 EB and past int64) fails with its VoxrayError: nothing is sized by it."""
    lying = [
        c for c in CASES if "dims" in c.name and c.expected is not None and c.name not in XFAIL
    ]
    assert len(lying) >= 5
    paths = []
    for case in lying:
        directory = _mkdir(tmp_path / case.name)
        paths.append((case.name, str(case.build(directory)), case.expected.__name__))
    code = (
        "import resource, sys, numpy as np, voxray as vx\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        f"for name, path, error in {paths!r}:\n"
        "    try:\n"
        "        np.asanyarray(vx.load(path).dataobj)\n"
        "    except getattr(vx, error):\n"
        "        print('ok', name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [w for name, _, _ in paths for w in ("ok", name)], out.stdout
