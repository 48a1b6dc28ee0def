"""Out-of-core NIfTI writing: ``.nii``, ``.nii.gz`` and pairs, in parallel, atomically.

What gets written
-----------------
The output class follows nibabel's ``save`` (the suffix decides; ``Nifti1Image``
<-> ``Nifti1Pair`` and friends convert), and the header is nibabel's: the image's
header updated for shape and affine exactly as ``update_header`` does.

The data takes one of three paths:

* **raw** -- the image is a voxray file proxy (possibly sliced or reoriented) and
  the on-disk dtype is unchanged (byte order aside): the stored values are copied
  (byte-swapped if the output's header has the other byte order) and the
  scaling (``scl_slope``/``scl_inter``) and, for an unchanged image, the data
  offset are kept, so loading and saving reproduces the header bytes. (nibabel
  rescales on every load-then-save.)
* **CF** -- a DataArray whose encoding still names its on-disk dtype and
  ``scale_factor``/``add_offset``: values are encoded back with that scaling.
* **computed** -- anything else: nibabel's rules, applied chunk by chunk. When the
  header asks for scaling (NaN slope and intercept, as nibabel leaves them), one
  pass finds the finite range and NaNs, nibabel's own array writer chooses slope
  and intercept from it (the choice depends only on that range), and nibabel's
  ``array_to_file`` converts each chunk, so the bytes are nibabel's bytes.

How it is written
-----------------
Data is written in contiguous slabs (whole fast axes, a run of the slowest):
``.nii`` slabs land in their regions in parallel, each task opening the file by
path (a ``np.memmap`` target would be copied to distributed workers and its
writes lost); ``.nii.gz`` slabs are compressed in parallel into independent gzip
members of a few MiB, written in order, and followed by an empty member whose
extra field indexes the members (:func:`~voxray.sources.gzindex.trailer_member`),
so the file is random-access at once and still plain gzip. Everything goes to a
temporary file in the destination directory, fsynced, then renamed.
"""

from __future__ import annotations

import functools
import io
import math
import os
import sys
from dataclasses import dataclass

import numpy as np
from nibabel import imageclasses, nifti1, nifti2
from nibabel.arraywriters import ArrayWriter, get_slope_inter, make_array_writer
from nibabel.filename_parser import splitext_addext, types_filenames
from nibabel.volumeutils import array_to_file

from ..errors import NotAnImageError, VoxrayError
from ..layout import SUPPORTED_CLASSES
from ..planning import default_chunks, expand_chunks
from ..sources.gzindex import MAX_TRAILER_MEMBERS, trailer_member
from .atomic import AtomicFile

__all__ = ["DEFAULT_COMPRESSLEVEL", "save"]

#: gzip level: zlib-ng level 3 is ~2.7x faster on 2 threads than nibabel's zlib level 1,
#: with 2-3% smaller output (measured on the benchmark data).
DEFAULT_COMPRESSLEVEL = 3
#: Largest slab written (or compressed) by one task.
WRITE_SLAB = 64 * 2**20
#: Decompressed size of a gzip member (more if a file would need > 8000 members).
MEMBER = 4 * 2**20


@dataclass
class _Plan:
    klass: type
    header: object
    header_bytes: bytes
    data: object  # dask array of on-disk values (out dtype, file byte order)
    offset: int
    header_path: str
    image_path: str
    gzip: bool
    proxy: object = None  # the file proxy, when the raw values are written as stored
    out_dtype: np.dtype = None
    mat_path: str | None = None  # SPM Analyze: the affine's .mat file, as nibabel writes it
    mat_bytes: bytes | None = None


def _spm_mat(klass: type, affine) -> bytes | None:
    """The ``.mat`` file nibabel writes beside an SPM99/SPM2 image with this affine."""
    if "mat" not in dict(klass.files_types) or affine is None:
        return None
    from nibabel.fileholders import FileHolder

    bufs = {kind: io.BytesIO() for kind, _ in klass.files_types}
    tiny = klass(np.zeros((1, 1, 1), np.uint8), affine)  # nibabel encodes flips and origin
    tiny.to_file_map({kind: FileHolder(fileobj=b) for kind, b in bufs.items()})
    return bufs["mat"].getvalue() or None


# -- inputs ----------------------------------------------------------------------


def _as_image(obj):
    """(voxray Image, CF scaling of a DataArray or None)."""
    from ..image import Image

    if isinstance(obj, Image):
        return obj, None
    if type(obj).__name__ == "DataArray" and hasattr(obj, "vx"):
        img = obj.vx.to_image()
        enc = obj.encoding
        if enc.get("source"):
            img._read_from = {os.path.abspath(enc["source"])}
        cf = None
        if "dtype" in enc and ("scale_factor" in enc or "add_offset" in enc):
            cf = (
                np.dtype(enc["dtype"]),
                float(enc.get("scale_factor", 1.0)),
                float(enc.get("add_offset", 0.0)),
            )
        return img, cf
    if hasattr(obj, "dataobj") and hasattr(obj, "header") and hasattr(obj, "affine"):
        return Image.from_image(obj), None
    raise TypeError(
        f"cannot save {type(obj).__name__}: expected an Image, DataArray or nibabel image"
    )


def output_class(src_class: type, filename: str) -> tuple[type, bool]:
    """The nibabel class ``nibabel.save`` would write ``filename`` as, and whether gzipped."""
    _, ext, trailing = splitext_addext(filename, (".gz", ".bz2", ".zst"))
    if trailing and trailing.lower() != ".gz":
        raise NotAnImageError(
            f"{filename!r}: voxray writes uncompressed or .gz files, not {trailing!r}"
        )
    lext = ext.lower()
    gz = bool(trailing)
    if lext in src_class.valid_exts:
        return src_class, gz
    conversions = {
        (nifti1.Nifti1Image, ".img"): nifti1.Nifti1Pair,
        (nifti1.Nifti1Image, ".hdr"): nifti1.Nifti1Pair,
        (nifti2.Nifti2Image, ".img"): nifti2.Nifti2Pair,
        (nifti2.Nifti2Image, ".hdr"): nifti2.Nifti2Pair,
        (nifti1.Nifti1Pair, ".nii"): nifti1.Nifti1Image,
        (nifti2.Nifti2Pair, ".nii"): nifti2.Nifti2Image,
    }
    if (src_class, lext) in conversions:
        return conversions[src_class, lext], gz
    for klass in imageclasses.all_image_classes:
        if klass.__name__ in SUPPORTED_CLASSES and lext in klass.valid_exts:
            return klass, gz
    raise NotAnImageError(
        f"{filename!r}: cannot work out the file type from the suffix {ext!r}; voxray writes "
        f".nii, .nii.gz, .hdr/.img (optionally .gz)"
    )


def _source_paths(img) -> set[str]:
    """Files the image's data is read from (voxray readers in its proxy or dask graph)."""
    from ..proxy import ArrayProxy, DaskProxy
    from ..reader import Reader

    out = set()
    obj = img.dataobj
    if isinstance(obj, ArrayProxy):
        path = getattr(obj.reader.source, "path", None)
        if path:
            out.add(path)
    elif isinstance(obj, DaskProxy):
        graph = obj.to_dask().__dask_graph__()
        for value in graph.values():
            if isinstance(value, Reader) and getattr(value.source, "path", None):
                out.add(value.source.path)
    if img.get_filename():
        out.add(os.path.abspath(img.get_filename()))
    return out | getattr(img, "_read_from", set())


def _refuse_overwriting_sources(img, targets) -> None:
    sources = _source_paths(img)
    for target in targets:
        if not os.path.exists(target):
            continue
        for src in sources:
            if os.path.exists(src) and os.path.samefile(src, target):
                raise VoxrayError(
                    f"refusing to overwrite {target!r}: the image being saved reads its data "
                    f"from it; save to another path"
                )


# -- the header and the data plan ---------------------------------------------------


def _finite_range(x):
    """(min, max, has_nan) of the finite values, as nibabel's ``finite_range``, one pass."""
    import dask
    import dask.array as da

    if x.dtype.kind in "iub":
        mn, mx = dask.compute(x.min(), x.max())
        return mn, mx, False
    finite = da.isfinite(x)
    mn, mx, has_nan = dask.compute(
        da.where(finite, x, np.inf).min(), da.where(finite, x, -np.inf).max(), da.isnan(x).any()
    )
    return mn, mx, bool(has_nan)


def _sample(dtype, mn, mx, has_nan) -> np.ndarray:
    """A tiny array with the same finite range and NaN presence as the data."""
    values = [] if not np.isfinite(mn) else [mn, mx]
    if has_nan:
        values.append(np.nan)
    return np.array(values, dtype=dtype)


def _plan(img, filename: str, dtype, cf) -> _Plan:
    from ..proxy import ArrayProxy

    klass, gz = output_class(img.nibabel_class, filename)
    src = img._nib
    out = klass(src.dataobj, src.affine, src.header, extra=dict(src.extra))
    hdr = out.header
    if dtype is not None:
        hdr.set_data_dtype(dtype)
    out_dtype = hdr.get_data_dtype()
    single = len(klass.files_types) == 1
    proxy = img.dataobj
    has_slope = getattr(hdr, "has_data_slope", False)
    has_inter = getattr(hdr, "has_data_intercept", False)
    offset = None

    layout = proxy.reader.layout if isinstance(proxy, ArrayProxy) else None
    raw_ok = (
        layout is not None
        and out_dtype.newbyteorder("=") == layout.dtype.newbyteorder("=")
        and (not layout.is_scaled or has_slope)
        and (float(layout.inter) == 0 or has_inter)
    )
    if raw_ok:
        data = None  # built lazily: the local pipeline reads through the proxy, no dask
        source = getattr(img, "_source_header", None)
        if (
            source is not None
            and "scl_slope" in source
            and "scl_slope" in hdr
            and _same_scaling(source, layout)
        ):
            hdr["scl_slope"] = source["scl_slope"]  # the stored fields, bit for bit
            if "scl_inter" in hdr:
                hdr["scl_inter"] = source["scl_inter"]
            if single and type(source) is type(hdr):
                offset = source.get_data_offset()
        elif has_slope:
            hdr.set_slope_inter(layout.slope, layout.inter if has_inter else None)
    elif cf is not None and np.dtype(cf[0]).newbyteorder("=") == out_dtype.newbyteorder("="):
        data = img.to_dask().map_blocks(
            _encode,
            dtype=out_dtype,
            params=(out_dtype, float(cf[2]), float(cf[1]), None, None, True),
        )
        if has_slope:
            hdr.set_slope_inter(cf[1], cf[2] if has_inter else None)
    else:
        values = img.to_dask()
        slope = float(hdr["scl_slope"]) if has_slope else np.nan
        inter = float(hdr["scl_inter"]) if has_inter else np.nan
        needs = values.dtype != out_dtype and values.dtype.fields is None
        if needs and np.all(np.isnan((slope, inter))):
            sample = _sample(values.dtype, *_finite_range(values))
            writer = make_array_writer(sample, out_dtype, has_slope, has_inter)
            s, i = get_slope_inter(writer)
            hdr.set_slope_inter(s, i)
            mn, mx = writer._writing_range()
            params = (
                out_dtype,
                float(getattr(writer, "inter", 0.0)),
                float(getattr(writer, "slope", 1.0)),
                mn,
                mx,
                writer._needs_nan2zero(),
            )
        else:
            if has_slope and np.all(np.isnan((slope, inter))):
                hdr.set_slope_inter(1.0, 0.0 if has_inter else None)
            writer = ArrayWriter(np.zeros(0, values.dtype), out_dtype, check_scaling=False)
            params = (out_dtype, 0.0, 1.0, None, None, writer._needs_nan2zero())
        data = values.map_blocks(_encode, dtype=out_dtype, params=params)

    if single:
        minimum = hdr.single_vox_offset + hdr.extensions.get_sizeondisk()
        hdr.set_data_offset(max(minimum, offset or 0))
    elif isinstance(hdr, nifti1.Nifti1Header):
        hdr.set_data_offset(0)
    buf = io.BytesIO()
    hdr.write_to(buf)
    head = buf.getvalue()
    data_offset = hdr.get_data_offset()
    if single:
        head += b"\x00" * (data_offset - len(head))
    names = types_filenames(filename, klass.files_types, trailing_suffixes=(".gz",))
    return _Plan(
        klass,
        hdr,
        head,
        data,
        data_offset,
        os.path.abspath(names.get("header", names["image"])),
        os.path.abspath(names["image"]),
        gz,
        proxy if raw_ok else None,
        out_dtype,
        os.path.abspath(names["mat"]) if "mat" in names else None,
        _spm_mat(klass, out.affine),
    )


def _dask_data(plan: _Plan):
    """The plan's on-disk values as a dask array (raw plans build theirs on demand)."""
    if plan.data is None:
        data = plan.proxy.to_dask(raw=True)
        plan.data = data if data.dtype == plan.out_dtype else data.astype(plan.out_dtype)
    return plan.data


def _nbytes(plan: _Plan) -> int:
    shape = plan.proxy.shape if plan.proxy is not None else plan.data.shape
    return math.prod(shape) * np.dtype(plan.out_dtype).itemsize


def _same_scaling(source, layout) -> bool:
    slope, inter = source.get_slope_inter()
    return (1.0 if slope is None else slope) == layout.slope and (
        0.0 if inter is None else inter
    ) == layout.inter


def _encode(block, params):
    """Values to on-disk values: nibabel's ``array_to_file`` on one chunk."""
    out_dtype, inter, slope, mn, mx, nan2zero = params
    buf = io.BytesIO()
    array_to_file(
        np.asarray(block),
        buf,
        out_dtype,
        offset=None,
        intercept=inter,
        divslope=slope,
        mn=mn,
        mx=mx,
        order="F",
        nan2zero=nan2zero,
    )
    return np.ndarray(block.shape, dtype=out_dtype, buffer=buf.getbuffer(), order="F")


# -- writing ------------------------------------------------------------------------


def _slabs(data, slab: int = WRITE_SLAB, exact: bool = False):
    """``data`` chunked in contiguous slabs of at most ``slab`` bytes (exactly voxray's
    canonical slabs when ``exact``, as gzip members need)."""
    shape = data.shape
    chunk = expand_chunks(shape, default_chunks(shape, data.dtype.itemsize, slab))
    if tuple(data.chunks) == chunk or (not exact and _is_slab(data)):
        return data
    return data.rechunk(chunk)


def _is_slab(data) -> bool:
    shape = data.shape
    for a, sizes in enumerate(data.chunks):
        if len(sizes) > 1:
            if any(len(c) > 1 for c in data.chunks[:a]):
                return False
            if any(max(c) > 1 for c in data.chunks[a + 1 :]):
                return False
            itemsize = data.dtype.itemsize
            return max(sizes) * itemsize * math.prod(shape[:a]) <= 2 * WRITE_SLAB
    return data.nbytes <= 2 * WRITE_SLAB


def _blocks(data):
    """(delayed block, start index per axis), in file (Fortran) order."""
    starts = [np.concatenate(([0], np.cumsum(c)[:-1])).astype(int) for c in data.chunks]
    delayed = data.to_delayed()
    for idx in np.ndindex(*reversed(delayed.shape)):
        idx = tuple(reversed(idx))
        yield delayed[idx], tuple(int(starts[a][i]) for a, i in enumerate(idx))


@dataclass(frozen=True)
class RegionWriter:
    """Writes a slab of a Fortran-ordered array into a file region; opens the file itself."""

    path: str
    offset: int
    shape: tuple[int, ...]
    itemsize: int

    def write(self, block: np.ndarray, start: tuple[int, ...]) -> int:
        block = np.asarray(block)
        linear = 0
        stride = 1
        for n, s in zip(self.shape, start):
            linear += s * stride
            stride *= n
        flat = block.reshape(-1, order="F")
        mv = memoryview(np.ascontiguousarray(flat)).cast("B")
        fd = os.open(self.path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            pos = self.offset + linear * self.itemsize
            done = 0
            while done < mv.nbytes:
                done += os.pwrite(fd, mv[done:], pos + done)
        finally:
            os.close(fd)
        return mv.nbytes


def _write_block(block, writer: RegionWriter, start) -> int:
    return writer.write(block, start)


def _read_and_write(read, writer: RegionWriter, start) -> int:
    return writer.write(read(), start)


def _read_and_compress(read, level: int, member: int):
    return _compress_block(read(), level, member)


def _threads() -> int:
    from ..sources.base import io_workers

    return io_workers()


def _compress_block(block, level: int, member: int) -> list[tuple[bytes, int]]:
    from zlib_ng import zlib_ng

    flat = np.ascontiguousarray(np.asarray(block).reshape(-1, order="F"))
    mv = memoryview(flat).cast("B")
    out = []
    for p in range(0, mv.nbytes, member):
        piece = mv[p : p + member]
        c = zlib_ng.compressobj(level, zlib_ng.DEFLATED, 31)
        out.append((c.compress(piece) + c.flush(), piece.nbytes))
    return out


def _gzip_member(data: bytes, level: int) -> bytes:
    from zlib_ng import zlib_ng

    c = zlib_ng.compressobj(level, zlib_ng.DEFLATED, 31)
    return c.compress(data) + c.flush()


def _client():
    """The active dask.distributed client, if any (without importing distributed)."""
    if "distributed" not in sys.modules:
        return None
    try:
        from distributed import default_client

        return default_client()
    except ValueError:
        return None


def _window() -> int:
    client = _client()
    if client is not None:
        return max(4, 2 * sum(client.nthreads().values()))
    return max(4, 2 * (os.cpu_count() or 1))


def _local_jobs(plan: _Plan, slab: int = WRITE_SLAB):
    """(read job, start) per contiguous slab of a raw plan, in file order, without dask."""
    proxy = plan.proxy
    shape = proxy.shape
    chunk = default_chunks(shape, plan.out_dtype.itemsize, slab)
    grid = [range(0, n, c) if n else range(1) for n, c in zip(shape, chunk)]
    for start in _fortran_product(grid):
        key = tuple(slice(s, min(s + c, n)) for s, c, n in zip(start, chunk, shape))

        def read(key=key):
            block = proxy.sliced(key).get_unscaled()
            return block if block.dtype == plan.out_dtype else block.astype(plan.out_dtype)

        yield read, start


def _fortran_product(ranges):
    """itertools.product with the first axis varying fastest (file order)."""
    import itertools

    for idx in itertools.product(*reversed([list(r) for r in ranges])):
        yield tuple(reversed(idx))


def _pipeline(jobs, consume, threads: int) -> None:
    """Run jobs on a thread pool, at most ``2 * threads`` ahead, consuming results in order."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    jobs = iter(jobs)
    with ThreadPoolExecutor(threads, thread_name_prefix="voxray-write") as ex:
        pending = deque(ex.submit(job) for job in _take(jobs, 2 * threads))
        while pending:
            result = pending.popleft().result()
            for job in _take(jobs, 1):
                pending.append(ex.submit(job))
            consume(result)


def _take(it, n):
    for _ in range(n):
        try:
            yield next(it)
        except StopIteration:
            return


def _progress_bar(total: int, name: str, show: bool | None):
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return None
    from tqdm import tqdm

    from ..cli.index import terminal_width

    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"writing {os.path.basename(name)}",
        leave=False,
        ncols=terminal_width(),
    )


def _run(tasks, on_result, window: int) -> None:
    import dask

    for i in range(0, len(tasks), window):
        for result in dask.compute(*tasks[i : i + window]):
            on_result(result)


def _write_data(plan: _Plan, target: AtomicFile, level: int, progress) -> None:
    nbytes = _nbytes(plan)
    local = plan.proxy is not None and _client() is None
    bar = _progress_bar(nbytes, plan.image_path, progress)
    shape = tuple(plan.proxy.shape if plan.proxy is not None else plan.data.shape)
    try:
        if not plan.gzip:
            writer = RegionWriter(target.path, plan.offset, shape, plan.out_dtype.itemsize)
            if local:
                jobs = [
                    functools.partial(_read_and_write, read, writer, start)
                    for read, start in _local_jobs(plan)
                ]
                _pipeline(jobs, lambda n: bar and bar.update(n), _threads())
            else:
                import dask

                data = _slabs(_dask_data(plan))
                tasks = [
                    dask.delayed(_write_block, pure=False)(b, writer, s) for b, s in _blocks(data)
                ]
                _run(tasks, lambda n: bar and bar.update(n), _window())
            return
        member = max(MEMBER, math.ceil(nbytes / (MAX_TRAILER_MEMBERS - 8)))
        comp_sizes, raw_sizes = [], []

        def write_member(comp: bytes, raw: int) -> None:
            target.write(comp)
            comp_sizes.append(len(comp))
            raw_sizes.append(raw)

        if plan.image_path == plan.header_path:
            write_member(_gzip_member(plan.header_bytes, level), len(plan.header_bytes))
        elif plan.offset:
            write_member(_gzip_member(b"\x00" * plan.offset, level), plan.offset)

        def on_result(members):
            for comp, raw in members:
                write_member(comp, raw)
                if bar:
                    bar.update(raw)

        # One member per canonical slab: the bytes do not depend on the input's chunks
        # or on the scheduler.
        if local:
            jobs = [
                functools.partial(_read_and_compress, read, level, member)
                for read, _ in _local_jobs(plan, member)
            ]
            _pipeline(jobs, on_result, _threads())
        else:
            import dask

            data = _slabs(_dask_data(plan), member, exact=True)
            tasks = [
                dask.delayed(_compress_block, pure=False)(b, level, member)
                for b, _ in _blocks(data)
            ]
            _run(tasks, on_result, _window())
        target.write(trailer_member(comp_sizes, raw_sizes))
    finally:
        if bar:
            bar.close()


def save(
    img,
    filename,
    *,
    dtype=None,
    compresslevel: int = DEFAULT_COMPRESSLEVEL,
    progress: bool | None = None,
) -> None:
    """Write an image (voxray Image, DataArray or nibabel image) to NIfTI, out of core.

    Parameters
    ----------
    img : Image, xarray.DataArray or nibabel image
    filename : str or os.PathLike
        ``.nii``, ``.nii.gz``, ``.hdr``/``.img`` (either name, optionally ``.gz``).
    dtype : dtype-like, optional
        On-disk data type (default: the header's, as nibabel).
    compresslevel : int
        gzip level for ``.gz`` outputs (zlib-ng; default 3).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Examples
    --------
    >>> import tempfile, numpy as np, voxray as vx
    >>> out = tempfile.mkdtemp() + "/ones.nii.gz"
    >>> vx.save(vx.Image(np.ones((4, 5, 6), np.int16), np.eye(4)), out)
    >>> vx.load(out).dataobj[1, 2, 3]
    np.int16(1)
    """
    filename = os.fspath(filename)
    img, cf = _as_image(img)
    plan = _plan(img, filename, dtype, cf)
    targets = {plan.header_path, plan.image_path} | ({plan.mat_path} if plan.mat_bytes else set())
    _refuse_overwriting_sources(img, targets)
    data_end = plan.offset + _nbytes(plan) if plan.image_path == plan.header_path else None
    if plan.image_path == plan.header_path:
        with AtomicFile(plan.image_path, None if plan.gzip else data_end) as f:
            if not plan.gzip:
                f.write(plan.header_bytes)
            _write_data(plan, f, compresslevel, progress)
        return
    # A pair: both files complete before either is in place; the old header goes first,
    # so no moment shows an old header over new data.
    image = AtomicFile(plan.image_path, None if plan.gzip else plan.offset + _nbytes(plan))
    header = mat = None
    try:
        _write_data(plan, image, compresslevel, progress)
        header = AtomicFile(plan.header_path)
        header.write(
            _gzip_member(plan.header_bytes, compresslevel) if plan.gzip else plan.header_bytes
        )
        if plan.mat_bytes:
            mat = AtomicFile(plan.mat_path)
            mat.write(_gzip_member(plan.mat_bytes, compresslevel) if plan.gzip else plan.mat_bytes)
            mat.sync()
        image.sync()
        header.sync()
        if os.path.exists(plan.header_path):
            os.unlink(plan.header_path)
        image.commit()
        if mat is not None:
            mat.commit()
        header.commit()
    except BaseException:
        for f in (image, header, mat):
            if f is not None:
                f.abort()
        raise
