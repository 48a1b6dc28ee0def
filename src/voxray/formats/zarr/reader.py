"""Reading NIfTI-Zarr (and plain OME-Zarr) stores as voxray Images.

``vx.load("x.nii.zarr", level=0)`` returns the same lazy Image the NIfTI would
give: the header (with extensions) from the ``nifti`` array, the affine from it
(adjusted for the pyramid level), scaling from ``scl_slope``/``scl_inter``, and a
proxy whose reads go to the Zarr array with the axes transposed back to NIfTI
order. A store without a ``nifti`` array gets a header made from its OME scale
and translation.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from dataclasses import dataclass

import numpy as np
from nibabel.spatialimages import HeaderDataError

from ...errors import (
    CorruptStoreError,
    ImageNotFoundError,
    InvalidHeaderError,
    NoSuchLevelError,
    NotAnImageError,
    VoxrayError,
)
from ...image import Provenance, class_for_nibabel, compose_affine
from ...planning import AxisSel
from ...proxy import ArrayProxy
from ...reader import ArrayLayout, BaseReader
from ...sources import is_url, open_source
from ..nifti.validate import check_dtype, check_extensions, check_parsed, check_raw

__all__ = ["ZarrReader", "ZarrSpec", "load_zarr", "open_group", "signature", "store"]

#: Largest ``nifti`` array (header and extensions) a store may hold.
MAX_NIFTI_BYTES = 256 * 2**20


def store(url: str, storage_options: dict | None, read_only: bool):
    """The zarr store of a local path or fsspec URL."""
    import zarr.storage

    if is_url(url):
        return zarr.storage.FsspecStore.from_url(
            url, storage_options=dict(storage_options or {}), read_only=read_only
        )
    return zarr.storage.LocalStore(url.removeprefix("file://"), read_only=read_only)


def open_group(url: str, storage_options: dict | None = None, mode: str = "r"):
    import zarr

    try:
        return zarr.open_group(store(url, storage_options, mode == "r"), mode=mode)
    except (FileNotFoundError, KeyError) as e:
        raise ImageNotFoundError(f"{url!r} is not a Zarr group ({e})") from None
    except json.JSONDecodeError as e:
        raise CorruptStoreError(f"{url!r}: its zarr.json cannot be parsed ({e})") from None
    except Exception as e:
        if type(e).__name__ in ("GroupNotFoundError", "NodeNotFoundError"):
            raise ImageNotFoundError(
                f"{url!r}: no Zarr group there (a conversion that did not finish leaves none)"
            ) from None
        raise


@dataclass(frozen=True)
class ZarrSpec:
    """A Zarr array by store URL and path; opened once per process."""

    url: str
    array: str
    storage_options: tuple = ()  # frozen (voxray.sources.remote.freeze)
    #: A digest of the array's metadata when loaded: a store rewritten since (another
    #: shape, dtype or codec) is a new spec, never served from a stale cached array.
    identity: str = ""

    @property
    def name(self) -> str:
        return f"{self.url}/{self.array}"

    #: The writer wrote every chunk (``voxray.all_chunks``): a missing one is damage,
    #: not the fill value.
    all_chunks: bool = False

    def open(self):
        import zarr

        from ...sources.remote import thaw

        base = store(self.url, thaw(self.storage_options), True)
        if self.all_chunks:
            base = _every_chunk_store(base, self.url, self.array)
        return zarr.open_array(base, path=self.array, mode="r")


def _codec_signature(codecs) -> list:
    out = []
    for c in codecs or []:
        name, conf = c.get("name"), dict(c.get("configuration") or {})
        if name == "bytes":
            out.append(["bytes", conf.get("endian")])
        elif name == "sharding_indexed":
            out.append(
                [
                    name,
                    list(conf.get("chunk_shape") or []),
                    _codec_signature(conf.get("codecs")),
                    _codec_signature(conf.get("index_codecs")),
                ]
            )
        else:
            out.append([name])
    return out


def signature(arr) -> dict:
    """What decides how an array's stored bytes become values: shape, data type, chunk
    grid and key encoding, fill value, the codec chain (with byte order) and dimension
    names. voxray's writer records it in the array's ``voxray.signature``; a reader that
    finds another has a store whose metadata was changed after it was written."""
    meta = arr.metadata.to_dict()
    grid = dict(meta.get("chunk_grid") or {}).get("configuration") or {}
    keys = dict(meta.get("chunk_key_encoding") or {})
    fill = meta.get("fill_value")
    return {
        "shape": [int(n) for n in meta.get("shape", [])],
        "data_type": str(meta.get("data_type")),
        "chunk_shape": [int(n) for n in grid.get("chunk_shape", [])],
        "chunk_key_encoding": [keys.get("name"), dict(keys.get("configuration") or {})],
        "fill_value": fill if isinstance(fill, int | float | str | bool | None) else str(fill),
        "codecs": _codec_signature(meta.get("codecs")),
        "dimension_names": list(meta.get("dimension_names") or []),
    }


def _check_signature(url: str, path: str, arr) -> None:
    stored = dict(arr.attrs.get("voxray") or {}).get("signature")
    if not stored:
        return
    now = signature(arr)
    changed = sorted(k for k in set(stored) | set(now) if stored.get(k) != now.get(k))
    if changed:
        what = "; ".join(f"{k} {now.get(k)!r} (written: {stored.get(k)!r})" for k in changed)
        raise CorruptStoreError(
            f"{url!r}: array {path!r}: its metadata was changed after voxray wrote it: {what}"
        )


def _every_chunk_store(base, url: str, array: str):
    """``base``, where reading a missing chunk of ``array`` raises a CorruptStoreError.

    zarr reads a missing chunk as the fill value: right for a store written
    without empty chunks, silently wrong data for one whose writer wrote every
    chunk (voxray's, which says so in the array's ``voxray.all_chunks``).
    """
    import zarr.storage

    prefix = f"{array}/c"

    class EveryChunkStore(zarr.storage.WrapperStore):
        # Raising inside zarr's gather would abandon its other fetches; the key is noted
        # and the read that asked for it raises (ZarrReader.read_raw, check_missing).
        def __init__(self, store):
            super().__init__(store)
            self.missing: set[str] = set()
            self.lock = threading.Lock()

        async def get(self, key, prototype, byte_range=None):
            got = await super().get(key, prototype, byte_range)
            # An emptied file is lost too: no chunk or shard voxray writes is 0 bytes.
            lost = got is None or len(got) == 0
            if lost and (key == prefix or key.startswith(prefix + "/")):
                with self.lock:
                    self.missing.add(key)
            return got

        def check_missing(self) -> None:
            with self.lock:
                keys, self.missing = sorted(self.missing), set()
            if keys:
                more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
                raise CorruptStoreError(
                    f"{url!r}: array {array!r}: chunk {keys[0]!r}{more} is missing, but the "
                    f"store was written with every chunk: it is damaged (a deleted or lost "
                    f"chunk file)"
                )

    return EveryChunkStore(base)


@dataclass(frozen=True)
class ZarrReader(BaseReader):
    """Reads NIfTI-order selections of a Zarr array stored in ``perm`` (Zarr) order."""

    source: ZarrSpec
    layout: ArrayLayout
    perm: tuple[int, ...]

    def read_raw(self, sel: tuple[AxisSel, ...]) -> np.ndarray:
        arr = open_source(self.source)
        key = []
        for n_axis in self.perm:
            s = sel[n_axis]
            if s.drop:
                key.append(s.start)
            elif s.count == 0:
                key.append(slice(0, 0))
            else:
                lo, step, _ = s.ascending()
                key.append(slice(lo, lo + (s.count - 1) * step + 1, step))
        try:
            data = np.asarray(arr[tuple(key)])
            check = getattr(arr.store, "check_missing", None)
            if check is not None:
                check()
        except VoxrayError:
            raise
        except (
            RuntimeError,
            ValueError,
            TypeError,
            EOFError,
            ZeroDivisionError,
            OverflowError,
            IndexError,
        ) as e:  # codec, shape and chunk-grid errors
            spec = self.source
            raise CorruptStoreError(
                f"{spec.url!r}: array {spec.array!r}, selection {tuple(key)!r}: a chunk cannot "
                f"be decoded ({type(e).__name__}: {e})"
            ) from None
        kept = [n for n in self.perm if not sel[n].drop]  # NIfTI axis of each result axis
        data = data.transpose(np.argsort(kept))
        index = tuple(
            slice(None, None, -1) if sel[n].ascending()[2] else slice(None) for n in sorted(kept)
        )
        data = data[index]
        return data.astype(self.layout.dtype, copy=False)

    def _token_extra(self) -> tuple:
        return (self.perm,)


def _header_from_bytes(raw: bytes, where: str):
    import nibabel as nib

    size = int.from_bytes(raw[:4], "little")
    if size not in (348, 540):
        size = int.from_bytes(raw[:4], "big")
    cls = {348: nib.Nifti1Header, 540: nib.Nifti2Header}.get(size)
    if cls is None:
        raise InvalidHeaderError(f"{where!r}: the 'nifti' array does not hold a NIfTI header")
    if len(raw) == size:
        raw = raw + b"\x00\x00\x00\x00"  # no extensions: the flag was left out
    # The same checks as a .nii's header (the data is the store's, so not vox_offset).
    where = f"{where}/nifti"
    unchecked = cls(raw[:size], check=False)
    check_raw(unchecked, raw, where, data_offset=False)
    check_extensions(unchecked, raw, where, single_file=False)
    try:
        header = cls.from_fileobj(io.BytesIO(raw), check=False)
    except Exception as e:  # nibabel on damaged bytes
        raise InvalidHeaderError(
            f"{where!r}: the NIfTI header cannot be parsed ({type(e).__name__}: {e})"
        ) from None
    check_dtype(header, where)
    try:  # nibabel's own checks and fixes (magic; codes out of range reset to 0...),
        # as a .nii's header gets them
        header = cls.from_fileobj(io.BytesIO(raw), check=False)
        if 0 < float(header["vox_offset"]) < header.single_vox_offset:
            header["vox_offset"] = 0  # the data is the store's: its offset is unused
        header.check_fix()
    except Exception as e:
        raise InvalidHeaderError(
            f"{where!r}: invalid NIfTI header: {type(e).__name__}: {e}"
        ) from None
    check_parsed(header, where)
    return header


_SPACE_UNITS = {"millimeter": "mm", "micrometer": "micron", "meter": "meter"}
_TIME_UNITS = {"second": "sec", "millisecond": "msec", "microsecond": "usec"}


def _transforms(dataset) -> tuple[np.ndarray, np.ndarray]:
    scale = translation = None
    for t in dataset.get("coordinateTransformations", []):
        if t["type"] == "scale":
            scale = np.asarray(t["scale"], dtype=np.float64)
        elif t["type"] == "translation":
            translation = np.asarray(t["translation"], dtype=np.float64)
    n = len(scale) if scale is not None else len(translation)
    return (
        scale if scale is not None else np.ones(n),
        translation if translation is not None else np.zeros(n),
    )


def _spatial_matrix(names, scale, translation) -> np.ndarray:
    """Voxel (x, y, z index) to OME physical coordinates, as a 4x4."""
    m = np.eye(4)
    for i, axis in enumerate("xyz"):
        if axis in names:
            a = names.index(axis)
            m[i, i] = scale[a]
            m[i, 3] = translation[a]
    return m


def _check_axes(url: str, names: list, arr, datasets: list, level: int) -> None:
    """OME axes name each array axis once, from t, c, z, y, x; every level's scale and
    translation are finite, scales nonzero, one value per axis; a level is no larger
    than level 0 along any axis."""
    if (
        len(set(names)) != len(names)
        or not set(names) <= set("tczyx")
        or not set("xyz") & set(names)
    ):
        raise InvalidHeaderError(
            f"{url!r}: the OME axes are {names!r}; voxray reads images whose axes are distinct "
            f"names from t, c, z, y, x, with at least one spatial axis"
        )
    if arr.ndim != len(names):
        raise InvalidHeaderError(
            f"{url!r}: level {level} has {arr.ndim} dimensions, but the OME metadata names "
            f"{len(names)} axes {names!r}"
        )
    grid = tuple(arr.metadata.chunk_grid.chunk_shape)
    if len(grid) != arr.ndim or any(int(c) < 1 for c in grid):
        raise InvalidHeaderError(
            f"{url!r}: level {level}'s chunk grid {grid!r} is not one positive size per axis "
            f"of its shape {tuple(arr.shape)!r}"
        )
    for n in sorted({0, level}):
        scale, translation = _transforms(datasets[n])
        if len(scale) != len(names) or len(translation) != len(names):
            raise InvalidHeaderError(
                f"{url!r}: level {n}'s coordinateTransformations have {len(scale)} scales and "
                f"{len(translation)} translations for {len(names)} axes"
            )
        if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(translation))) or np.any(
            scale == 0
        ):
            raise InvalidHeaderError(
                f"{url!r}: level {n}'s scale {scale.tolist()!r} and translation "
                f"{translation.tolist()!r} must be finite, with no zero scale"
            )


def _cross_check(url: str, header, arr, shape: tuple, level: int, shape0: tuple) -> None:
    """The array of a level agrees with the NIfTI header it carries: the same shape at
    level 0 (the same non-spatial sizes at every level, spatial sizes no larger than
    level 0's), the header's dtype."""
    if level and any(n > m for n, m in zip(shape[:3], shape0[:3])):
        raise InvalidHeaderError(
            f"{url!r}: level {level} has shape {shape!r} (NIfTI axis order), larger than level "
            f"0's {shape0!r}: a pyramid level is a reduction of level 0"
        )
    want = tuple(int(n) for n in header.get_data_shape())
    if len(want) != len(shape) or (want != shape if level == 0 else want[3:] != shape[3:]):
        raise InvalidHeaderError(
            f"{url!r}: level {level} holds an array of shape {shape!r} (NIfTI axis order), but "
            f"the store's NIfTI header says {want!r}"
        )
    stored, declared = np.dtype(arr.dtype), np.dtype(header.get_data_dtype())
    if stored.newbyteorder("=") != declared.newbyteorder("="):
        raise InvalidHeaderError(
            f"{url!r}: level {level} holds {stored} values, but the store's NIfTI header "
            f"says {declared}"
        )


def load_zarr(url, level: int = 0, storage_options: dict | None = None, chunks="auto"):
    """A lazy voxray Image of pyramid ``level`` of a NIfTI-Zarr / OME-Zarr store."""
    url = os.fspath(url)
    try:
        return _load_zarr(url, level, storage_options, chunks)
    except VoxrayError:
        raise
    except json.JSONDecodeError as e:
        raise CorruptStoreError(f"{url!r}: a zarr.json cannot be parsed ({e})") from None
    except (
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
        OverflowError,
        ZeroDivisionError,
        HeaderDataError,
    ) as e:
        raise InvalidHeaderError(
            f"{url!r}: its metadata does not describe an OME-Zarr image ({type(e).__name__}: {e})"
        ) from None


def _load_zarr(url: str, level: int, storage_options, chunks):
    import nibabel as nib

    group = open_group(url, storage_options)
    attrs = dict(group.attrs)
    ome = attrs.get("ome", attrs)
    if "multiscales" not in ome:
        raise NotAnImageError(
            f"{url!r} has no OME multiscales metadata: not an OME-Zarr image (or a conversion "
            f"that did not finish)"
        )
    ms = ome["multiscales"][0]
    names = [a["name"] for a in ms["axes"]]
    datasets = ms["datasets"]
    if not -len(datasets) <= level < len(datasets):
        raise NoSuchLevelError(f"{url!r} has {len(datasets)} levels; level {level} does not exist")
    level %= len(datasets)
    arr = group[datasets[level]["path"]]
    _check_axes(url, names, arr, datasets, level)
    nifti_axes = [a for a in ("x", "y", "z", "t", "c") if a in names]
    perm = tuple(nifti_axes.index(a) for a in names)  # Zarr axis -> NIfTI axis
    shape = tuple(arr.shape[names.index(a)] for a in nifti_axes)
    arr0 = group[datasets[0]["path"]] if level else arr
    if arr0.ndim != len(names):
        raise InvalidHeaderError(
            f"{url!r}: level 0 has {arr0.ndim} dimensions, but the OME metadata names "
            f"{len(names)} axes {names!r}"
        )
    shape0 = tuple(arr0.shape[names.index(a)] for a in nifti_axes)
    declared = dict(attrs.get("voxray") or {}).get("nifti_zarr") or any(
        dict(m.get("metadata") or {}).get("nifti_zarr") for m in ome["multiscales"]
    )
    if "nifti" in group:
        nifti = group["nifti"]
        if len(nifti.shape) != 1 or not 348 <= nifti.shape[0] <= MAX_NIFTI_BYTES:
            raise InvalidHeaderError(
                f"{url!r}: array 'nifti' has shape {tuple(nifti.shape)!r}; a NIfTI header "
                f"(with its extensions) is one dimension of 348 to {MAX_NIFTI_BYTES} bytes"
            )
        try:
            raw = bytes(np.asarray(nifti[:]))
        except VoxrayError:
            raise
        except Exception as e:  # a chunk of another size, a codec error
            raise CorruptStoreError(
                f"{url!r}: array 'nifti' (the NIfTI header) cannot be decoded "
                f"({type(e).__name__}: {e})"
            ) from None
        header = _header_from_bytes(raw, url)
        klass = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
        affine0 = header.get_best_affine()
        source_header = header.copy()
        _cross_check(url, header, arr, shape, level, shape0)
    elif declared:
        raise CorruptStoreError(
            f"{url!r}: the store says it is NIfTI-Zarr, but its 'nifti' array (the NIfTI "
            f"header: affine, scaling, units) is missing; read as plain OME-Zarr its affine "
            f"and scaling would be wrong"
        )
    else:
        header = nib.Nifti1Header()
        header.set_data_dtype(arr.dtype)
        header.set_data_shape(shape)
        klass = nib.Nifti1Image
        s0, t0 = _transforms(datasets[0])
        affine0 = _spatial_matrix(names, s0, t0)
        # OME's axis units and scales stand in for the header's units and zooms.
        units = {a["name"]: a.get("unit") for a in ms["axes"]}
        space = _SPACE_UNITS.get(units.get("x"), "unknown")
        time = _TIME_UNITS.get(units.get("t"), "unknown")
        header.set_xyzt_units(space, time)
        header.set_zooms([abs(float(s0[names.index(a)])) for a in nifti_axes])
        source_header = None
    # After the cross-check with the header, which says more about a shape or dtype lie.
    _check_signature(url, datasets[level]["path"], arr)
    s0, t0 = _transforms(datasets[0])
    sn, tn = _transforms(datasets[level])
    affine = (
        affine0
        if level == 0
        else compose_affine(
            affine0, np.linalg.inv(_spatial_matrix(names, s0, t0)) @ _spatial_matrix(names, sn, tn)
        )
    )
    slope, inter = header.get_slope_inter()
    layout = ArrayLayout(
        shape,
        np.dtype(arr.dtype),
        0,
        1.0 if slope is None else slope,
        0.0 if inter is None else inter,
    )
    from ...sources.remote import freeze

    meta = json.dumps(arr.metadata.to_dict(), sort_keys=True, default=str)
    spec = ZarrSpec(
        url,
        datasets[level]["path"],
        freeze(storage_options or {}),
        hashlib.sha256(meta.encode()).hexdigest()[:16],
        bool(dict(arr.attrs.get("voxray") or {}).get("all_chunks")),
    )
    reader = ZarrReader(spec, layout, perm)
    proxy = ArrayProxy.from_reader(reader, chunks=chunks)
    vklass = class_for_nibabel(klass)
    try:
        img = vklass(proxy, affine, header)  # the header follows the level's affine
    except (HeaderDataError, ValueError):
        # An affine nibabel cannot store (a non-finite sform row cannot be decomposed
        # into a qform): as a .nii with that header loads, the header stays as stored.
        img = vklass(proxy, None, header)
        img._affine = affine
    img.provenance = Provenance(
        files=frozenset([url]),
        header=source_header if level == 0 else None,
        format="zarr",
        chunks=chunks,
        store=(url, datasets[level]["path"]),
    )
    return img
