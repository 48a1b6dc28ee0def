"""From a file name and its first bytes to a header and an :class:`ArrayLayout`.

nibabel does the parsing: its image classes decide what a file is
(``path_maybe_image`` on the suffix and the sniffed header bytes, in nibabel's
own order), its header classes parse the bytes (extensions included), choose
the affine (sform or qform by code) and give the data offset and scaling. This
module only feeds them bytes read through voxray's sources, so the same code
serves local files, gzip streams and (later) objects in a bucket, and checks
every size a header claims against the file before anything is allocated.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
from nibabel import imageclasses
from nibabel.filename_parser import splitext_addext, types_filenames
from nibabel.spatialimages import HeaderDataError, HeaderTypeError

from ...errors import (
    ImageNotFoundError,
    InvalidHeaderError,
    NotAnImageError,
    TruncatedFileError,
    VoxrayError,
)
from ...reader import ArrayLayout
from ...sources import is_url, local_spec, open_source
from .validate import check_dtype, check_extensions, check_parsed, check_raw

__all__ = [
    "SUPPORTED_CLASSES",
    "HeaderInfo",
    "file_map",
    "file_names",
    "read_header",
    "split_url",
]

#: nibabel image classes voxray reads, by name (nibabel's order decides ties).
SUPPORTED_CLASSES = (
    "Nifti1Pair",
    "Nifti1Image",
    "Nifti2Pair",
    "Nifti2Image",
    "Spm2AnalyzeImage",
    "Spm99AnalyzeImage",
    "AnalyzeImage",
)
_COMPRESSED = (".gz", ".bz2", ".zst")
#: Bytes read up front to sniff the header (nibabel sniffs 1024).
SNIFF = 1024
#: Largest header (with extensions) or detached .hdr file voxray will read.
MAX_HEADER = 256 * 2**20
#: deflate cannot expand data more than ~1032:1; a header claiming more is lying.
MAX_DEFLATE_RATIO = 1032


@dataclass
class HeaderInfo:
    """What reading a header found: the nibabel class, its header, and where the data is."""

    image_class: type
    header: object
    filename: str
    header_spec: object
    data_spec: object
    layout: ArrayLayout
    #: SPM99/SPM2 Analyze: the affine of a ``.mat`` file next to the image (it wins).
    mat_affine: np.ndarray | None = None
    #: A single file recognised by its first bytes, whatever its suffix.
    single: bool = False

    @property
    def affine(self) -> np.ndarray:
        return self.header.get_best_affine()


def split_url(filename: str) -> tuple[str, str, str]:
    """``(scheme://, path, ?query)`` of a URL (``("", path, "")`` for a local path).

    nibabel's file-name helpers normalise paths (``s3://b/k`` would become
    ``s3:/b/k``) and know nothing of queries: they see only the path part.
    """
    if not is_url(filename):
        return "", filename, ""
    scheme, rest = filename.split("://", 1)
    rest, sep, query = rest.partition("?")
    return scheme + "://", rest, sep + query


def file_names(klass: type, filename: str) -> dict[str, str]:
    """nibabel's file names of ``klass`` for ``filename`` (URLs keep their scheme)."""
    prefix, path, _ = split_url(filename)
    names = types_filenames(path, klass.files_types, trailing_suffixes=klass._compressed_suffixes)
    # The name as given keeps its query (a signed URL); a derived one cannot have it.
    return {k: filename if v == path else prefix + v for k, v in names.items()}


def file_map(info: HeaderInfo) -> dict:
    """nibabel's ``file_map`` of the image; URLs keep their scheme (and query)."""
    klass, filename = info.image_class, info.filename
    prefix, path, _ = split_url(filename)
    if info.single:
        return klass.make_file_map({"image": filename})
    if not prefix:
        return klass.filespec_to_file_map(filename)
    fm = klass.filespec_to_file_map(path)
    for kind, name in file_names(klass, filename).items():
        fm[kind].filename = name
    return fm


def _candidates(filename: str) -> list[type]:
    _, ext, _ = splitext_addext(split_url(filename)[1], _COMPRESSED)
    out = [
        k
        for k in imageclasses.all_image_classes
        if k.__name__ in SUPPORTED_CLASSES and ext.lower() in k.valid_exts
    ]
    if not out:
        raise NotAnImageError(
            f"{filename!r}: cannot work out the file type from the suffix {ext!r}; voxray reads "
            f"NIfTI-1/2 (.nii, .nii.gz), NIfTI pairs and Analyze (.hdr/.img)"
        )
    return out


