"""From an ECAT 7 file to nibabel's main header, matrix list and subheaders, and the
plain values a frame read needs.

An ECAT 7 ``.v`` file is one big-endian file of 512-byte blocks: the main header
(block 1, magic ``MATRIX``), the matrix list (mlist, from block 2, chained) with one
row per frame (its first data block), and per frame a subheader block followed by
the frame's data (Fortran order, ``x, y, z``). nibabel does all the parsing
(``EcatImage.from_file_map`` reads the header, mlist and subheaders, never the
data): this module feeds it a read-only file object over a voxray source
(:class:`SourceFile`, so local files, URLs and open file objects read the same way
and every byte is counted), turns its errors into voxray's, and checks each frame
against the file before anything is read.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
from nibabel import ecat
from nibabel.fileholders import FileHolder

from ...errors import (
    InvalidHeaderError,
    NotAnImageError,
    TruncatedFileError,
    UnsupportedDataTypeError,
    VoxrayError,
)
from ...sources import open_source

__all__ = ["EcatHeader", "EcatInfo", "Frame", "SourceFile", "read_header"]

#: The first bytes of every ECAT 7 main header (``MATRIX72``, ``MATRIX7011``...).
MAGIC = b"MATRIX"


class EcatHeader(ecat.EcatHeader):
    """nibabel's ECAT main header; ``get_data_dtype()`` is the dtype of the image's
    values (float64: frames are scaled), where nibabel's raises (each frame has its
    own stored dtype), so converters to NIfTI and Zarr write the values exactly.

    Examples
    --------
    >>> EcatHeader().get_data_dtype()
    dtype('float64')
    """

    def __init__(self, binaryblock=None, endianness=None, check=True):
        super().__init__(binaryblock, endianness, check)
        # nibabel's EcatHeader never sets SpatialHeader's geometry; converters read it.
        self._shape: tuple[int, ...] = (0,)
        self._zooms: tuple[float, ...] = (1.0,)

    def set_geometry(self, shape, zooms) -> None:
        """Set the image shape and zooms that ``get_data_shape``/``get_zooms`` give."""
        self._shape = tuple(int(n) for n in shape)
        self._zooms = tuple(float(z) for z in zooms)

    def get_data_dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    def copy(self) -> EcatHeader:
        new = type(self)(self.binaryblock, self.endianness, check=False)
        new.set_geometry(self._shape, self._zooms)
        return new


class SourceFile(io.RawIOBase):
    """A read-only file object over a voxray source spec (nibabel reads file objects).

    Holds the spec (a plain value) and a position, so it pickles small.

    Examples
    --------
    >>> import tempfile, os
    >>> from voxray.sources import local_spec
    >>> path = os.path.join(tempfile.mkdtemp(), "x.v")
    >>> _ = open(path, "wb").write(b"MATRIX72")
    >>> f = SourceFile(local_spec(path))
    >>> f.read(6), f.tell(), f.read()
    (b'MATRIX', 6, b'72')
    """

    def __init__(self, spec, pos: int = 0):
        super().__init__()
        self.spec = spec
        self._pos = pos

    @property
    def name(self) -> str:
        return self.spec.name

    def _size(self) -> int | None:
        return open_source(self.spec).size

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._pos
        elif whence == 2:
            size = self._size()
            if size is None:
                raise OSError(f"{self.name!r}: the size of the stream is not known yet")
            offset += size
        if offset < 0:
            raise OSError(f"{self.name!r}: negative seek position {offset}")
        self._pos = offset
        return offset

    def tell(self) -> int:
        return self._pos

    def read(self, n: int | None = -1) -> bytes:
        src = open_source(self.spec)
        size = src.size
        if n is None or n < 0:
            if size is None:
                raise OSError(f"{self.name!r}: the size of the stream is not known yet")
            n = size - self._pos
        elif size is not None:
            n = min(n, size - self._pos)
        data = src.read(self._pos, n) if n > 0 else b""
        self._pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(memoryview(buffer).cast("B")))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def __reduce__(self):
        return (SourceFile, (self.spec,))


@dataclass(frozen=True)
class Frame:
    """Where one frame's values are: data offset, stored dtype, scale factor."""

    offset: int
    dtype: str
    scale: float


