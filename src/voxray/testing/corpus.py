"""A conformance corpus of real and edge-case images, built at test time.

Real images come from the nibabel wheel (``nibabel/tests/data``) and, when
installed, the nilearn wheel (MNI templates). Edge cases are written byte for
byte from nibabel header objects (so scaling, both transforms, extensions and
byte order are exactly as stated, not as a writer chooses): big-endian,
scaled, NIfTI-2, pairs (plain and gzipped), Analyze and SPM Analyze, qform-only,
sform-only, oblique, 2-D, 5-D, every datatype, extensions, a single voxel,
multi-member gzip.

Nothing here is committed as data: :func:`build_corpus` writes it into a
directory in about a second.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

#: The images the nibabel wheel ships (``nibabel.testing.data_path`` without importing
#: ``nibabel.testing``, which needs pytest).
NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"

__all__ = [
    "NIBABEL_DATA",
    "CorpusEntry",
    "build_corpus",
    "nilearn_data_dir",
    "write_analyze",
    "write_nifti",
]

#: Images from the nibabel wheel that nibabel itself can read completely.
NIBABEL_IMAGES = (
    "example4d.nii.gz",
    "anatomical.nii",
    "functional.nii",
    "example_nifti2.nii.gz",
    "standard.nii.gz",
    "reoriented_anat_moved.nii",
    "resampled_anat_moved.nii",
)
NILEARN_IMAGES = (
    "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "image_10426.nii.gz",
)


@dataclass(frozen=True)
class CorpusEntry:
    name: str
    path: str
    tags: frozenset[str] = frozenset()


def nilearn_data_dir() -> Path | None:
    """nilearn's shipped data folder, found without importing nilearn (slow)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return d if d.is_dir() else None


def _data_bytes(header, arr: np.ndarray) -> bytes:
    dtype = header.get_data_dtype()
    return np.asarray(arr).astype(dtype, copy=False).tobytes(order="F")


def _maybe_gzip(path: Path, data: bytes) -> None:
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data, compresslevel=6, mtime=0))
    else:
        path.write_bytes(data)


def write_nifti(path, arr, header) -> Path:
    """Write ``arr`` with ``header`` exactly (single file, or pair for .hdr/.img names)."""
    path = Path(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    header = header.copy()
    header.set_data_shape(arr.shape)
    if name.endswith((".hdr", ".img")):
        pair_class = (
            nib.nifti2.Nifti2PairHeader
            if isinstance(header, nib.Nifti2Header)
            else (nib.nifti1.Nifti1PairHeader)
        )
        header = pair_class.from_header(header)
        header["magic"] = header.pair_magic
        header.set_data_offset(0)
        stem = path.parent / name[:-4]
        gz = ".gz" if path.name.endswith(".gz") else ""
        import io

        hio = io.BytesIO()
        header.write_to(hio)
        _maybe_gzip(Path(f"{stem}.hdr{gz}"), hio.getvalue())
        _maybe_gzip(Path(f"{stem}.img{gz}"), _data_bytes(header, arr))
        return Path(f"{stem}.hdr{gz}")
    import io

    header["magic"] = header.single_magic
    hio = io.BytesIO()
    header.write_to(hio)
    head = hio.getvalue()
    offset = max(header.get_data_offset(), len(head))
    offset += (-offset) % 16
    header.set_data_offset(offset)
    hio = io.BytesIO()
    header.write_to(hio)
    head = hio.getvalue()
    _maybe_gzip(path, head + b"\x00" * (offset - len(head)) + _data_bytes(header, arr))
    return path


def write_analyze(path, arr, header) -> Path:
    """Write an Analyze-family pair (header class decides: Analyze, SPM99, SPM2)."""
    import io

    path = Path(path)
    stem = path.parent / path.name.rsplit(".", 1)[0]
    header = header.copy()
    header.set_data_shape(arr.shape)
    hio = io.BytesIO()
    header.write_to(hio)
    Path(f"{stem}.hdr").write_bytes(hio.getvalue())
    Path(f"{stem}.img").write_bytes(
        b"\x00" * int(header.get_data_offset()) + _data_bytes(header, arr)
    )
    return Path(f"{stem}.hdr")


def _oblique(zooms=(2.0, 2.5, 3.0), angle=0.3) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s, 0], [s * 0.8, c * 0.9, 0.3], [0.1, -0.2, 1.0]])
    aff = np.eye(4)
    aff[:3, :3] = rot * np.asarray(zooms)
    aff[:3, 3] = [-40.0, 55.5, -12.25]
    return aff