def read_header(
    filename: str, locate=local_spec, candidates=None, *, single: bool = False
) -> HeaderInfo:
    """Find the image type of ``filename`` and parse its header with nibabel.

    ``locate(name)`` returns the source spec of a file name (local by default);
    ``candidates`` are the nibabel classes to try (default: those of the suffix).
    ``single`` reads ``filename`` as a single-file image of ``candidates[0]`` whatever
    its suffix (a file recognised by its first bytes).
    """
    filename = os.fspath(filename)
    if candidates is None:
        candidates = _candidates(filename)

    def names_of(k: type) -> dict[str, str]:
        return {"image": filename} if single else file_names(k, filename)

    header_name = names_of(candidates[0]).get("header", filename)
    try:
        hspec = locate(header_name)
    except ImageNotFoundError:
        if header_name != filename:
            raise ImageNotFoundError(
                f"{filename!r} is one file of a pair, but its header {header_name!r} is missing"
            ) from None
        raise
    src = open_source(hspec)
    known = src.size
    sniff = src.read_prefix(SNIFF)
    if len(sniff) < 348:
        raise NotAnImageError(
            f"{header_name!r} has {len(sniff)} bytes: too short for a NIfTI or Analyze header "
            f"(348 bytes at least)"
        )

    klass = candidates[0] if single else None
    for k in [] if single else candidates:
        try:
            # nibabel sees the local-looking path part; the sniff stands for the file.
            path = split_url(filename)[1]
            hname = file_names(k, path).get("header", path)
            valid, _ = k.path_maybe_image(path, (sniff, split_url(hname)[1]))
        except (HeaderDataError, HeaderTypeError, ValueError):
            valid = False
        if valid:
            klass = k
            break
    if klass is None:
        sizeof_hdr = int.from_bytes(sniff[:4], "little")
        if split_url(header_name)[1].lower().endswith(".gz") and (
            getattr(hspec, "compression", None) != "gzip"
        ):
            raise NotAnImageError(
                f"{header_name!r} is named .gz, but it is not gzip data (it does not start "
                f"with the gzip magic 1f 8b), nor a NIfTI or Analyze header"
            )
        raise NotAnImageError(
            f"{header_name!r} is not a NIfTI-1, NIfTI-2 or Analyze header: sizeof_hdr is "
            f"{sizeof_hdr!r} (or {int.from_bytes(sniff[:4], 'big')!r} big-endian) and magic is "
            f"{bytes(sniff[344:348])!r}; expected 348 or 540 and b'n+1\\x00', b'ni1\\x00', ..."
        )

    hclass = klass.header_class
    hsize = hclass.template_dtype.itemsize
    try:
        first = hclass(sniff[:hsize], check=False)
    except (HeaderDataError, HeaderTypeError, ValueError) as e:
        raise InvalidHeaderError(f"{header_name!r}: cannot parse the header: {e}") from None
    single_file = len(klass.files_types) == 1
    check_raw(first, sniff, header_name, single_file=single_file)
    check_dtype(first, header_name)

    # How many header bytes nibabel will want: extensions run up to vox_offset
    # (single file) or to the end of the detached header.
    if single_file:
        has_ext = len(sniff) >= hsize + 4 and sniff[hsize : hsize + 1] != b"\x00"
        want = int(first["vox_offset"]) if has_ext and "vox_offset" in first else hsize + 4
    else:
        want = known if known is not None else MAX_HEADER
    if want > MAX_HEADER:
        raise InvalidHeaderError(
            f"{header_name!r}: the header claims {want} bytes of header and extensions; "
            f"voxray reads at most {MAX_HEADER}"
        )
    if known is not None and want > known and len(klass.files_types) == 1:
        raise TruncatedFileError(
            f"{header_name!r} has {known} bytes, but its vox_offset is {want}"
        )
    hbytes = sniff
    if want > len(sniff):
        hbytes = src.read_prefix(want)
        if len(hbytes) < want and len(klass.files_types) == 1:
            raise TruncatedFileError(
                f"{header_name!r} ends after {len(hbytes)} bytes, before its vox_offset {want}"
            )

    if hasattr(hclass, "exts_klass"):
        check_extensions(first, hbytes, header_name, single_file=single_file)
    try:
        header = hclass.from_fileobj(io.BytesIO(hbytes), check=True)
    except VoxrayError:
        raise
    except Exception as e:  # nibabel on bytes: its own errors, numpy's, an extension's parser
        raise InvalidHeaderError(
            f"{header_name!r}: invalid header: {type(e).__name__}: {e}"
        ) from None
    check_dtype(header, header_name)
    check_parsed(header, header_name)
    try:
        shape = header.get_data_shape()
    except (HeaderDataError, ValueError) as e:
        raise InvalidHeaderError(f"{header_name!r}: invalid dimensions: {e}") from None
    if any(n < 0 for n in shape):
        raise InvalidHeaderError(
            f"{header_name!r}: negative dimension in shape {tuple(shape)!r} (dim = "
            f"{header['dim'].tolist()!r})"
        )
    try:
        layout = ArrayLayout.from_header(header)
    except (HeaderDataError, ValueError, OverflowError) as e:  # NaN or infinite vox_offset
        raise InvalidHeaderError(f"{header_name!r}: invalid scaling or offset: {e}") from None

    image_name = names_of(klass)["image"]
    if image_name == header_name:
        dspec = hspec
    else:
        try:
            dspec = locate(image_name)
        except ImageNotFoundError:
            raise ImageNotFoundError(
                f"{filename!r} is one file of a pair, but its image file {image_name!r} is missing"
            ) from None
    check_data_size(dspec, layout, image_name)
    mat = None if single else _mat_affine(klass, filename, hbytes, locate)
    return HeaderInfo(klass, header, filename, hspec, dspec, layout, mat, single)


