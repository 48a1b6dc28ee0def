"""NIfTI to Zarr: OME-Zarr 0.5 that is also NIfTI-Zarr, streamed, with a pyramid.

The data written is exactly what a ``.nii`` would hold (:func:`voxray.formats.nifti.write.
plan_nifti` plans it: stored integers and scaling kept for unchanged data, nibabel's rules
otherwise), transposed to Zarr's ``(t, c, z, y, x)`` order; the ``nifti`` array
holds the same header, extensions included. Levels after the first are computed
from the previous level as stored, block by block (:mod:`.pyramid`); by default
until the smallest level is an overview of at most 64 voxels a side that fits in
one chunk (:func:`default_levels`).

Completion is explicit: each level's array is marked complete when all its chunks
are written, and the group's OME metadata is written last. A local store is built
in a hidden ``.NAME.voxray-partial`` directory next to the destination and renamed
into place at the end; a rerun resumes it (finished levels are kept). A remote
store is written in place, metadata last, so it never opens as an image before it
is whole.

A local store is written holding the destination's lock
(:func:`voxray.writers.atomic.guarded`): a second writer of the same store is refused
at once with a ``DestinationLockedError``. A file-system failure (a full disk, a
file-size limit, in any worker thread) removes the partial store, so the space it took
is freed, and is a ``WriteFailedError``; a killed writer's partial store is resumed by
the next run, or removed by ``voxray clean`` once stale. Remote stores are not locked.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil

import numpy as np

from ...errors import DestinationExistsError, InputError, VoxrayError
from ...sources import is_url
from ...writers import pipeline
from ...writers.atomic import guarded, replace_dir
from ...writers.values import as_image
from ..nifti.write import output_class, plan_nifti
from . import ome, pyramid

__all__ = ["default_chunks", "default_levels", "to_zarr"]

#: Default chunk: one volume (t = 1) when a volume is at most this large...
WHOLE_VOLUME = 16 * 2**20
#: ...otherwise spatial cubes of this side.
CUBE = 128
#: Shards are used when a level has more chunks than this...
SHARD_ABOVE = 512
#: ...and hold about this many bytes (a write job covers whole shards).
SHARD_BYTES = 32 * 2**20
#: The default pyramid halves x, y, z until the largest spatial side is at most this many
#: voxels: the small overview level OME-Zarr viewers open first.
OVERVIEW_SIDE = 64


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


def default_levels(zshape, spatial, chunk) -> int:
    """The default number of pyramid levels: halve the ``spatial`` axes (Zarr order) until
    the largest spatial side is at most :data:`OVERVIEW_SIDE` voxels and the smallest
    level fits in one ``chunk``.

    >>> default_levels((182, 218, 182), (0, 1, 2), (182, 218, 182))  # 1 mm MNI: 218, 109, 55
    3
    >>> default_levels((300, 64, 64, 40), (1, 2, 3), (1, 64, 64, 40))
    1
    """
    fit = len(pyramid.level_shapes(zshape, spatial, chunk, None))
    side, overview = max((zshape[a] for a in spatial), default=1), 1
    while side > OVERVIEW_SIDE:
        side, overview = (side + 1) // 2, overview + 1
    return max(fit, overview)


def _normalize_chunks(chunks, zshape, axes, itemsize) -> tuple[int, ...]:
    if chunks is None:
        return default_chunks(zshape, axes, itemsize)
    if isinstance(chunks, int):
        _positive_ints([chunks], "chunks")
        return tuple(min(n, chunks) if a in "xyz" else 1 for a, n in zip(axes, zshape))
    if isinstance(chunks, dict):
        base = default_chunks(zshape, axes, itemsize)
        given = _positive_ints([chunks.get(a, b) for a, b in zip(axes, base)], "chunks")
        return tuple(min(n, c) for n, c in zip(zshape, given))
    chunks = _positive_ints(chunks, "chunks")
    if len(chunks) != len(zshape):
        raise InputError(f"chunks {chunks} do not match the Zarr axes {axes}")
    return tuple(min(n, c) for n, c in zip(zshape, chunks))


def _positive_ints(values, what: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be positive integers, not {values!r}") from None
    if any(v < 1 for v in out):
        raise InputError(f"{what} must be positive integers, not {values!r}")
    return out


def _shards(shards, chunk, zshape, axes, itemsize):
    if shards is False:
        return None
    if shards is None or shards is True:
        n_chunks = math.prod(math.ceil(n / c) for n, c in zip(zshape, chunk))
        if shards is None and n_chunks <= SHARD_ABOVE:
            return None
        shard = list(chunk)
        # Grow along x, then y, z and last t, up to ~SHARD_BYTES: whole planes first, so
        # a shard-aligned slab of planes (one write job) stays small.
        for a in reversed(range(len(shard))):
            while shard[a] < zshape[a] and itemsize * math.prod(shard) * 2 <= SHARD_BYTES:
                shard[a] = min(zshape[a], shard[a] * 2)
        # Whole chunks, and no more of them than the array has along each axis.
        shard = [
            min(math.ceil(s / c), math.ceil(n / c)) * c for s, c, n in zip(shard, chunk, zshape)
        ]
        return tuple(shard) if tuple(shard) != tuple(chunk) else None
    if isinstance(shards, dict):
        shards = tuple(shards.get(a, c) for a, c in zip(axes, chunk))
    shards = _positive_ints(shards, "shards")
    if len(shards) != len(chunk) or any(s % c for s, c in zip(shards, chunk)):
        raise InputError(f"shards {shards} must be multiples of the chunks {chunk}")
    return shards


def _compressors(compressor):
    from zarr.codecs import BloscCodec

    if compressor == "default":
        # zstd level 1 with byte shuffle: ~460 MB/s per thread here, 0.443 of the size
        # (level 3: 0.434 at 120 MB/s; level 5: 63 MB/s), measured on the benchmark series.
        return BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")
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
    # A strided sample: ~64 positions per spatial axis, a few volumes along t and c.
    nspace = min(3, data.ndim)
    step = [max(1, n // (4 if a < data.ndim - nspace else 64)) for a, n in enumerate(data.shape)]
    sample = np.asarray(data[tuple(slice(None, None, s) for s in step)])
    return len(np.unique(sample)) <= 256


#: Bytes one write job handles (a slab of whole y-x planes, aligned to the write grid).
JOB_BYTES = 32 * 2**20


def slab_regions(shape, grid, spatial, itemsize: int, job_bytes: int = JOB_BYTES):
    """Regions (Zarr order) covering whole y-x planes and aligned to ``grid`` along the
    slower axes: each is one contiguous run of NIfTI bytes and whole Zarr chunks."""
    import itertools

    zi = min(spatial)  # the slowest spatial axis (z, or y for 2-D)
    plane = itemsize * math.prod(shape[zi + 1 :])
    steps = list(grid[: zi + 1])
    # Thicker slabs along z while they stay under job_bytes...
    if shape[zi]:
        k = max(1, job_bytes // max(1, plane * grid[zi]))
        steps[zi] = min(shape[zi], grid[zi] * k)
    # ...and, when a slab is a whole volume, several volumes along the next slower axis.
    if steps[zi] == shape[zi] and zi > 0:
        vol = plane * shape[zi]
        k = max(1, job_bytes // max(1, vol * grid[zi - 1]))
        steps[zi - 1] = min(shape[zi - 1], grid[zi - 1] * k)
    ranges = [range(0, n, s) if n else range(1) for n, s in zip(shape[: zi + 1], steps)]
    for start in itertools.product(*ranges):
        yield tuple(slice(s, min(s + st, n)) for s, st, n in zip(start, steps, shape)) + tuple(
            slice(0, n) for n in shape[zi + 1 :]
        )


def _write_region(block, array, region) -> int:
    block = np.asarray(block)
    array[region] = block
    return int(block.nbytes)


def _copy_region(proxy, perm, dtype, array, region) -> int:
    """Level 0: read a region straight from the NIfTI (raw values), write it transposed."""
    key = [None] * len(perm)
    for z, n in enumerate(perm):
        key[n] = region[z]
    block = proxy.sliced(tuple(key)).get_unscaled().transpose(perm)
    return _write_region(block.astype(dtype, copy=False), array, region)


def _reduce_region(previous, array, region, spatial, method, dtype, step) -> int:
    """A pyramid level: reduce the 2x region of the level before ``step`` output planes
    at a time (whole source chunks along z, so no chunk is decoded twice; the float64
    working copy stays small), then write the region at once."""
    axes = tuple(a for a in spatial if previous.shape[a] > 1)
    zi = min(spatial)
    out = np.empty(tuple(r.stop - r.start for r in region), dtype=dtype)
    for z0 in range(region[zi].start, region[zi].stop, step):
        sub = list(region)
        sub[zi] = slice(z0, min(z0 + step, region[zi].stop))
        src = tuple(
            slice(2 * r.start, min(2 * r.stop, previous.shape[a])) if a in spatial else r
            for a, r in enumerate(sub)
        )
        block = np.asarray(previous[src])
        part = pyramid._reduce(block, axes, method, dtype) if axes else block
        index = [slice(None)] * out.ndim
        index[zi] = slice(z0 - region[zi].start, z0 - region[zi].start + part.shape[zi])
        out[tuple(index)] = part
    return _write_region(out, array, region)


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
        Zarr v3 sharding. Default: on (shards of about 32 MiB) when a level has more
        than 512 chunks.
    levels : int, optional
        Number of pyramid levels. Default: halve until the largest spatial side is at
        most 64 voxels and the smallest level fits in one chunk (a 1 mm MNI image,
        182 x 218 x 182, gets 3 levels: 218, 109 and 55 voxels along y).
    compressor : zarr codec
        Default: Blosc zstd, level 1, byte shuffle.
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

    url = os.fspath(store)
    if isinstance(img_or_path, str | os.PathLike):
        from ..nifti import NIFTI

        img_or_path = NIFTI.open(os.fspath(img_or_path))
    img, cf = as_image(img_or_path)
    if _exists_complete(url, storage_options) and not overwrite:
        raise DestinationExistsError(
            f"{url!r} already exists; pass overwrite=True (--overwrite) to replace it"
        )
    source = img.provenance.store
    if source is not None and os.path.abspath(source[0]) == os.path.abspath(url):
        raise InputError(f"refusing to overwrite {url!r}: the image reads its data from it")

    # What a .nii would hold: the header and the stored values.
    plan = plan_nifti(img, output_class(img.nibabel_class, "image.nii")[0], None, cf, name=url)
    values = plan.values
    header = plan.header
    client = pipeline.client()
    data = values.to_dask()
    ndim = data.ndim
    perm = ome.nifti_to_zarr_perm(ndim)
    axes = ome.AXES[ndim]
    zdata = data.transpose(perm)
    dtype = np.dtype(values.out_dtype).newbyteorder("=")
    if zdata.dtype != dtype:
        zdata = zdata.astype(dtype)
    spatial = tuple(a for a, name in enumerate(axes) if name in "xyz")
    chunk = _normalize_chunks(chunks, zdata.shape, axes, dtype.itemsize)
    _shards(shards, chunk, zdata.shape, axes, dtype.itemsize)  # bad arguments: before any store
    if levels is None:
        levels = default_levels(zdata.shape, spatial, chunk)
    shapes = pyramid.level_shapes(zdata.shape, spatial, chunk, levels)
    method = "mean"  # decided from level 0 as stored, when there is a pyramid

    hsize = int(header["sizeof_hdr"])
    nifti_bytes = plan.header_bytes[: hsize + 4 + int(header.extensions.get_sizeondisk())]
    if not len(header.extensions):
        nifti_bytes = nifti_bytes[:hsize]

    local = not is_url(url)
    final = os.path.abspath(url.removeprefix("file://")) if local else url
    target = (
        os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.voxray-partial")
        if local
        else url
    )
    # A local store is written holding its lock (stale aside directories of it removed
    # first); a file-system failure removes the partial store and is a WriteFailedError.
    with guarded(final) if local else contextlib.nullcontext():
        try:
            if not local and overwrite:
                import fsspec

                fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
                if fs.exists(path):
                    fs.rm(path, recursive=True)
            from .reader import signature
            from .reader import store as zarr_store

            zstore = zarr_store(target, storage_options, read_only=False)
            total = sum(math.prod(s) * dtype.itemsize for s in shapes)
            bar = pipeline.progress_bar(total, final, progress)
            try:
                root = zarr.open_group(zstore, mode="a")
                if "ome" in root.attrs:  # a remote rerun over a complete store, overwrite=False
                    raise DestinationExistsError(
                        f"{url!r} already exists; pass overwrite=True (--overwrite) to replace it"
                    )
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

                previous = prev_grid = None
                for level, shape in enumerate(shapes):
                    lchunk = tuple(min(c, n) for c, n in zip(chunk, shape))
                    lshard = _shards(shards, lchunk, shape, axes, dtype.itemsize)
                    name = str(level)
                    arr = _resume(root, name, shape, lchunk, lshard, dtype)
                    if arr is not None:
                        if bar:
                            bar.update(math.prod(shape) * dtype.itemsize)
                        previous, prev_grid = arr, lshard or lchunk
                        if level == 0 and len(shapes) > 1:
                            method = "mode" if _is_label(header, arr, label) else "mean"
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
                        # Every chunk is stored, all-zero ones too (a few bytes compressed),
                        # so a reader can tell a lost chunk from an empty one (all_chunks).
                        config={"write_empty_chunks": True},
                    )
                    arr.attrs["_ARRAY_DIMENSIONS"] = list(axes)
                    grid = lshard or lchunk
                    if level == 0:
                        regions = list(slab_regions(shape, grid, spatial, dtype.itemsize))
                    else:
                        # Jobs cover whole write cells of the level below (so no stored chunk is
                        # read by two jobs) and reduce in steps of whole source chunks along z.
                        align = [
                            math.lcm(g, max(1, p // 2) if a in spatial else p)
                            for a, (g, p) in enumerate(zip(grid, prev_grid))
                        ]
                        align = [min(a, n) for a, n in zip(align, shape)]
                        regions = list(
                            slab_regions(shape, align, spatial, dtype.itemsize, JOB_BYTES // 16)
                        )
                        zstep = max(1, prev_grid[min(spatial)] // 2)
                    update = (lambda n: bar.update(n)) if bar else (lambda n: None)
                    if client is None and (level > 0 or values.kind == "raw"):
                        # No cluster: jobs read exactly their region (from the file, or from the
                        # level below as stored), with no dask graph to recompute shared inputs.
                        if level == 0:
                            jobs = [
                                functools.partial(_copy_region, values.proxy, perm, dtype, arr, r)
                                for r in regions
                            ]
                        else:
                            jobs = [
                                functools.partial(
                                    _reduce_region, previous, arr, r, spatial, method, dtype, zstep
                                )
                                for r in regions
                            ]
                        pipeline.pipeline(jobs, update, pipeline.threads())
                    else:
                        import dask

                        src = (
                            zdata
                            if level == 0
                            else pyramid.downsample(da.from_zarr(previous), spatial, method)
                        )
                        # One compute per level: inputs shared by several regions are read once.
                        tasks = [
                            dask.delayed(_write_region, pure=False)(src[r], arr, r)
                            for r in regions
                        ]
                        for n in dask.compute(*tasks):
                            update(n)
                    arr.attrs["voxray"] = {
                        "complete": True,
                        "all_chunks": True,
                        "signature": signature(arr),
                    }
                    previous, prev_grid = arr, grid
                    if level == 0 and len(shapes) > 1:
                        method = "mode" if _is_label(header, arr, label) else "mean"

                root.attrs.update(
                    {
                        "ome": ome.multiscales(
                            header, ndim, len(shapes), os.path.basename(final), method
                        ),
                        "voxray": {"nifti_zarr": True, "pyramid": method},
                    }
                )
            finally:
                if bar:
                    bar.close()
            if local:
                replace_dir(target, final, overwrite)
        except VoxrayError:
            raise
        except OSError:
            if local:
                shutil.rmtree(target, ignore_errors=True)
            raise
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
