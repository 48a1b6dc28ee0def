"""Resampling, lazily: nibabel's ``resample_from_to``, ``resample_to_output``,
``conform`` and nilearn's ``resample_img``, ``resample_to_img``.

Same signatures and the same answers as nibabel 5.4 and nilearn 0.14.1 (which both call
scipy's ``affine_transform``), but each returns a lazy voxray image (a DataArray for a
DataArray input) whose graph is chunked in output space: each output block reads only
the input region its voxels map into (see :mod:`voxray.processing.resample_plan`).
Nearest and linear interpolation equal the oracles to float rounding; spline orders > 1
prefilter each region with a halo (``halo=``, default from the spline's pole for a
relative tolerance of :data:`~voxray.processing.resample_plan.SPLINE_TOL`), measured
within 1e-11 of the whole-image answer relative to the largest reference value.

Extra keyword-only arguments on every function: ``chunks`` (the output's spatial chunks;
default one block up to 64 MiB of float64, tiles beyond) and ``halo``. nilearn's
``copy`` and ``order`` (memory layout) are accepted and ignored: the output is always a
new lazy array. Differences from nilearn, all data-dependent choices a lazy graph cannot
make before it runs: non-finite inputs are not extrapolated (NaN spreads as scipy
spreads it); int64 results are not downcast to int32; no sform warning; with
``force_resample=False`` an integer shift is a plain shift (no ``crop_img`` tolerance).
``clip=True`` (``resample_img``'s default) needs the input's min and max: one streamed
pass over the input when ``resample_img`` is called, for spline orders above 1 or a
non-zero ``fill_value`` only (nearest and linear values cannot leave the range).

>>> import numpy as np, voxray as vx
>>> img = vx.Image(np.arange(64.0).reshape(4, 4, 4), np.eye(4))
>>> out = resample_img(img, target_affine=np.eye(4) * 2, interpolation="nearest")
>>> out.shape, float(out.get_fdata()[1, 1, 1])
((3, 3, 3), 42.0)
"""

from __future__ import annotations

import numpy as np

from ..errors import BoundingBoxError, InputError
from .inputs import as_image, new_image, out_class_for, output
from .resample_plan import (
    check_affine,
    check_interpolation,
    check_mode,
    check_number,
    check_order,
    check_shape,
    clip_block,
    get_bounds,
    inverse,
    nanmin_max,
    nilearn_image,
    resample_dask,
)

__all__ = [
    "BoundingBoxError",
    "conform",
    "resample_from_to",
    "resample_img",
    "resample_to_img",
    "resample_to_output",
]


def resample_from_to(
    from_img,
    to_vox_map,
    order: int = 3,
    mode: str = "constant",
    cval: float = 0.0,
    out_class=None,
    *,
    chunks=None,
    halo: int | None = None,
):
    """Resample ``from_img`` onto the voxel grid ``to_vox_map`` (nibabel's
    ``nibabel.processing.resample_from_to``), lazily.

    Parameters
    ----------
    from_img : image, path or DataArray
        3-D or more; axes after the third are resampled volume by volume.
    to_vox_map : image or (shape, affine)
        The output grid; a shape longer than 3 must repeat ``from_img``'s extra axes.
    order : int, default 3
        Spline order 0 to 5.
    mode : str, default "constant"
        scipy's boundary mode.
    cval : float, default 0.0
        The value outside the input in ``"constant"`` mode.
    out_class : class or None
        The output's class (a voxray or nibabel class); None is ``from_img``'s.
    chunks : optional, keyword-only
        The output's spatial chunks (default: one block up to 64 MiB, tiles beyond).
    halo : int, optional, keyword-only
        Prefilter halo for orders > 1 (default from the spline's pole).

    Returns
    -------
    Image or DataArray
        The input's dtype (as scipy gives), ``from_img``'s header, ``to_vox_map``'s affine.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> img = vx.Image(np.arange(8.0).reshape(2, 2, 2), np.eye(4))
    >>> out = resample_from_to(img, ((3, 2, 2), np.eye(4)), order=1)
    >>> out.get_fdata()[:, 0, 0].tolist()
    [0.0, 4.0, 0.0]
    """
    im = as_image(from_img, "from_img")
    order, mode, cval = check_order(order), check_mode(mode), check_number(cval, "cval")
    if im.ndim < 3:
        raise InputError(f"from_img: must be at least 3-D, got shape {im.shape!r}")
    if hasattr(to_vox_map, "shape") and hasattr(to_vox_map, "affine"):
        to_shape, to_affine = to_vox_map.shape, to_vox_map.affine
    else:
        try:
            to_shape, to_affine = to_vox_map
        except (TypeError, ValueError):
            raise InputError(
                f"to_vox_map: expected an image or (shape, affine), got {to_vox_map!r}"
            ) from None
    to_shape = check_shape(to_shape, "to_vox_map shape")
    to_affine = check_affine(to_affine, "to_vox_map affine")
    if len(to_shape) < 3:
        to_shape = to_shape + (1,) * (3 - len(to_shape))
    if len(to_shape) > 3 and to_shape[3:] != im.shape[3:]:
        raise InputError(
            f"to_vox_map: shape {to_shape!r} must end with from_img's non-spatial axes "
            f"{im.shape[3:]!r}"
        )
    klass = out_class_for(out_class, im)
    to_vox2from_vox = inverse(im.affine, "from_img").dot(to_affine)
    matrix, offset = to_vox2from_vox[:3, :3], to_vox2from_vox[:3, 3]
    arr = im.to_dask()
    # scipy's output dtype is the input dtype's name: native byte order
    data = resample_dask(
        arr,
        matrix,
        offset,
        to_shape[:3],
        order,
        mode,
        cval,
        np.dtype(arr.dtype.name),
        chunks,
        halo,
    )
    try:
        out = klass(data, to_affine, im.header)
    except InputError:
        raise
    except Exception as e:
        raise InputError(
            f"to_vox_map: {klass.__name__} cannot hold the affine {to_affine.tolist()!r}: {e}"
        ) from None
    return output(out, from_img)


