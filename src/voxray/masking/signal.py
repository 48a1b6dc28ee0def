"""Signal cleaning out of core: ``clean`` with nilearn 0.14.1's signature and answers.

Every step of ``nilearn.signal.clean`` (detrending, butterworth / cosine filtering,
scrubbing, confound projection, standardization, runs) acts on each column (voxel)
separately once its whole time series is known; the confounds, the run labels and the
sample mask are small ``(t, k)`` arrays. So a dask ``(t, n)`` input is rechunked to
``(all t, column block)`` blocks and each block is cleaned by nilearn's own code: the
answers are nilearn's to float rounding (measured max error / max value < 1e-12).

Memory bound: one task holds ``t x block_columns`` float64 values a few times over
(nilearn's temporaries: ~5 copies). ``block_columns`` is chosen so that one block is
``COLUMN_BLOCK_BYTES`` (64 MiB), or given as ``voxray__block_columns=``. The rechunk
from ``t``-chunks to column blocks is an all-to-all exchange: with dask's in-memory
rechunk a ``t``-chunk of the input is split into column pieces that wait until the
column block they belong to has all its ``t`` pieces, so the peak can approach the whole
matrix when the input is chunked along ``t`` only. ``voxray__rechunk="zarr"`` instead
writes the input to a temporary Zarr
store chunked ``(input t-chunk, block columns)``
then reads column blocks from it: the peak is then one input chunk plus one column
block per worker thread, whatever the matrix size (the store costs one disk write and
one read of the matrix; the store, in the temporary directory, is removed at
interpreter exit, and must be on a file system the workers share).

Measured (600 x 131072 float64, 600 MiB, t-chunks of 50, 2 threads, butterworth band
pass + zscore, output reduced): peak RSS 1217 MB with dask's rechunk, 773 MB with the
Zarr store (most of it the two 64 MiB blocks' nilearn temporaries), the Zarr path ~2x
slower (one extra write and read). Filtering uses ``"dask"``: as built now the
Zarr path's graph recomputes each input chunk once per column block (dask's store
optimisation duplicates the source tasks), so it re-reads the image; the dask path
reads each input chunk once.

Without filters, runs, scrubbing or ``psc`` (detrending, confound removal and
``zscore_sample``, the common masker settings), no rechunk is needed at all:
:mod:`voxray.masking.streamed` cleans in two streamed passes over the ``t``-chunks,
holding one chunk per thread (the default, ``voxray__rechunk="auto"``).

The one cross-column quantity, ``psc``'s filtered-mean check, is computed at call time
in one extra streamed pass (documented exception to laziness).

>>> import numpy as np, dask.array as da
>>> from voxray.masking.signal import clean
>>> x = da.from_array(np.random.default_rng(0).normal(size=(30, 8)), chunks=(10, 8))
>>> clean(x, t_r=2.0, high_pass=0.01).shape
(30, 8)
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import warnings

import numpy as np

from ..errors import InputError, MissingDependencyError

__all__ = ["clean", "COLUMN_BLOCK_BYTES"]

COLUMN_BLOCK_BYTES = 64 * 2**20


def _nilearn_signal():
    try:
        import nilearn.signal as ns
    except ImportError as e:  # pragma: no cover - nilearn is installed with the extras
        raise MissingDependencyError(
            "voxray.masking.clean checks its arguments with nilearn and runs nilearn's "
            f"per-column filters: pip install 'voxray[masking]' ({e})"
        ) from None
    return ns


def _clean_block(block: np.ndarray, kw: dict) -> np.ndarray:
    ns = _nilearn_signal()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ns.clean(np.asarray(block), **kw)


def _scrubbed(block: np.ndarray, kw: dict) -> np.ndarray:
    """The signals ``clean`` takes its ``original_mean_signals`` from."""
    ns = _nilearn_signal()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ftype, t_r_, _, hp = ns._check_filter_parameters(
            kw["filter"], kw["low_pass"], kw["high_pass"], kw["t_r"]
        )
        sig, _, conf, smask, _ = ns._sanitize_inputs(
            np.asarray(block),
            None,
            kw["confounds"],
            kw["sample_mask"],
            kw["ensure_finite"],
            None,
        )
        if ftype == "cosine":
            conf = ns._create_cosine_drift_terms(sig, conf, hp, t_r_)
        sig, _, _ = ns._handle_scrubbed_volumes(
            sig, conf, smask, ftype, kw["t_r"], kw["extrapolate"]
        )
    return sig


def _psc_stats(block: np.ndarray, kw: dict) -> np.ndarray:
    s = _clean_block(block, {**kw, "standardize": None})
    o = _scrubbed(block, kw)
    return np.stack([np.abs(s.mean(0)), np.abs(o.mean(0))])[None]


def _psc_block(block: np.ndarray, kw: dict, add_mean: bool) -> np.ndarray:
    ns = _nilearn_signal()
    s = _clean_block(block, {**kw, "standardize": None})
    if add_mean:
        s = s + _scrubbed(block, kw).mean(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ns.standardize_signal(s, standardize="psc", detrend=False)


def _proxy(t: int, dtype) -> np.ndarray:
    """A small (t, 2) series to run nilearn's argument checks on at call time."""
    tt = np.arange(t)[:, None]
    return (100.0 + np.cos(tt * np.array([0.7, 1.3])) + 0.01 * tt).astype(dtype)


