"""Checks shared by the per-format test suites."""

from __future__ import annotations

import numpy as np

__all__ = ["check_slicer"]


def check_slicer(img, whole: np.ndarray, key) -> None:
    """``img.slicer[key]`` (a spatial key the slicer takes) is a lazy image of ``img``'s
    class that shows ``whole[key]``, and its voxel 0 sits where ``img``'s voxel at the
    slices' starts sits in the world.

    >>> import numpy as np, voxray as vx
    >>> img = vx.Image(np.arange(24.0).reshape(2, 3, 4), np.diag([2.0, 2, 2, 1]))
    >>> check_slicer(img, np.asarray(img.dataobj), (slice(1, 2), slice(None, None, -1)))
    """
    s = img.slicer[key]
    want = whole[key]
    assert isinstance(s, type(img)), (type(s), type(img))
    assert s.in_memory == img.in_memory
    np.testing.assert_array_equal(np.asanyarray(s.dataobj), want)
    assert s.shape == want.shape
    keys = key if isinstance(key, tuple) else (key,)
    keys = (*keys, *(slice(None),) * (3 - len(keys)))
    first = np.array([k.indices(n)[0] for k, n in zip(keys[:3], img.shape)] + [1])
    np.testing.assert_allclose(s.affine @ [0, 0, 0, 1], img.affine @ first, atol=1e-9)