def build_corpus(directory) -> list[CorpusEntry]:
    """Write the corpus into ``directory``; return its entries (real files copied in)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out: list[CorpusEntry] = []

    def add(name, path, *tags):
        out.append(CorpusEntry(name, os.fspath(path), frozenset(tags)))

    for fname in NIBABEL_IMAGES:
        src = Path(NIBABEL_DATA) / fname
        shutil.copy(src, d / fname)
        add(f"nibabel:{fname}", d / fname, "real", *(("gzip",) if fname.endswith(".gz") else ()))
    nl = nilearn_data_dir()
    if nl is not None:
        for fname in NILEARN_IMAGES:
            if (nl / fname).exists():
                shutil.copy(nl / fname, d / fname)
                add(f"nilearn:{fname}", d / fname, "real", "gzip")

    rng = np.random.default_rng(42)
    anat = np.asanyarray(
        nib.load(Path(NIBABEL_DATA) / "anatomical.nii").dataobj
    )  # >i2, (33, 41, 25)
    anat = np.asarray(anat, dtype=np.int16)
    base_aff = np.array([[-2.0, 0, 0, 32], [0, 2.0, 0, -40], [0, 0, 2.2, -20], [0, 0, 0, 1]])
    H1, H2 = nib.Nifti1Header, nib.Nifti2Header

    def hdr(cls=H1, dtype=np.int16, affine=base_aff, qcode=1, scode=2, endian="<"):
        h = cls(endianness=endian)
        h.set_data_dtype(dtype)
        if qcode is not None:
            h.set_qform(affine, code=qcode)
        if scode is not None:
            h.set_sform(affine, code=scode)
        h.set_xyzt_units("mm", "sec")
        return h

    vol4d = np.stack([anat + 7 * t for t in range(6)], axis=-1)  # (33, 41, 25, 6)

    add("le-int16-4d.nii", write_nifti(d / "le-int16-4d.nii", vol4d, hdr()), "4d")
    add(
        "be-int16-4d.nii",
        write_nifti(d / "be-int16-4d.nii", vol4d, hdr(endian=">")),
        "big-endian",
        "4d",
    )
    add(
        "be-int16-4d.nii.gz",
        write_nifti(d / "be-int16-4d.nii.gz", vol4d, hdr(endian=">")),
        "big-endian",
        "gzip",
        "4d",
    )
    h = hdr()
    h.set_slope_inter(2.5, -10.0)
    add("scaled-int16.nii", write_nifti(d / "scaled-int16.nii", vol4d, h), "scaled", "4d")
    add(
        "scaled-int16.nii.gz",
        write_nifti(d / "scaled-int16.nii.gz", vol4d, h),
        "scaled",
        "gzip",
        "4d",
    )
    h = hdr(dtype=np.uint8)
    h.set_slope_inter(float(np.float32(0.0123)), 0.0)
    add(
        "scaled-uint8.nii",
        write_nifti(d / "scaled-uint8.nii", (anat % 256).astype(np.uint8), h),
        "scaled",
    )
    h = hdr(dtype=np.float32)
    h.set_slope_inter(2.0, 1.0)
    add(
        "scaled-float32.nii",
        write_nifti(d / "scaled-float32.nii", anat.astype(np.float32) / 3, h),
        "scaled",
    )
    h = hdr(dtype=np.int32, endian=">")
    h.set_slope_inter(1e-3, 5.0)
    add(
        "scaled-be-int32.nii",
        write_nifti(d / "scaled-be-int32.nii", anat.astype(np.int32) * 1000, h),
        "scaled",
        "big-endian",
    )

    add("nifti2.nii", write_nifti(d / "nifti2.nii", vol4d, hdr(H2)), "nifti2", "4d")
    add("nifti2.nii.gz", write_nifti(d / "nifti2.nii.gz", vol4d, hdr(H2)), "nifti2", "gzip", "4d")
    add("nifti2-pair.hdr", write_nifti(d / "nifti2-pair.hdr", anat, hdr(H2)), "nifti2", "pair")
    add("pair.img", write_nifti(d / "pair.img", vol4d, hdr()).with_suffix(".img"), "pair", "4d")
    add("pair-gz.hdr.gz", write_nifti(d / "pair-gz.hdr.gz", anat, hdr()), "pair", "gzip")

    add("analyze.hdr", write_analyze(d / "analyze.hdr", anat, nib.AnalyzeHeader()), "analyze")
    h = nib.Spm99AnalyzeHeader()
    h.set_data_dtype(np.int16)
    h.set_slope_inter(0.5)
    add("spm99.hdr", write_analyze(d / "spm99.hdr", anat, h), "analyze", "scaled")
    h = nib.Spm2AnalyzeHeader(endianness=">")
    h.set_data_dtype(np.int16)
    h.set_slope_inter(2.0)
    add(
        "spm2-be.img",
        write_analyze(d / "spm2-be.hdr", anat, h).with_suffix(".img"),
        "analyze",
        "scaled",
        "big-endian",
    )
    # SPM .mat files: their affine wins over the header's (nibabel reads them with scipy).
    if importlib.util.find_spec("scipy") is not None:
        import scipy.io

        img = nib.Spm99AnalyzeImage(anat, _oblique())
        img.to_filename(d / "spm99-mat.img")  # writes .hdr, .img and .mat ("mat" and "M")
        add("spm99-mat.img", d / "spm99-mat.img", "analyze", "mat", "oblique")
        h = nib.Spm2AnalyzeHeader()
        h.set_data_dtype(np.int16)
        path = write_analyze(d / "spm2-flipM.hdr", anat, h)
        # Only "M" (no flip): nibabel applies the default x flip itself.
        scipy.io.savemat(d / "spm2-flipM.mat", {"M": _oblique(angle=-0.2)}, format="4")
        add("spm2-flipM.hdr", path, "analyze", "mat", "oblique")

    add("qform-only.nii", write_nifti(d / "qform-only.nii", anat, hdr(qcode=1, scode=0)), "xform")
    add("sform-only.nii", write_nifti(d / "sform-only.nii", anat, hdr(qcode=0, scode=4)), "xform")
    add("no-xform.nii", write_nifti(d / "no-xform.nii", anat, hdr(qcode=0, scode=0)), "xform")
    h = hdr(affine=_oblique())
    h.set_qform(base_aff, code=1)  # both set and different: sform (code 2) wins
    add("oblique.nii", write_nifti(d / "oblique.nii", vol4d, h), "oblique", "4d")
    add(
        "oblique.nii.gz",
        write_nifti(d / "oblique.nii.gz", anat, hdr(affine=_oblique(angle=-1.1))),
        "oblique",
        "gzip",
    )

    add("2d.nii", write_nifti(d / "2d.nii", anat[:, :, 12], hdr()), "2d")
    five = rng.integers(-500, 500, (7, 6, 5, 4, 3), dtype=np.int16)
    add("5d.nii", write_nifti(d / "5d.nii", five, hdr()), "5d")
    add("5d.nii.gz", write_nifti(d / "5d.nii.gz", five, hdr()), "5d", "gzip")
    add(
        "one-voxel.nii",
        write_nifti(d / "one-voxel.nii", np.array([[[7]]], np.int16), hdr()),
        "tiny",
    )
    add(
        "one-voxel.nii.gz",
        write_nifti(d / "one-voxel.nii.gz", np.array([[[7]]], np.int16), hdr()),
        "tiny",
        "gzip",
    )

    shape = (9, 8, 7, 3)
    for dt in ("i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f4", "f8", "c8", "c16"):
        dtype = np.dtype(dt)
        if dtype.kind == "c":
            arr = rng.normal(size=shape) + 1j * rng.normal(size=shape)
        elif dtype.kind == "f":
            arr = rng.normal(scale=100, size=shape)
            arr.flat[::17] = np.nan
        else:
            info = np.iinfo(dtype)
            arr = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
        arr = arr.astype(dtype)
        add(
            f"dtype-{dtype.name}.nii",
            write_nifti(d / f"dtype-{dtype.name}.nii", arr, hdr(dtype=dtype)),
            "dtype",
        )
        add(
            f"dtype-be-{dtype.name}.nii.gz",
            write_nifti(d / f"dtype-be-{dtype.name}.nii.gz", arr, hdr(dtype=dtype, endian=">")),
            "dtype",
            "big-endian",
            "gzip",
        )
    for name, fields in (("rgb24", "RGB"), ("rgba32", "RGBA")):
        dtype = np.dtype([(c, "u1") for c in fields])
        arr = np.zeros(shape[:3], dtype)
        for c in fields:
            arr[c] = rng.integers(0, 256, shape[:3])
        add(
            f"dtype-{name}.nii",
            write_nifti(d / f"dtype-{name}.nii", arr, hdr(dtype=dtype)),
            "dtype",
            "rgb",
        )

    h = hdr()
    h.extensions.append(nib.nifti1.Nifti1Extension("comment", b"voxray corpus: a comment"))
    h.extensions.append(nib.nifti1.Nifti1Extension(4, b"<?xml version='1.0'?><AFNI_attributes/>"))
    add("extensions.nii", write_nifti(d / "extensions.nii", vol4d, h), "extensions", "4d")
    add("extensions.nii.gz", write_nifti(d / "extensions.nii.gz", vol4d, h), "extensions", "gzip")

    # Multi-member gzip: the same stream cut in three members (as pigz -i or bgzip write).
    raw = (d / "le-int16-4d.nii").read_bytes()
    cuts = [0, 50_000, 120_001, len(raw)]
    (d / "multimember.nii.gz").write_bytes(
        b"".join(gzip.compress(raw[a:b], compresslevel=6, mtime=0) for a, b in zip(cuts, cuts[1:]))
    )
    add("multimember.nii.gz", d / "multimember.nii.gz", "gzip", "multimember", "4d")
    return out