def _mat_affine(klass: type, filename: str, hbytes: bytes, locate) -> np.ndarray | None:
    """The affine of an SPM ``.mat`` file beside an SPM Analyze image, as nibabel reads it.

    nibabel does the reading (``from_file_map`` over in-memory copies of the
    header and the ``.mat``; the image file is not touched), so flips and the
    MATLAB 1-based origin come out exactly as ``nibabel.load`` has them.
    """
    mat_name = file_names(klass, filename).get("mat")
    if mat_name is None:
        return None
    try:
        mspec = locate(mat_name)
    except ImageNotFoundError:
        return None
    src = open_source(mspec)
    if getattr(mspec, "compression", None) == "gzip":  # x.mat.gz beside x.hdr.gz
        data = src.read_prefix(MAX_HEADER + 1)
    else:
        size = src.size or 0
        if size > MAX_HEADER:
            raise InvalidHeaderError(f"{mat_name!r} has {size} bytes: too large for an SPM .mat")
        data = src.read(0, size) if size else b""
    if not data:
        return None
    if len(data) > MAX_HEADER:
        raise InvalidHeaderError(f"{mat_name!r}: too large for an SPM .mat")
    from nibabel.fileholders import FileHolder

    file_map = {
        "header": FileHolder(fileobj=io.BytesIO(hbytes)),
        "image": FileHolder(fileobj=io.BytesIO()),
        "mat": FileHolder(fileobj=io.BytesIO(data)),
    }
    try:
        return np.asarray(klass.from_file_map(file_map).affine, dtype=np.float64)
    except ImportError as e:
        raise InvalidHeaderError(
            f"{mat_name!r}: reading the affine of an SPM .mat file needs scipy ({e})"
        ) from None
    except Exception as e:
        raise InvalidHeaderError(f"{mat_name!r}: cannot read the SPM affine: {e}") from None


def check_data_size(spec, layout: ArrayLayout, name: str) -> None:
    """Refuse a header whose data would run past the end of the file (or the gzip stream)."""
    end = layout.offset + layout.nbytes
    src = open_source(spec)
    if getattr(spec, "compression", None) == "gzip":
        size = src.size  # known once the gzip index is complete
        if size is None:
            limit = MAX_DEFLATE_RATIO * spec.size
            if end > limit:
                raise TruncatedFileError(
                    f"{name!r}: the header describes {layout.nbytes} bytes of data "
                    f"(shape {layout.shape!r}, {layout.dtype}) at offset {layout.offset}, but a "
                    f"gzip stream of {spec.size} bytes holds at most {limit}"
                )
            return
    else:
        size = src.size
    if size is not None and end > size:
        raise TruncatedFileError(
            f"{name!r} holds {size} bytes, but its header describes {layout.nbytes} bytes of "
            f"data (shape {layout.shape!r}, {layout.dtype}) at offset {layout.offset}, ending "
            f"at byte {end}"
        )