def resample_to_output(
    in_img,
    voxel_sizes=None,
    order: int = 3,
    mode: str = "constant",
    cval: float = 0.0,
    out_class=None,
    *,
    chunks=None,
    halo: int | None = None,
):
    """Resample ``in_img`` onto world-aligned voxel axes (nibabel's
    ``nibabel.processing.resample_to_output``), lazily.

    Parameters
    ----------
    in_img : image, path or DataArray
    voxel_sizes : None, float or sequence
        The output's voxel sizes (None: 1 mm, an identity affine).
    order, mode, cval, out_class, chunks, halo
        As :func:`resample_from_to`.

    Returns
    -------
    Image or DataArray

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> img = vx.Image(np.ones((2, 2, 2)), np.diag([-2.0, 2, 2, 1]))
    >>> out = resample_to_output(img, voxel_sizes=2, order=0)
    >>> out.shape, out.affine[0, 0]
    ((2, 2, 2), np.float64(2.0))
    """
    from nibabel.processing import vox2out_vox

    im = as_image(in_img, "in_img")
    n_dim = im.ndim
    if voxel_sizes is not None:
        try:
            voxel_sizes = np.asarray(voxel_sizes, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(f"voxel_sizes: expected numbers, got {voxel_sizes!r}") from None
        if voxel_sizes.ndim == 0:
            voxel_sizes = np.repeat(voxel_sizes, n_dim)
        if not np.all(np.isfinite(voxel_sizes)) or np.any(voxel_sizes <= 0):
            raise InputError(f"voxel_sizes: expected positive sizes, got {voxel_sizes!r}")
    if n_dim < 3:
        new_shape = im.shape + (1,) * (3 - n_dim)
        im = new_image(im.to_dask().reshape(new_shape), im.affine, like=im)
        if voxel_sizes is not None and len(voxel_sizes) == n_dim:
            voxel_sizes = tuple(voxel_sizes) + (1,) * (3 - n_dim)
    try:
        out_vox_map = vox2out_vox((im.shape, im.affine), voxel_sizes)
    except (ValueError, TypeError) as e:
        raise InputError(f"voxel_sizes: {voxel_sizes!r} do not fit in_img: {e}") from None
    out_shape = tuple(out_vox_map[0])
    if len(out_shape) > 3:
        out_shape = out_shape[:3] + tuple(im.shape[3:])
    out = resample_from_to(
        im, (out_shape, out_vox_map[1]), order, mode, cval, out_class, chunks=chunks, halo=halo
    )
    return output(out, in_img)


def conform(
    from_img,
    out_shape=(256, 256, 256),
    voxel_size=(1.0, 1.0, 1.0),
    order: int = 3,
    mode: str = "constant",
    cval: float = 0.0,
    orientation: str = "RAS",
    out_class=None,
    *,
    chunks=None,
    halo: int | None = None,
):
    """Resample a 3-D image to ``out_shape`` voxels of ``voxel_size`` mm in
    ``orientation`` (nibabel's ``nibabel.processing.conform``), lazily.

    Parameters
    ----------
    from_img : image, path or DataArray
        3-D.
    out_shape : 3 ints, default (256, 256, 256)
    voxel_size : 3 floats, default (1.0, 1.0, 1.0)
    order, mode, cval, out_class, chunks, halo
        As :func:`resample_from_to`.
    orientation : str, default "RAS"
        The output's axis codes.

    Returns
    -------
    Image or DataArray

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> img = vx.Image(np.ones((4, 4, 4)), np.diag([-1.0, 1, 1, 1]))
    >>> out = conform(img, out_shape=(3, 3, 3), order=1)
    >>> import nibabel as nib
    >>> out.shape, nib.aff2axcodes(out.affine)
    ((3, 3, 3), ('R', 'A', 'S'))
    """
    from nibabel.affines import rescale_affine
    from nibabel.orientations import axcodes2ornt, inv_ornt_aff, io_orientation, ornt_transform

    im = as_image(from_img, "from_img")
    if im.ndim != 3:
        raise InputError(f"from_img: only 3-D images are supported, got shape {im.shape!r}")
    out_shape = check_shape(out_shape, "out_shape")
    if len(out_shape) != 3:
        raise InputError(f"out_shape: must have 3 values, got {out_shape!r}")
    try:
        voxel_size = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError):
        raise InputError(f"voxel_size: expected 3 numbers, got {voxel_size!r}") from None
    if len(voxel_size) != 3:
        raise InputError(f"voxel_size: must have 3 values, got {voxel_size!r}")
    try:
        end_ornt = axcodes2ornt(orientation)
        transform = ornt_transform(io_orientation(im.affine), end_ornt)
    except (ValueError, TypeError, KeyError) as e:
        raise InputError(f"orientation: cannot orient to {orientation!r}: {e}") from None
    shape = np.array(im.shape)
    new_aff = im.affine.dot(inv_ornt_aff(transform, im.shape))
    new_shape = tuple(int(n) for n in shape[np.argsort(transform[:, 0])])
    out_aff = rescale_affine(new_aff, new_shape, voxel_size, out_shape)
    out = resample_from_to(
        im, (out_shape, out_aff), order, mode, cval, out_class, chunks=chunks, halo=halo
    )
    return output(out, from_img)