def _to_column_blocks(x, cols: int, how: str):

    if how == "dask":
        return x.rechunk({0: -1, 1: cols})
    if how != "zarr":
        raise InputError(f"voxray__rechunk={how!r}: expected 'dask' or 'zarr'")
    return _zarr_rechunk(x, cols)


def _read_zarr(path: str, cols: slice, _done) -> np.ndarray:
    import zarr

    return np.asarray(zarr.open_array(path, mode="r")[:, cols])


def _zarr_rechunk(x, cols: int):
    """``x`` rechunked to (all t, cols) through a temporary Zarr store, lazily: the
    write is a graph node the column reads depend on."""
    import dask
    import dask.array as da
    import zarr

    tmp = tempfile.mkdtemp(prefix="voxray-clean-")
    path = os.path.join(tmp, "x.zarr")
    tchunk = max(x.chunks[0])
    z = zarr.create_array(
        path, shape=x.shape, chunks=(tchunk, min(cols, x.shape[1])), dtype=x.dtype
    )
    x = x.rechunk({0: tchunk, 1: -1}) if len(set(x.chunks[0][:-1])) > 1 else x
    done = da.store(x.rechunk({1: -1}), z, lock=False, compute=False, return_stored=False)
    pieces = []
    for start in range(0, x.shape[1], cols):
        sl = slice(start, min(start + cols, x.shape[1]))
        d = dask.delayed(_read_zarr, pure=True)(path, sl, done)
        pieces.append(da.from_delayed(d, (x.shape[0], sl.stop - sl.start), dtype=x.dtype))
    out = da.concatenate(pieces, axis=1)
    atexit.register(shutil.rmtree, tmp, True)
    return out


