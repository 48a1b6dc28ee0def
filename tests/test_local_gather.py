"""Local reads of many small ranges: exactly the selected values and bytes.

A strided row of a dense connectome is tens of thousands of 4-byte ranges; the local
source reads them with one ``preadv`` each, without per-read Python overhead beyond the
call (``Source.read_ranges`` takes a read plan's ranges as they are). These tests check
values against numpy indexing of the array written, the I/O counters, and that a file
shrunk after opening gives a clear error.

(Copying such ranges from a read-only map of the file was measured and dropped: warm, a
row took 4 ms instead of 130 ms, but in a fresh process page faults made it no faster,
and the kernel's fault-around mapped ~1.5 GB of page cache into the process for one
row of a 2 GB connectome: RSS that dask's memory monitor would count.)
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxray.errors import TruncatedFileError
from voxray.planning import assemble, normalize_index, plan_read
from voxray.reader import ArrayLayout, Reader
from voxray.sources import LocalFileSource, clear_cache, local_spec, open_source
from voxray.sources.local import PARALLEL_MIN, PIECE

#: 9,000 x 600 float32: a row is 600 reads of 4 bytes, 36,000 bytes apart (more than a
#: local request costs, so the planner reads each element rather than through).
SHAPE = (9000, 600)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    path = tmp_path_factory.mktemp("gather") / "m.bin"
    arr = np.random.default_rng(1).standard_normal(SHAPE).astype("<f4")
    path.write_bytes(b"\x00" * 96 + arr.tobytes(order="F"))
    return path, arr


def _read(spec, key):
    return Reader(spec, ArrayLayout(SHAPE, "<f4", 96))[key]


@pytest.mark.parametrize(
    "key",
    [
        (5, slice(None)),  # a row: evenly spaced 4-byte reads
        (slice(10, 13), slice(None)),  # a row block: evenly spaced 12-byte reads
        (slice(3, 9000, 7), slice(None)),  # strided within each column (even runs)
        (slice(None, None, -1), 17),  # a reversed column: one range
    ],
)
def test_values_and_counts(matrix, key):
    path, arr = matrix
    clear_cache()
    spec = local_spec(str(path))
    src = open_source(spec)
    src.stats.reset()  # finding the spec read the magic bytes
    got = _read(spec, key)
    np.testing.assert_array_equal(got, arr[key])
    sel = normalize_index(key, SHAPE)
    plan = plan_read(SHAPE, 4, sel, src.request_cost)
    assert src.stats.bytes_read == plan.nbytes  # exactly the planned bytes
    pieces = [-(-n // PIECE) if n >= PARALLEL_MIN else 1 for n in plan.ranges[:, 1].tolist()]
    assert src.stats.requests == sum(pieces)  # big ranges are split over the I/O pool


def test_uneven_tiny_ranges(matrix):
    """Ranges that are not evenly spaced (as two slow axes give)."""
    path, _ = matrix
    data = path.read_bytes()
    rng = np.random.default_rng(2)
    offsets = np.sort(rng.choice(len(data) // 8, 700, replace=False)) * 8
    n = 6
    ranges = np.stack([offsets, np.full_like(offsets, n), np.arange(len(offsets)) * n], axis=1)
    src = LocalFileSource(str(path))
    buf = np.empty(len(offsets) * n, np.uint8)
    src.read_ranges(ranges, buf)
    want = b"".join(data[o : o + n] for o in offsets.tolist())
    assert buf.tobytes() == want
    assert src.stats.requests == len(offsets) and src.stats.bytes_read == len(want)
    src.close()


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_any_selection_matches_the_reference(matrix, data):
    path, arr = matrix
    src = LocalFileSource(str(path))
    i0 = data.draw(st.integers(0, SHAPE[0] - 1))
    i1 = data.draw(st.integers(i0 + 1, SHAPE[0]))
    step = data.draw(st.integers(1, 5))
    key = (slice(i0, i1, step), slice(None))
    plan = plan_read(SHAPE, 4, normalize_index(key, SHAPE), src.request_cost)
    buf = np.empty(plan.nbytes, np.uint8)
    src.read_ranges(plan.ranges, buf, 96)
    np.testing.assert_array_equal(assemble(plan, buf, np.dtype("<f4")), arr[key])
    src.close()


def test_a_file_shrunk_under_the_map_is_a_clear_error(tmp_path):
    path = tmp_path / "shrinks.bin"
    arr = np.arange(SHAPE[0] * SHAPE[1], dtype="<f4").reshape(SHAPE, order="F")
    path.write_bytes(arr.tobytes(order="F"))
    src = LocalFileSource(str(path))
    sel = normalize_index((5, slice(None)), SHAPE)
    plan = plan_read(SHAPE, 4, sel, src.request_cost)
    buf = np.empty(plan.nbytes, np.uint8)
    src.read_ranges(plan.ranges, buf)
    assert np.array_equal(buf.view("<f4"), arr[5])
    os.truncate(path, path.stat().st_size // 2)  # another process shrinks it in place
    with pytest.raises(TruncatedFileError, match="ends at byte"):
        src.read_ranges(plan.ranges, buf)
    src.close()