def resample_img(
    img,
    target_affine=None,
    target_shape=None,
    interpolation: str = "continuous",
    copy: bool = True,
    order: str = "F",
    clip: bool = True,
    fill_value: float = 0.0,
    force_resample: bool = True,
    copy_header: bool = True,
    *,
    chunks=None,
    halo: int | None = None,
):
    """Resample an image onto ``target_affine``/``target_shape`` (nilearn's
    ``nilearn.image.resample_img``), lazily.

    Parameters
    ----------
    img : image, path or DataArray
        3-D or 4-D (resampled volume by volume).
    target_affine : (4, 4) or (3, 3) array, optional
        A 3x3 affine gets the offset and shape of the data's bounding box (+1 voxel).
    target_shape : 3 ints, optional
        Needs a 4x4 ``target_affine``; without one the shape holds the bounding box.
    interpolation : {"continuous", "linear", "nearest"}
        Spline order 3, 1 or 0.
    copy, order
        Accepted and ignored (the output is always a new lazy array).
    clip : bool, default True
        Clip into ``[min(data, 0), max(data, 0)]`` (a whole-input reduction in the graph).
    fill_value : float, default 0.0
        The value outside the input.
    force_resample : bool, default True
        False lets an integer shift be a plain shift.
    copy_header : bool, default True
        Keep ``img``'s header.
    chunks, halo : keyword-only
        As :func:`resample_from_to`.

    Returns
    -------
    Image or DataArray
        Integer data become float under ``"continuous"``; other dtypes are kept.

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> img = vx.Image(np.zeros((4, 4, 4)), np.eye(4))
    >>> resample_img(img, target_affine=np.eye(4) * 2).shape
    (3, 3, 3)
    """
    im = as_image(img, "img")
    interpolation_order = check_interpolation(interpolation)
    fill_value = check_number(fill_value, "fill_value")
    if target_shape is not None:
        target_shape = check_shape(target_shape, "target_shape")
        if len(target_shape) != 3:
            raise InputError(
                f"target_shape: the shape of the 3-D grid, of length 3, got {target_shape!r}"
            )
        if target_affine is None:
            raise InputError("target_shape: given without target_affine")
        if np.shape(target_affine) == (3, 3):
            raise InputError(
                "target_affine: a (3, 3) affine has no anchor for target_shape "
                f"{target_shape!r}; give a (4, 4) one"
            )
    if im.ndim not in (3, 4):
        raise InputError(f"img: expected a 3-D or 4-D image, got shape {im.shape!r}")
    arr = im.to_dask()
    if target_affine is None and target_shape is None:
        return output(nilearn_image(im, arr, im.affine, copy_header), img)
    target_affine = check_affine(target_affine, "target_affine", ((4, 4), (3, 3)))
    affine = im.affine
    same_grid = target_affine.shape == affine.shape and np.allclose(target_affine, affine)
    if same_grid and target_shape is not None and tuple(target_shape) == im.shape[:3]:
        return output(nilearn_image(im, arr, affine, copy_header), img)
    if target_affine.shape == (3, 3):
        missing_offset = True
        tmp = np.eye(4)
        tmp[:3, :3] = target_affine
        target_affine = tmp
    else:
        missing_offset = False
        target_affine = target_affine.copy()
    bounds = get_bounds(im.shape[:3], inverse(target_affine, "target_affine").dot(affine))
    (xmin, xmax), (ymin, ymax), (zmin, zmax) = bounds
    if missing_offset:
        target_affine[:3, 3] = target_affine[:3, :3].dot([xmin, ymin, zmin])
        xmax, ymax, zmax = xmax - xmin, ymax - ymin, zmax - zmin
    if target_shape is None:
        target_shape = (int(np.ceil(xmax)) + 1, int(np.ceil(ymax)) + 1, int(np.ceil(zmax)) + 1)
    if xmax < 0 or ymax < 0 or zmax < 0:
        raise BoundingBoxError(
            f"target_affine: the field of view of {np.round(target_affine, 4).tolist()!r} "
            f"does not contain any of the data of {im.shape!r}"
        )
    if np.all(target_affine == affine):
        transform = np.eye(4)
    else:
        from scipy import linalg

        transform = np.dot(linalg.inv(affine), target_affine)
    A, b = transform[:3, :3], transform[:3, 3]
    dtype = arr.dtype
    if interpolation == "continuous" and dtype.kind == "i":
        name = dtype.name.replace("int", "float")
        dtype = np.dtype("float32" if name in ("float8", "float16") else name)
    cval = fill_value
    if np.all(np.eye(3) == A) and all(bt == np.round(bt) for bt in b) and not force_resample:
        interpolation_order, cval = 0, 0.0
    if np.all(np.diag(np.diag(A)) == A):
        A = np.diag(A)
    if A.ndim == 1 and not dtype.isnative:
        dtype = dtype.newbyteorder("=")
    data = resample_dask(
        arr, A, b, target_shape, interpolation_order, "constant", cval, dtype, chunks, halo
    )
    # nearest and linear values lie between the input's min and max (and cval 0 inside
    # nilearn's [min(lo, 0), max(hi, 0)]): clipping them changes nothing but, at most,
    # one rounding of a weighted mean; skip the extra pass over the input
    if clip and not (interpolation_order <= 1 and cval == 0):
        # computed here, in one streamed pass: left in the graph, a writer that computes
        # the output window by window would recompute the reduction for every window
        import dask

        lo, hi = dask.compute(*nanmin_max(arr))
        data = data.map_blocks(clip_block, lo, hi, dtype=data.dtype, meta=data._meta)
    return output(nilearn_image(im, data, target_affine, copy_header), img)


