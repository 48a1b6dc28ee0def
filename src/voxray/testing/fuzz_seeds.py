"""Seed files for the fuzz campaign: small valid images of every format voxray reads.

Each seed lives in its own directory (``<seeds>/<name>/``) holding the file voxray is
asked to load and its partners (``.img`` of a ``.hdr``, ``.BRIK`` of a ``.HEAD``,
``.REC`` of a ``.PAR``, ``.mat`` of an SPM pair), so a case copies one directory and
damages one file in it. Seeds come from :func:`voxray.testing.build_corpus` (NIfTI-1/2
single files and pairs, Analyze/SPM, byte orders, datatypes, scaling, ``.nii.gz``,
extensions, multi-member gzip), from the files of the nibabel wheel for the other
formats (MGH/MGZ, MINC1, MINC2, ECAT, AFNI, PAR/REC, CIFTI-2), and from ``.nii.zarr``
stores written by :func:`voxray.to_zarr` (several levels and chunks, blosc, raw and
sharded).

Building is deterministic (gzip members carry ``mtime=0``; Zarr metadata holds no
time stamps), so a case rebuilt from the same seed directory has the same bytes.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FORMATS", "Seed", "build_seeds", "load_seeds"]

#: Every format name a seed can carry (the ``--formats`` choices).
FORMATS = (
    "nifti1",
    "nifti2",
    "pair",
    "analyze",
    "zarr",
    "mgh",
    "minc1",
    "minc2",
    "parrec",
    "afni",
    "ecat",
    "cifti",
)


@dataclass(frozen=True)
class Seed:
    """One valid image: its directory name, format, main file and partner files.

    ``files`` are names inside the seed directory (the main file first); ``oracle``
    is ``"nibabel"`` where nibabel reads the format, else ``"seed"`` (the undamaged
    seed's own data, read by voxray, is the expected result).
    """

    name: str
    format: str
    main: str
    files: tuple[str, ...]
    oracle: str = "nibabel"


# Corpus entries used as seeds (small ones; a case must take milliseconds).
_CORPUS_SEEDS = {
    "le-int16-4d.nii": "nifti1",
    "be-int16-4d.nii.gz": "nifti1",
    "scaled-int16.nii.gz": "nifti1",
    "scaled-uint8.nii": "nifti1",
    "scaled-float32.nii": "nifti1",
    "scaled-be-int32.nii": "nifti1",
    "nifti2.nii": "nifti2",
    "nifti2.nii.gz": "nifti2",
    "nifti2-pair.hdr": "pair",
    "pair.hdr": "pair",
    "pair-gz.hdr.gz": "pair",
    "analyze.hdr": "analyze",
    "spm99.hdr": "analyze",
    "spm2-be.hdr": "analyze",
    "spm99-mat.hdr": "analyze",
    "qform-only.nii": "nifti1",
    "sform-only.nii": "nifti1",
    "no-xform.nii": "nifti1",
    "oblique.nii": "nifti1",
    "oblique.nii.gz": "nifti1",
    "2d.nii": "nifti1",
    "5d.nii": "nifti1",
    "5d.nii.gz": "nifti1",
    "one-voxel.nii": "nifti1",
    "one-voxel.nii.gz": "nifti1",
    "dtype-int8.nii": "nifti1",
    "dtype-uint16.nii": "nifti1",
    "dtype-int64.nii": "nifti1",
    "dtype-float64.nii": "nifti1",
    "dtype-complex64.nii": "nifti1",
    "dtype-be-float32.nii.gz": "nifti1",
    "dtype-be-uint32.nii.gz": "nifti1",
    "dtype-be-complex128.nii.gz": "nifti1",
    "dtype-rgb24.nii": "nifti1",
    "dtype-rgba32.nii": "nifti1",
    "extensions.nii": "nifti1",
    "extensions.nii.gz": "nifti1",
    "multimember.nii.gz": "nifti1",
}

# Files of the nibabel wheel: main file -> (format, partners).
_NIBABEL_SEEDS = {
    "test.mgz": ("mgh", ()),
    "minc1_4d.mnc": ("minc1", ()),
    "minc1_1_scale.mnc": ("minc1", ()),
    "minc2_4d.mnc": ("minc2", ()),
    "minc2_1_scale.mnc": ("minc2", ()),
    "tinypet.v": ("ecat", ()),
    "example4d+orig.HEAD": ("afni", ("example4d+orig.BRIK.gz",)),
    "scaled+tlrc.HEAD": ("afni", ("scaled+tlrc.BRIK",)),
    "phantom_EPI_asc_CLEAR_2_1.PAR": ("parrec", ("phantom_EPI_asc_CLEAR_2_1.REC",)),
    "row_major.dconn.nii": ("cifti", ()),
    "example_nifti2.nii.gz": ("nifti2", ()),
    "functional.nii": ("nifti1", ()),
}

# Zarr stores: (store name, corpus source, to_zarr keyword arguments).
_ZARR_SEEDS = (
    ("anat.nii.zarr", "le-int16-4d.nii", {"chunks": (16, 16, 16, 3), "levels": 2}),
    ("scaled.nii.zarr", "scaled-float32.nii", {"chunks": (16, 16, 8), "levels": 1}),
    ("oblique.nii.zarr", "oblique.nii.gz", {"chunks": (32, 32, 32), "levels": 2}),
    ("raw.nii.zarr", "dtype-be-uint32.nii.gz", {"chunks": (9, 8, 4, 3), "compressor": None}),
    # sharded: chunk files are shards with a crc32c-checked index at their end
    (
        "sharded.nii.zarr",
        "le-int16-4d.nii",
        {"chunks": (3, 8, 16, 16), "shards": (6, 16, 32, 32), "levels": 2},
    ),
)


def _partners(corpus: Path, main: str) -> list[str]:
    """The files a corpus entry is read with (a pair's other half, an SPM ``.mat``)."""
    for hdr in (".hdr.gz", ".hdr"):
        if main.endswith(hdr):
            stem = main[: -len(hdr)]
            gz = ".gz" if hdr.endswith(".gz") else ""
            names = [f"{stem}.img{gz}", f"{stem}.mat"]
            return [n for n in names if (corpus / n).exists()]
    return []


def build_seeds(directory) -> list[Seed]:
    """Write every seed into ``directory`` (one sub-directory each); return them.

    Takes a few seconds (the corpus, then the Zarr stores). A ``seeds.json`` index is
    written beside them so :func:`load_seeds` can list them without rebuilding.

    Examples
    --------
    >>> import tempfile
    >>> seeds = build_seeds(tempfile.mkdtemp())  # doctest: +SKIP
    >>> sorted({s.format for s in seeds}) == sorted(FORMATS)  # doctest: +SKIP
    True
    """
    from .corpus import NIBABEL_DATA, build_corpus

    root = Path(directory)
    corpus = root / "_corpus"
    build_corpus(corpus)
    seeds: list[Seed] = []

    def add(name, fmt, src_dir, files, oracle="nibabel"):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for f in files:
            src = Path(src_dir) / f
            if src.is_dir():
                shutil.copytree(src, d / f)
            else:
                shutil.copyfile(src, d / f)
        seeds.append(Seed(name, fmt, files[0], tuple(files), oracle))

    for main, fmt in _CORPUS_SEEDS.items():
        if (corpus / main).exists():
            add(main, fmt, corpus, [main, *_partners(corpus, main)])
    for main, (fmt, partners) in _NIBABEL_SEEDS.items():
        if (Path(NIBABEL_DATA) / main).exists():
            add(main, fmt, NIBABEL_DATA, [main, *partners])
    # An uncompressed MGH beside the MGZ.
    mgh = root / "test.mgh"
    mgh.mkdir(exist_ok=True)
    (mgh / "test.mgh").write_bytes(gzip.decompress((Path(NIBABEL_DATA) / "test.mgz").read_bytes()))
    seeds.append(Seed("test.mgh", "mgh", "test.mgh", ("test.mgh",)))

    from ..open import to_zarr

    for store, src, kwargs in _ZARR_SEEDS:
        d = root / store
        d.mkdir(exist_ok=True)
        to_zarr(os.fspath(corpus / src), os.fspath(d / store), progress=False, **kwargs)
        seeds.append(Seed(store, "zarr", store, (store,), oracle="seed"))
    shutil.rmtree(corpus)
    (root / "seeds.json").write_text(json.dumps([s.__dict__ for s in seeds]))
    return seeds


def load_seeds(directory) -> list[Seed]:
    """The seeds :func:`build_seeds` wrote into ``directory`` (from its ``seeds.json``).

    Examples
    --------
    >>> [s.name for s in load_seeds(directory) if s.format == "afni"]  # doctest: +SKIP
    ['example4d+orig.HEAD', 'scaled+tlrc.HEAD']
    """
    rows = json.loads((Path(directory) / "seeds.json").read_text())
    return [Seed(**{**r, "files": tuple(r["files"])}) for r in rows]
