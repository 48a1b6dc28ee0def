"""NIfTI to Zarr: OME-Zarr 0.5 that is also NIfTI-Zarr, streamed, with a pyramid.

The data written is exactly what a ``.nii`` would hold (:mod:`voxray.writers.nifti`
plans it: stored integers and scaling kept for unchanged data, nibabel's rules
otherwise), transposed to Zarr's ``(t, c, z, y, x)`` order; the ``nifti`` array
holds the same header, extensions included. Levels after the first are computed
from the previous level as stored, block by block (:mod:`.pyramid`), until the
smallest fits in one chunk.

Completion is explicit: each level's array is marked complete when all its chunks
are written, and the group's OME metadata is written last. A local store is built
in a hidden ``.NAME.voxray-partial`` directory next to the destination and renamed
into place at the end; a rerun resumes it (finished levels are kept). A remote
store is written in place, metadata last, so it never opens as an image before it
is whole.
"""

from __future__ import annotations

import math
import os
import shutil

import numpy as np

from ..errors import VoxrayError
from . import ome, pyramid

__all__ = ["default_chunks", "to_zarr"]

#: Default chunk: one volume (t = 1) when a volume is at most this large...
WHOLE_VOLUME = 16 * 2**20
#: ...otherwise spatial cubes of this side.
CUBE = 128
#: Shards are used when a level has more chunks than this...
SHARD_ABOVE = 512
#: ...and hold about this many bytes.
SHARD_BYTES = 64 * 2**20


def default_chunks(zshape, axes, itemsize: int) -> tuple[int, ...]:
    """One chunk per volume when volumes are small, spatial cubes otherwise (Zarr order)."""
    spatial = [a for a, name in enumerate(axes) if name in "xyz"]
    vol = itemsize * math.prod(zshape[a] for a in spatial)
    chunk = []
    for a, n in enumerate(zshape):
        if a in spatial:
            chunk.append(n if vol <= WHOLE_VOLUME else min(n, CUBE))
        else:
            chunk.append(1)
    return tuple(chunk)


def _normalize_chunks(chunks, zshape, axes, itemsize) -> tuple[int, ...]:
    if chunks is None:
        return default_chunks(zshape, axes, itemsize)
    if isinstance(chunks, int):
        return tuple(min(n, chunks) if a in "xyz" else 1 for a, n in zip(axes, zshape))
    if isinstance(chunks, dict):
        base = default_chunks(zshape, axes, itemsize)
        return tuple(min(n, int(chunks.get(a, b))) for a, n, b in zip(axes, zshape, base))
    chunks = tuple(int(c) for c in chunks)
    if len(chunks) != len(zshape):
        raise ValueError(f"chunks {chunks} do not match the Zarr axes {axes}")
    return tuple(min(n, c) for n, c in zip(zshape, chunks))


def _shards(shards, chunk, zshape, axes, itemsize):
    if shards is False:
        return None
    if shards is None or shards is True:
        n_chunks = math.prod(math.ceil(n / c) for n, c in zip(zshape, chunk))
        if shards is None and n_chunks <= SHARD_ABOVE:
            return None
        shard = list(chunk)
        # Grow along the slowest axes first (time, then z, y, x) up to ~SHARD_BYTES.
        for a in range(len(shard)):
            while shard[a] < zshape[a] and itemsize * math.prod(shard) * 2 <= SHARD_BYTES:
                shard[a] = min(zshape[a], shard[a] * 2)
        shard = [math.ceil(s / c) * c for s, c in zip(shard, chunk)]
        return tuple(shard) if tuple(shard) != tuple(chunk) else None
    if isinstance(shards, dict):
        shards = tuple(int(shards.get(a, c)) for a, c in zip(axes, chunk))
    shards = tuple(int(s) for s in shards)
    if any(s % c for s, c in zip(shards, chunk)):
        raise ValueError(f"shards {shards} must be multiples of the chunks {chunk}")
    return shards


def _compressors(compressor):
    from zarr.codecs import BloscCodec

    if compressor == "default":
        return BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")
    return compressor