def resample_to_img(
    source_img,
    target_img,
    interpolation: str = "continuous",
    copy: bool = True,
    order: str = "F",
    clip: bool = False,
    fill_value: float = 0.0,
    force_resample: bool = True,
    copy_header: bool = True,
    *,
    chunks=None,
    halo: int | None = None,
):
    """Resample ``source_img`` onto ``target_img``'s grid (nilearn's
    ``nilearn.image.resample_to_img``), lazily; ``target_img`` is never read.

    Parameters
    ----------
    source_img : image, path or DataArray
    target_img : image, path or DataArray
        Only its shape (first three axes) and affine are used.
    interpolation, copy, order, clip, fill_value, force_resample, copy_header, chunks, halo
        As :func:`resample_img` (``clip`` defaults to False here, as in nilearn).

    Returns
    -------
    Image or DataArray

    Examples
    --------
    >>> import numpy as np, voxray as vx
    >>> src = vx.Image(np.zeros((4, 4, 4)), np.eye(4))
    >>> tgt = vx.Image(np.zeros((2, 2, 2)), np.eye(4) * 2)
    >>> resample_to_img(src, tgt).shape
    (2, 2, 2)
    """
    target = as_image(target_img, "target_img")
    return resample_img(
        source_img,
        target_affine=target.affine,
        target_shape=target.shape[:3],
        interpolation=interpolation,
        copy=copy,
        order=order,
        clip=clip,
        fill_value=fill_value,
        force_resample=force_resample,
        copy_header=copy_header,
        chunks=chunks,
        halo=halo,
    )
