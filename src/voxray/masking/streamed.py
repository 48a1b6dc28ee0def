"""``clean`` in two streamed passes over time, for the steps that are projections.

Detrending, confound removal and ``zscore_sample`` standardisation (``nilearn.signal.clean``
without filters, runs, scrubbing or ``psc``) all make, per column ``x``,

    u = x - B c - m,    c = B^T x,    m = mean(x - B c) (only when not detrending),
    z = u / std(u, ddof=1)  (std below float64's eps taken as 1, as nilearn does),

with ``B`` an orthonormal ``(t, p)`` basis: the constant and the centred linear trend
when detrending, then the QR basis of the confounds (detrended, then standardised or
scaled, as nilearn prepares them; detrended confounds are orthogonal to the trend, so
nilearn's two projections are one). The first pass sums ``x``, ``x**2`` and ``B^T x`` over
the ``t``-chunks (``p + 2`` numbers per column and chunk); the second subtracts and divides
chunk by chunk. ``sum(u**2) = sum(x**2) - |c|**2 - t m**2`` loses
``eps * sum(x**2) / sum(u**2)`` relative: 1e-12 for fMRI's mean/noise ratio of 100; where
that loses more than 8 digits (a residual tiny beside the values) one more streamed pass
sums ``u**2`` exactly.

Memory: one ``t``-chunk per thread and ``(p + 2) x n`` statistics; the input is read twice.
The first pass runs when ``streamed_clean`` is called (kept in the graph, the scheduler
would hold every chunk until the sums were complete); the result is lazy.

>>> import numpy as np, dask.array as da
>>> x = np.random.default_rng(0).normal(5, 2, size=(40, 6))
>>> z = streamed_clean(da.from_array(x, chunks=(7, 6)), True, "zscore_sample", None, True,
...                    False, np.float64).compute()
>>> bool(np.allclose(z.std(0, ddof=1), 1) and np.allclose(z.mean(0), 0))
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["detrend_basis", "prepare_confounds", "streamed_clean"]

EPS = np.finfo(np.float64).eps


def detrend_basis(t: int) -> np.ndarray:
    """The constant and the centred linear trend, orthonormal, as nilearn's ``_detrend``
    removes them."""
    one = np.full(t, 1 / np.sqrt(t))
    r = np.arange(t, dtype=np.float64)
    r -= r.mean()
    norm = np.sqrt((r**2).sum())
    if norm < EPS:  # t == 1: nothing but the mean
        return one[:, None]
    return np.column_stack([one, r / norm])


def prepare_confounds(confounds: np.ndarray, detrend: bool, standardize_confounds: bool):
    """nilearn's confound preparation (detrend, zscore_sample or max-abs scaling, pivoted
    QR, columns with ``|R_ii| > 100 eps``): their orthonormal basis ``Q``."""
    from scipy import linalg

    c = np.asarray(confounds, dtype=np.float64)
    if c.ndim == 1:
        c = c[:, None]
    t = c.shape[0]
    if detrend and t > 1:
        c = c - c.mean(axis=0)
        b = detrend_basis(t)[:, 1:]
        c = c - b @ (b.T @ c)
    if standardize_confounds:
        if t > 1:
            if not detrend:
                c = c - c.mean(axis=0)
            std = c.std(axis=0, ddof=1)
            std[std < EPS] = 1.0
            c = c / std
    else:
        top = np.max(np.abs(c), axis=0)
        top[top == 0] = 1
        c = c / top
    q, r, _ = linalg.qr(c, mode="economic", pivoting=True)
    return q[:, np.abs(np.diag(r)) > EPS * 100.0]


def _finite(x: np.ndarray, ensure_finite: bool) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if ensure_finite:
        x = np.where(np.isfinite(x), x, 0.0)
    return x


def stats_block(x, b, ensure_finite):
    """Per column of one t-chunk: sum x, sum x**2, B^T x, stacked (1, p + 2, n)."""
    x = _finite(x, ensure_finite)
    b = np.asarray(b)
    out = np.concatenate([x.sum(0)[None], (x * x).sum(0)[None], b.T @ x], axis=0)
    return out[None]


def apply_block(x, b, coef, mean, scale, ensure_finite, dtype):
    """One t-chunk cleaned: (x - B c - m) / s."""
    x = _finite(x, ensure_finite)
    u = x - np.asarray(b) @ coef - mean
    if scale is not None:
        u /= scale
    return u.astype(dtype, copy=False)


def _coef(stats):
    return stats[2:]


def _mean(stats, bmean, t, subtract_mean):
    if not subtract_mean:
        return np.zeros(stats.shape[1])
    return stats[0] / t - bmean @ stats[2:]


def resid_block(x, b, coef, mean, ensure_finite):
    """sum over one t-chunk of (x - B c - m) ** 2, per column, as (1, n)."""
    u = apply_block(x, b, coef, mean, None, ensure_finite, np.float64)
    return (u * u).sum(0)[None]


def _sum_of_squares(stats, bmean, t, subtract_mean):
    """sum (x - B c - m) ** 2 from the sums, and whether cancellation made it unreliable
    (more than 8 of float64's 16 digits lost)."""
    m = _mean(stats, bmean, t, subtract_mean)
    coef = stats[2:]
    ss = stats[1] - (coef * coef).sum(0) - t * m * m
    return ss, ss <= stats[1] * 1e-8


def _scale(ss, t):
    std = np.sqrt(np.maximum(ss, 0.0) / max(t - 1, 1))
    std[std < EPS] = 1.0
    return std


def streamed_clean(
    x, detrend, standardize, confounds, standardize_confounds, ensure_finite, dtype
):
    """nilearn's ``clean`` (detrend / confounds / ``zscore_sample`` or None) of a dask
    ``(t, n)`` array in two streamed passes (see the module docstring)."""
    import dask.array as da

    t = x.shape[0]
    parts = []
    if detrend and t > 1:
        parts.append(detrend_basis(t))
    if confounds is not None:
        parts.append(prepare_confounds(confounds, detrend, standardize_confounds))
    b = np.column_stack(parts) if parts else np.zeros((t, 0))
    if detrend and t == 1:  # nilearn skips detrending a single sample
        detrend = False
    standardize = standardize if t > 1 else None
    subtract_mean = bool(standardize) and not detrend
    p = b.shape[1]
    bd = da.from_array(b, chunks=(x.chunks[0], (p,)) if p else (x.chunks[0], (0,)))
    stats = da.blockwise(
        stats_block,
        "rsv",
        x,
        "rv",
        bd,
        "rp",
        ensure_finite,
        None,
        new_axes={"s": p + 2},
        adjust_chunks={"r": 1},
        concatenate=True,
        dtype=np.float64,
        meta=np.empty((0, 0, 0)),
    ).sum(axis=0)
    # The statistics are computed here, in one streamed pass: kept lazy, the scheduler
    # would hold every chunk of the first pass until the sums were complete (the whole
    # matrix), and dask cannot yet fuse a cloned input graph to re-read it instead.
    stats = stats.compute()
    bmean = b.mean(axis=0)
    cols = x.chunks[1]
    coef = da.from_array(_coef(stats), chunks=((p,), cols))
    mean = da.from_array(_mean(stats, bmean, t, subtract_mean), chunks=(cols,))
    scale = None
    if standardize:
        ss, unsure = _sum_of_squares(stats, bmean, t, subtract_mean)
        if unsure.any():  # a residual tiny beside the values: sum it exactly, one more pass
            ss = (
                da.blockwise(
                    resid_block,
                    "rv",
                    x,
                    "rv",
                    bd,
                    "rp",
                    coef,
                    "pv",
                    mean,
                    "v",
                    ensure_finite,
                    None,
                    adjust_chunks={"r": 1},
                    concatenate=True,
                    dtype=np.float64,
                    meta=np.empty((0, 0)),
                )
                .sum(axis=0)
                .compute()
            )
        scale = da.from_array(_scale(ss, t), chunks=(cols,))
    args = [x, "rv", bd, "rp", coef, "pv", mean, "v"]
    args += [scale, "v"] if scale is not None else [None, None]
    return da.blockwise(
        apply_block,
        "rv",
        *args,
        ensure_finite,
        None,
        dtype,
        None,
        concatenate=True,
        dtype=dtype,
        meta=np.empty((0, 0), dtype=dtype),
    )