def _is_label(header, data, label) -> bool:
    """Label images get mode pyramids: an intent says so, or integer data with <= 256 values."""
    if label is not None:
        return bool(label)
    if "intent_code" in header:
        try:
            if header.get_intent()[0] in ("label", "neuronames"):
                return True
        except Exception:  # an unknown intent code says nothing either way
            pass
    if data.dtype.kind not in "iu" or data.dtype.itemsize < 2:
        return False  # uint8 anatomical templates are images
    step = [max(1, n // 64) for n in data.shape]
    sample = np.asarray(data[tuple(slice(None, None, s) for s in step)])
    return len(np.unique(sample)) <= 256


def _writes(src, array, region_of):
    import dask

    from ..writers.nifti import _blocks

    return [
        dask.delayed(_write_region, pure=False)(b, array, region_of(start, b))
        for b, start in _blocks(src)
    ]


def _write_region(block, array, region) -> int:
    array[region] = np.asarray(block)
    return int(np.asarray(block).nbytes)


def _local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _exists_complete(url: str, storage_options) -> bool:
    from .reader import open_group

    try:
        group = open_group(url, storage_options)
    except VoxrayError:
        return False
    return "ome" in group.attrs or "multiscales" in group.attrs


def to_zarr(
    img_or_path,
    store,
    *,
    chunks=None,
    shards=None,
    levels: int | None = None,
    compressor="default",
    label: bool | None = None,
    storage_options: dict | None = None,
    overwrite: bool = False,
    progress: bool | None = None,
) -> str:
    """Write an image as OME-Zarr 0.5 / NIfTI-Zarr, out of core, with a pyramid.

    Parameters
    ----------
    img_or_path : Image, DataArray, nibabel image or path
    store : str or os.PathLike
        Local path or fsspec URL (``s3://bucket/x.nii.zarr``).
    chunks : int, dict or tuple, optional
        int: spatial cube side (``t`` chunk 1); dict by axis name; tuple in Zarr order.
        Default: one chunk per volume when a volume is at most 16 MiB, else 128^3 cubes.
    shards : bool, dict or tuple, optional
        Zarr v3 sharding. Default: on (shards of about 64 MiB) when a level has more
        than 512 chunks.
    levels : int, optional
        Number of pyramid levels (default: until the smallest fits in one chunk).
    compressor : zarr codec
        Default: Blosc zstd, level 5, byte shuffle.
    label : bool, optional
        Mode (not mean) pyramid; default from the intent code, or integer data with at
        most 256 distinct values.
    storage_options : dict, optional
        fsspec options (credentials, ``endpoint_url``...) for remote stores.
    overwrite : bool
        Replace an existing complete store; otherwise refuse.
    progress : bool, optional
        Progress bar (default: when stderr is a terminal).

    Returns
    -------
    str
        The store's path or URL.
    """
    import dask.array as da
    import zarr

    from ..image import load
    from ..writers.nifti import _as_image, _dask_data, _plan, _progress_bar, _run, _window

    url = os.fspath(store)
    if isinstance(img_or_path, str | os.PathLike):
        img_or_path = load(img_or_path)
    img, cf = _as_image(img_or_path)
    if _exists_complete(url, storage_options) and not overwrite:
        raise VoxrayError(f"{url!r} already exists; pass overwrite=True to replace it")
    source = getattr(img, "_zarr_source", None)
    if source is not None and os.path.abspath(source[0]) == os.path.abspath(url):
        raise VoxrayError(f"refusing to overwrite {url!r}: the image reads its data from it")

    plan = _plan(img, "image.nii", None, cf)  # what a .nii would hold: header and values
    header = plan.header
    data = _dask_data(plan)
    ndim = data.ndim
    perm = ome.nifti_to_zarr_perm(ndim)
    axes = ome.AXES[ndim]
    zdata = data.transpose(perm)
    dtype = np.dtype(plan.out_dtype).newbyteorder("=")
    if zdata.dtype != dtype:
        zdata = zdata.astype(dtype)
    spatial = tuple(a for a, name in enumerate(axes) if name in "xyz")
    chunk = _normalize_chunks(chunks, zdata.shape, axes, dtype.itemsize)
    shapes = pyramid.level_shapes(zdata.shape, spatial, chunk, levels)
    method = "mode" if _is_label(header, zdata, label) else "mean"

    hsize = int(header["sizeof_hdr"])
    nifti_bytes = plan.header_bytes[: hsize + 4 + int(header.extensions.get_sizeondisk())]
    if not len(header.extensions):
        nifti_bytes = nifti_bytes[:hsize]

    local = _local(url)
    final = os.path.abspath(url.removeprefix("file://")) if local else url
    target = (
        os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.voxray-partial")
        if local
        else url
    )
    if not local and overwrite:
        import fsspec

        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        if fs.exists(path):
            fs.rm(path, recursive=True)
    from .reader import _store

    zstore = _store(target, storage_options, read_only=False)
    total = sum(math.prod(s) * dtype.itemsize for s in shapes)
    bar = _progress_bar(total, final, progress)
    try:
        root = zarr.open_group(zstore, mode="a")
        if "ome" in root.attrs:  # a remote rerun over a complete store, overwrite=False
            raise VoxrayError(f"{url!r} already exists; pass overwrite=True to replace it")
        nifti = root.create_array(
            "nifti",
            shape=(len(nifti_bytes),),
            chunks=(len(nifti_bytes),),
            dtype="u1",
            compressors=None,
            fill_value=0,
            overwrite=True,
            dimension_names=("bytes",),
        )
        nifti[:] = np.frombuffer(nifti_bytes, np.uint8)
        nifti.attrs.update(ome.header_json(header))

        previous = None
        for level, shape in enumerate(shapes):
            lchunk = tuple(min(c, n) for c, n in zip(chunk, shape))
            lshard = _shards(shards, lchunk, shape, axes, dtype.itemsize)
            name = str(level)
            arr = _resume(root, name, shape, lchunk, lshard, dtype)
            if arr is not None:
                if bar:
                    bar.update(math.prod(shape) * dtype.itemsize)
                previous = arr
                continue
            arr = root.create_array(
                name,
                shape=shape,
                chunks=lchunk,
                shards=lshard,
                dtype=dtype,
                compressors=_compressors(compressor),
                fill_value=0,
                overwrite=True,
                dimension_names=axes,
            )
            arr.attrs["_ARRAY_DIMENSIONS"] = list(axes)
            if level == 0:
                src = zdata
            else:
                src = pyramid.downsample(da.from_zarr(previous), spatial, method)
            grid = lshard or lchunk
            src = src.rechunk(grid)

            def region(start, block, shape=shape, grid=grid):
                return tuple(slice(s, min(s + g, n)) for s, g, n in zip(start, grid, shape))

            _run(_writes(src, arr, region), lambda n: bar and bar.update(n), _window())
            arr.attrs["voxray"] = {"complete": True}
            previous = arr

        root.attrs.update(
            {
                "ome": ome.multiscales(header, ndim, len(shapes), os.path.basename(final), method),
                "voxray": {"nifti_zarr": True, "pyramid": method},
            }
        )
    finally:
        if bar:
            bar.close()
    if local:
        _replace_dir(target, final, overwrite)
    return final


def _resume(root, name, shape, chunk, shard, dtype):
    """The existing level array, if a previous run finished it with the same layout."""
    if name not in root:
        return None
    arr = root[name]
    done = arr.attrs.get("voxray", {}).get("complete", False)
    same = (
        tuple(arr.shape) == tuple(shape)
        and np.dtype(arr.dtype) == dtype
        and tuple(arr.chunks) == tuple(chunk)
        and (tuple(arr.shards) if arr.shards else None) == (tuple(shard) if shard else None)
    )
    return arr if done and same else None


def _replace_dir(partial: str, final: str, overwrite: bool) -> None:
    """Move the finished store into place (the old one aside first, then removed)."""
    aside = None
    if os.path.exists(final):
        if not overwrite:
            raise VoxrayError(f"{final!r} already exists; pass overwrite=True to replace it")
        aside = f"{partial}.old"
        os.replace(final, aside)
    os.replace(partial, final)
    if aside:
        shutil.rmtree(aside, ignore_errors=True)
    try:
        fd = os.open(os.path.dirname(final), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass
