"""Hypothesis strategies for basic numpy indices (tests only; needs hypothesis)."""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["basic_index", "shapes", "spatial_slices"]


def shapes(min_dims: int = 1, max_dims: int = 5, min_side: int = 1, max_side: int = 7):
    return st.lists(st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims).map(
        tuple
    )


@st.composite
def _axis_index(draw, n: int, allow_int: bool = True):
    kinds = ["full", "slice"] + (["int"] if allow_int and n > 0 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "int":
        return draw(st.integers(-n, n - 1))
    if kind == "full":
        return slice(None)
    bound = st.none() | st.integers(-n - 2, n + 2)
    step = st.none() | st.integers(-4, 4).filter(bool) | st.sampled_from([n, -n]).filter(bool)
    return slice(draw(bound), draw(bound), draw(step))


@st.composite
def basic_index(draw, shape, allow_newaxis: bool = True, allow_ellipsis: bool = True):
    """Any basic index of an array of ``shape``: ints, slices (any step), ``...``, ``None``."""
    items = [draw(_axis_index(n)) for n in shape]
    if allow_ellipsis and items and draw(st.booleans()):
        i = draw(st.integers(0, len(items)))
        j = draw(st.integers(i, len(items)))
        items[i:j] = [Ellipsis]
    elif items and draw(st.booleans()):
        items = items[: draw(st.integers(0, len(items)))]
    if allow_newaxis:
        for _ in range(draw(st.integers(0, 2))):
            items.insert(draw(st.integers(0, len(items))), None)
    if len(items) == 1 and draw(st.booleans()):
        return items[0]
    return tuple(items)


@st.composite
def spatial_slices(draw, shape):
    """An index valid for ``img.slicer``: slices on the spatial axes, anything after."""
    items = [draw(_axis_index(n, allow_int=False)) for n in shape[:3]]
    items += [draw(_axis_index(n)) for n in shape[3:]]
    return tuple(items)