def clean(
    signals,
    runs=None,
    detrend: bool = True,
    standardize="zscore_sample",
    sample_mask=None,
    confounds=None,
    standardize_confounds: bool = True,
    filter="butterworth",
    low_pass=None,
    high_pass=None,
    t_r=2.5,
    ensure_finite: bool = False,
    extrapolate: bool = False,
    **kwargs,
):
    """Improve SNR on masked fMRI signals (nilearn 0.14.1's ``nilearn.signal.clean``).

    Same parameters, defaults and answers as nilearn; a dask ``(t, n)`` input gives a
    lazy dask array (numpy input gives numpy). See the module docstring for how memory
    is bounded.

    Parameters
    ----------
    signals : numpy or dask array, (t, n)
        Time series, one column per voxel.
    runs, detrend, standardize, sample_mask, confounds, standardize_confounds,
    filter, low_pass, high_pass, t_r, ensure_finite, extrapolate :
        As ``nilearn.signal.clean``.
    **kwargs
        ``butterworth__*`` as nilearn; ``voxray__block_columns`` (int) and
        ``voxray__rechunk`` tune the column blocks: "auto" (default) cleans without
        filters, runs, scrubbing or psc in two streamed passes over the t-chunks
        (:mod:`voxray.masking.streamed`) and everything else on column blocks by dask's
        rechunk; "dask" or "zarr" force the column blocks.

    Returns
    -------
    numpy or dask array (t', n), t' the kept samples.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(20, 3))
    >>> bool(np.allclose(clean(x, detrend=True, standardize="zscore_sample").std(0, ddof=1), 1))
    True
    """
    import dask.array as da

    ns = _nilearn_signal()
    block_columns = kwargs.pop("voxray__block_columns", None)
    how = kwargs.pop("voxray__rechunk", "auto")
    lazy = isinstance(signals, da.Array)
    if not lazy:
        signals = np.asarray(signals)
    if signals.ndim != 2:
        raise InputError(f"signals: a 2-D (t, n) array is needed, got shape {signals.shape!r}")
    t, n = signals.shape
    kw = dict(
        runs=runs,
        detrend=detrend,
        standardize=standardize,
        sample_mask=sample_mask,
        confounds=confounds,
        standardize_confounds=standardize_confounds,
        filter=filter,
        low_pass=low_pass,
        high_pass=high_pass,
        t_r=t_r,
        ensure_finite=ensure_finite,
        extrapolate=extrapolate,
        **kwargs,
    )
    try:
        if confounds is not None:
            kw["confounds"] = ns.sanitize_confounds(t, confounds)
        probe = ns.clean(_proxy(t, signals.dtype), **kw)
        if not lazy:
            return ns.clean(signals, **kw)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"clean: {type(e).__name__}: {e}") from None
    std = kw["standardize"]
    std = "zscore_sample" if std is True else (None if std is False else std)
    ftype = ns._check_filter_parameters(filter, low_pass, high_pass, t_r)[0]
    projections_only = runs is None and sample_mask is None and not ftype
    if projections_only and std in (None, "zscore_sample") and how in ("auto", "streamed"):
        from .streamed import streamed_clean

        return streamed_clean(
            signals,
            bool(detrend),
            std,
            kw["confounds"],
            standardize_confounds,
            ensure_finite,
            probe.dtype,
        )
    if how in ("auto", "streamed"):
        how = "dask"
    if std == "psc" and runs is not None:
        return _psc_runs(signals, kw, block_columns, how)
    cols = block_columns or max(1, int(COLUMN_BLOCK_BYTES // (8 * max(t, 1))))
    cols = int(min(cols, n)) or 1
    x = _to_column_blocks(signals, cols, how)
    out_t = probe.shape[0]
    if std == "psc":
        stats = da.map_blocks(
            _psc_stats, x, kw, dtype=np.float64, new_axis=[0], chunks=((1,), (2,), x.chunks[1])
        ).sum(axis=(0,))
        a, b = (float(v) for v in stats.sum(axis=1).compute())
        add_mean = bool((a / n) / (b / n) < 1e-1) if b else False
        return da.map_blocks(
            _psc_block, x, kw, add_mean, dtype=probe.dtype, chunks=((out_t,), x.chunks[1])
        )
    return da.map_blocks(_clean_block, x, kw, dtype=probe.dtype, chunks=((out_t,), x.chunks[1]))


def _psc_runs(signals, kw, block_columns, how):
    """nilearn's ``_process_runs`` for psc: each run cleaned alone (its own check)."""
    import dask.array as da

    runs = np.asarray(kw["runs"])
    if len(runs) != signals.shape[0]:
        raise InputError(
            f"runs: length {len(runs)} does not match the signals' length {signals.shape[0]}"
        )
    confounds = kw["confounds"]
    sample_mask = kw["sample_mask"]
    if sample_mask is not None and not isinstance(sample_mask, list | tuple):
        sample_mask = [sample_mask]
    parts = []
    for i, run in enumerate(np.unique(runs)):
        rows = np.flatnonzero(runs == run)
        parts.append(
            clean(
                signals[rows],
                detrend=kw["detrend"],
                standardize=kw["standardize"],
                confounds=None if confounds is None else confounds[rows],
                sample_mask=None if sample_mask is None else sample_mask[i],
                filter=kw["filter"],
                low_pass=kw["low_pass"],
                high_pass=kw["high_pass"],
                t_r=kw["t_r"],
                voxray__block_columns=block_columns,
                voxray__rechunk=how,
            )
        )
    return da.concatenate(parts, axis=0)