@dataclass
class EcatInfo:
    """What reading an ECAT file found: nibabel's parts and the frames, in order."""

    header: EcatHeader
    subheader: ecat.EcatSubHeader
    mlist: np.ndarray
    affine: np.ndarray
    shape: tuple[int, int, int, int]
    frames: tuple[Frame, ...]
    calibration: float
    flips: tuple[bool, bool, bool]
    spec: object
    filename: str


def read_header(filename: str, spec) -> EcatInfo:
    """Parse the main header, mlist and subheaders of the ECAT file ``spec`` names."""
    src = open_source(spec)
    head = src.read_prefix(ecat.BLOCK_SIZE)
    if len(head) < ecat.BLOCK_SIZE or head[: len(MAGIC)] != MAGIC:
        if head[: len(MAGIC)] != MAGIC:
            raise NotAnImageError(
                f"{filename!r} is not an ECAT 7 file: its first bytes are {bytes(head[:8])!r}, "
                f"expected the magic {MAGIC!r}"
            )
        raise TruncatedFileError(
            f"{filename!r} has {len(head)} bytes: too short for an ECAT main header "
            f"({ecat.BLOCK_SIZE} bytes)"
        )
    fobj = SourceFile(spec)
    fmap = {"header": FileHolder(fileobj=fobj), "image": FileHolder(fileobj=fobj)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # frame order / affines: below
            nib = ecat.EcatImage.from_file_map(fmap)
            subheader = nib.get_subheaders()
            order = ecat.get_frame_order(nib.get_mlist())
            shape = (*subheader.get_shape(0), subheader.get_nframes())
            affine = np.asarray(subheader.get_frame_affine(0), np.float64)
    except VoxrayError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, OSError, EOFError) as e:
        raise InvalidHeaderError(
            f"{filename!r}: cannot read the ECAT main header, matrix list or subheaders "
            f"(is the file truncated?): {e}"
        ) from None
    header = EcatHeader(nib.header.binaryblock, nib.header.endianness, check=False)
    header.set_geometry(shape, subheader.get_zooms(0))
    mlist = nib.get_mlist()
    if len(subheader.subheaders) < shape[3]:
        raise InvalidHeaderError(
            f"{filename!r}: the matrix list names {shape[3]} frames but only "
            f"{len(subheader.subheaders)} have a subheader"
        )
    if any(n <= 0 for n in shape):
        raise InvalidHeaderError(f"{filename!r}: invalid ECAT image shape {shape!r}")
    endian = header.endianness
    frames = []
    size = src.size
    for i in range(shape[3]):
        row = int(order[i][0])
        try:
            dtype = subheader._get_data_dtype(row)
        except KeyError:
            code = subheader.subheaders[row]["data_type"].item()
            raise UnsupportedDataTypeError(
                f"{filename!r}: frame {i} has data type code {code!r}; valid ECAT 7 codes are "
                f"{sorted(c for c in ecat.data_type_codes.code if isinstance(c, int))!r}"
            ) from None
        if endian is not ecat.native_code:
            dtype = dtype.newbyteorder(endian)
        if subheader.get_shape(row) != shape[:3]:
            raise InvalidHeaderError(
                f"{filename!r}: frame {i} has shape {subheader.get_shape(row)!r}, frame 0 "
                f"{shape[:3]!r}; nibabel and voxray read frames of one shape"
            )
        offset = subheader._get_frame_offset(row)
        end = offset + math.prod(shape[:3]) * dtype.itemsize
        if size is not None and end > size:
            raise TruncatedFileError(
                f"{filename!r} holds {size} bytes, but frame {i} ({shape[:3]!r}, {dtype}) "
                f"ends at byte {end}"
            )
        scale = float(subheader.subheaders[row]["scale_factor"].item())
        frames.append(Frame(offset, dtype.str, scale))
    orientation = header["patient_orientation"]
    if orientation in ecat.patient_orient_neurological:
        flips = (True, True, True)
    elif orientation in ecat.patient_orient_radiological:
        flips = (False, True, True)
    else:
        flips = (False, False, False)
    calibration = float(header["ecat_calibration_factor"].item())
    return EcatInfo(
        header,
        subheader,
        mlist,
        affine,
        shape,
        tuple(frames),
        calibration,
        flips,
        spec,
        os.fspath(filename),
    )


def sniff(head: bytes) -> bool:
    """Whether these first bytes are an ECAT 7 main header."""
    return head[: len(MAGIC)] == MAGIC and len(head) >= 8
