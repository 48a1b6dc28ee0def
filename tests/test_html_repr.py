"""The notebook HTML repr: its table checked against nibabel, its thumbnail decisions
checked on bytes actually read, and its look checked in a real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import sys
from html.parser import HTMLParser

import nibabel as nib
import numpy as np
import pytest

import voxray as vx
from voxray.plotting.html import MAX_THUMBNAIL_BYTES, dataarray_html, image_html, thumbnail_cost
from voxray.sources import clear_cache, flush_index_writes, open_source
from voxray.testing import write_nifti

AFFINE = np.array(
    [[-2.0, 0, 0, 40.25], [0, 2.5, 0, -60.125], [0, 0, 3.0, -30.0], [0, 0, 0, 1]]
)  # LAS, axis-aligned
HEADER_RGB = (0x1F, 0x4E, 0x79)  # the table's header row (html.CSS)


class _Repr(HTMLParser):
    """The table rows (label -> text), the affine cells, the thumbnail and the notes."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, str] = {}
        self.affine: list[list[str]] = []
        self.imgs: list[dict] = []
        self.notes: list[str] = []
        self.title = ""
        self.tags: list[str] = []
        self._stack: list[tuple[str, dict]] = []
        self._label = None
        self._text: list[str] = []
        self._note = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        classes = attrs.get("class", "").split()
        if tag == "img":
            self.imgs.append(attrs)
            return
        self._stack.append((tag, attrs))
        if "vx-affine" in classes:
            self.affine = []
        if tag == "tr" and self._in("vx-affine"):
            self.affine.append([])
        if "vx-note" in classes:
            self._note = []

    def handle_endtag(self, tag):
        if tag == "img":
            return
        while self._stack:
            t, attrs = self._stack.pop()
            if t == tag:
                break
        classes = attrs.get("class", "").split()
        if "vx-note" in classes and self._note is not None:
            self.notes.append("".join(self._note))
            self._note = None
        if tag == "th" and not self._in("vx-affine"):
            if self._in("thead"):
                self.title = "".join(self._text).strip()
            else:
                self._label = "".join(self._text).strip()
            self._text = []
        elif tag == "td" and not self._in("vx-affine") and self._label is not None:
            self.rows[self._label] = "".join(self._text).strip()
            self._label, self._text = None, []

    def handle_data(self, data):
        if self._in("style") or self._in("script"):
            return
        self._text.append(data)
        if self._note is not None:
            self._note.append(data)
        if self._in("vx-affine") and self._stack[-1][0] == "td" and self.affine:
            self.affine[-1].append(data.strip())

    def _in(self, what: str) -> bool:
        return any(t == what or what in a.get("class", "").split() for t, a in self._stack)


def parse(text: str) -> _Repr:
    p = _Repr()
    p.feed(text)
    p.close()
    return p


def _image(tmp_path, name="img.nii", shape=(40, 48, 36), dtype=np.int16, slope=None, arr=None):
    if arr is None:
        rng = np.random.default_rng(0)
        arr = rng.integers(0, 300, shape).astype(dtype)
    h = nib.Nifti1Header()
    h.set_data_dtype(arr.dtype)
    h.set_data_shape(arr.shape)
    h.set_qform(AFFINE, 1)
    h.set_sform(AFFINE, 4)
    h.set_zooms((2.0, 2.5, 3.0, *([1.5] * (arr.ndim - 3))))
    if slope is not None:
        h.set_slope_inter(*slope)
    return write_nifti(tmp_path / name, arr, h)


def _stats(img):
    return open_source(img.dataobj.reader.source).stats


# -- the table ----------------------------------------------------------------------------


def test_table_fields_match_nibabel(tmp_path):
    path = _image(tmp_path, "scaled.nii", slope=(2.0, 1.0))
    img = vx.load(path)
    ref = nib.load(path)
    r = parse(image_html(img, thumbnail=False))
    assert r.rows["file"] == str(path)
    assert r.rows["class"] == "voxray.Nifti1Image (nibabel.Nifti1Image)"
    assert r.rows["shape"] == str(ref.shape)
    disk = ref.get_data_dtype().name
    values = np.asanyarray(ref.dataobj).dtype.name  # float64: scaled by slope 2
    assert r.rows["dtype"] == f"{disk} on disk, {values} values (slope 2, intercept 1)"
    zooms = [float(z) for z in r.rows["zooms"].strip("()").split(",")]
    np.testing.assert_allclose(zooms, ref.header.get_zooms(), atol=5e-4)
    assert r.rows["axis codes"] == "".join(nib.aff2axcodes(ref.affine))
    cells = np.array([[float(c) for c in row] for row in r.affine])
    np.testing.assert_allclose(cells, ref.affine, atol=5e-4)
    assert r.rows["data"] == "lazy: reads only the selections asked for, by os.pread"
    assert r.rows["chunks"].endswith("(40, 48, 36)")
    assert r.title == "Nifti1Image (40, 48, 36)"
    assert not r.imgs and not r.notes


def test_in_memory_and_oblique_images(tmp_path):
    aff = nib.affines.from_matvec(
        nib.eulerangles.euler2mat(0.3, 0.1, 0) * 2.0, [-10, 20, 5]
    )  # oblique
    img = vx.Image(np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6), aff)
    r = parse(image_html(img, thumbnail=False))
    assert r.rows["file"] == "in memory"
    assert r.rows["data"] == "in memory"
    assert r.rows["dtype"] == "float32 on disk"
    assert r.rows["axis codes"] == "".join(nib.aff2axcodes(aff)) + " (oblique)"
    np.testing.assert_allclose([[float(c) for c in row] for row in r.affine], aff, atol=5e-4)
    assert thumbnail_cost(img) == 0


def test_text_is_escaped(tmp_path):
    name = "a<b>&\"c'.nii"
    path = _image(tmp_path, name)
    out = image_html(vx.load(path), thumbnail=False)
    r = parse(out)
    assert r.rows["file"] == str(path)  # the parser unescapes: the text is the name
    assert "b" not in r.tags  # ... and never a tag
    assert "&lt;b&gt;&amp;&quot;c&#x27;.nii" in out


def test_nibabel_image_and_gzip_state(tmp_path, fresh_cache):
    path = _image(tmp_path, "plain.nii.gz")
    r = parse(image_html(nib.load(path), thumbnail=False))
    assert r.rows["class"] == "nibabel.Nifti1Image"
    assert r.rows["data"] == "lazy (nibabel proxy)"
    r = parse(image_html(vx.load(path), thumbnail=False))
    assert r.rows["data"].startswith("lazy: gzip, not indexed yet")
    ref = nib.load(path)  # nibabel's proxy reads a stream: each plane inflates from its start
    assert 40 * 48 * 36 * 2 // 2 <= thumbnail_cost(ref) <= 3 * (352 + 40 * 48 * 36 * 2)
    assert len(parse(image_html(ref)).imgs) == 1


def test_a_repr_never_raises(tmp_path, monkeypatch):
    img = vx.load(_image(tmp_path))

    def broken(*args, **kwargs):
        raise vx.InvalidHeaderError("the test broke it")

    monkeypatch.setattr("voxray.plotting.ortho.plot_ortho", broken)
    r = parse(image_html(img, thumbnail=True))
    assert r.rows["shape"] == "(40, 48, 36)"
    assert not r.imgs
    assert r.notes == ["no thumbnail: InvalidHeaderError: the test broke it"]
    monkeypatch.setattr(type(img.header), "get_zooms", broken)
    r = parse(image_html(img, thumbnail=False))
    assert r.rows["zooms"] == "unavailable (InvalidHeaderError: the test broke it)"
    assert r.rows["shape"] == "(40, 48, 36)"
    out = image_html(object())  # not an image at all: a note, not an exception
    assert "the HTML view failed" in out


def test_without_matplotlib_the_table_and_a_note(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    r = parse(image_html(vx.load(_image(tmp_path))))
    assert r.rows["shape"] == "(40, 48, 36)" and not r.imgs
    assert r.notes == ["no thumbnail: matplotlib is not installed (pip install 'voxray[plot]')"]


# -- what a thumbnail costs, counted ----------------------------------------------------------


SERIES = (64, 64, 32, 16)  # 256 KiB volumes, 4 MiB that gzip hardly compresses


def _series_gz(tmp_path, name="bold.nii.gz"):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 30000, SERIES).astype(np.int16)
    return _image(tmp_path, name, arr=arr), arr


def _plane_bytes(shape, itemsize=2):
    nx, ny, nz = shape[:3]
    return (ny * nz + nx * nz + nx * ny) * itemsize


def test_uncompressed_file_costs_its_planes(tmp_path):
    path, _ = _series_gz(tmp_path, "bold.nii")
    img = vx.load(path)
    cost = thumbnail_cost(img)
    planes = _plane_bytes(SERIES)
    assert planes <= cost <= 3 * 64 * 64 * 32 * 2  # the planes, at most read through volume 0
    s = _stats(img)
    s.reset()
    r = parse(image_html(img))
    assert len(r.imgs) == 1 and r.imgs[0]["src"].startswith("data:image/png;base64,")
    assert planes <= s.bytes_read <= cost


def test_remote_file_costs_its_planes(tmp_path, fresh_cache):
    from voxray.testing.httpserver import RangeServer

    path, _ = _series_gz(tmp_path, "bold.nii")
    with RangeServer(tmp_path) as server:
        img = vx.load(server.url("bold.nii"))
        local = thumbnail_cost(vx.load(path))
        cost = thumbnail_cost(img)
        assert _plane_bytes(SERIES) <= cost <= 3 * 64 * 64 * 32 * 2
        assert cost >= local  # requests cost more: the plan reads through more gaps
        s = _stats(img)
        s.reset()
        r = parse(image_html(img))
        assert len(r.imgs) == 1 and s.bytes_read <= cost
        assert r.rows["data"] == "lazy: reads only the selections asked for, by byte ranges"
        assert r.rows["file"] == server.url("bold.nii")


def test_never_indexed_gzip_too_large_reads_nothing_past_the_header(tmp_path, fresh_cache):
    path, _ = _series_gz(tmp_path)
    img = vx.load(path)
    cost = thumbnail_cost(img)
    vol = 64 * 64 * 32 * 2
    assert vol // 2 <= cost <= 3 * (vol + 352)  # through volume 0 (some of it 3 times)
    s = _stats(img)
    before = s.snapshot()
    r = parse(image_html(img, max_bytes=cost - 1))
    assert not r.imgs
    (note,) = r.notes
    assert "never-indexed .nii.gz" in note and f"`voxray index {path}`" in note
    assert s.snapshot()["bytes_inflated"] == before["bytes_inflated"] < 64 * 1024
    assert s.snapshot()["bytes_read"] <= before["bytes_read"] + 65536 + 64  # the trailer look
    # Under the limit it is drawn, and inflates at most what was priced.
    r = parse(image_html(img, max_bytes=cost))
    assert len(r.imgs) == 1
    assert s.bytes_inflated - before["bytes_inflated"] <= cost


def test_small_never_indexed_gzip_is_priced_whole(tmp_path, fresh_cache):
    # Little compressed data is left after the planes: the build pass runs on to the end
    # of the stream (to complete and store the index), and the price says so.
    img = vx.load(_image(tmp_path, "small.nii.gz"))
    total = 352 + 40 * 48 * 36 * 2
    cost = thumbnail_cost(img)
    assert total <= cost <= 3 * total  # the whole stream, then indexed reads of the planes
    s = _stats(img)
    s.reset()
    assert len(parse(image_html(img, max_bytes=cost)).imgs) == 1
    assert total <= s.bytes_inflated + 1024 and s.bytes_inflated <= cost
    other = vx.load(_image(tmp_path, "other.nii.gz"))
    assert not parse(image_html(other, max_bytes=total - 1)).imgs


def test_default_limit_refuses_a_large_never_indexed_gzip(tmp_path, fresh_cache):
    arr = np.zeros((256, 256, 600), np.int16)  # 75 MiB, compresses to ~80 KB
    arr[100:110, 100:110, 300:310] = 1000
    img = vx.load(_image(tmp_path, "big.nii.gz", arr=arr))
    assert thumbnail_cost(img) > MAX_THUMBNAIL_BYTES
    s = _stats(img)
    inflated = s.bytes_inflated
    r = parse(image_html(img))
    assert not r.imgs and "never-indexed" in r.notes[0]
    assert s.bytes_inflated == inflated


def test_indexed_gzip_costs_planes_and_seeks(tmp_path, fresh_cache):
    path, _ = _series_gz(tmp_path)
    np.asarray(vx.load(path).dataobj)  # a full read builds and stores the index
    flush_index_writes()
    clear_cache()  # a fresh process: only the stored index is shared
    img = vx.load(path)
    cost = thumbnail_cost(img)
    spacing = open_source(img.dataobj.reader.source).index.spacing
    assert cost <= 3 * (64 * 64 * 32 * 2 + spacing + 256 * 1024)  # at most volume 0, 3 times
    s = _stats(img)
    s.reset()
    r = parse(image_html(img, max_bytes=cost))
    assert len(r.imgs) == 1
    assert s.bytes_inflated <= cost
    assert r.rows["data"] == "lazy: gzip, an index is stored (random access)"


def test_voxray_written_gzip_is_random_access(tmp_path, fresh_cache):
    path, _ = _series_gz(tmp_path, "src.nii")
    out = tmp_path / "written.nii.gz"
    vx.save(vx.load(path), out)  # voxray's writer: bounded members and a trailer index
    clear_cache()
    img = vx.load(out)
    cost = thumbnail_cost(img)
    assert cost < 64 * 64 * 32 * 2 * SERIES[3]  # not a pass over the file
    s = _stats(img)
    s.reset()
    assert len(parse(image_html(img, max_bytes=cost)).imgs) == 1
    assert s.bytes_inflated <= cost


def test_zarr_costs_the_chunks_the_planes_touch(tmp_path):
    path, _ = _series_gz(tmp_path, "src.nii")
    store = tmp_path / "img.nii.zarr"
    vx.to_zarr(vx.load(path), store, chunks=(1, 32, 32, 32), levels=1)
    img = vx.load(store)
    cost = thumbnail_cost(img)
    chunk = 32 * 32 * 32 * 2
    assert chunk <= cost <= 3 * 4 * chunk  # each plane crosses at most 4 chunks of volume 0
    assert len(parse(image_html(img, max_bytes=cost)).imgs) == 1
    assert not parse(image_html(img, max_bytes=cost - 1)).imgs


def test_sliced_views_are_priced_through_the_view(tmp_path, fresh_cache):
    path, _ = _series_gz(tmp_path)
    img = vx.load(path)
    vol = 64 * 64 * 32 * 2
    later = img.slicer[::-1, :, :, 5:]  # volume 5 reversed along i: its planes are past 5 volumes
    seek = open_source(img.dataobj.reader.source).index.spacing + 256 * 1024
    assert 5 * vol <= thumbnail_cost(later) <= 6 * vol + 352 + 2 * (vol + seek)
    assert thumbnail_cost(img) < vol * 3 + 352 * 3
    s = _stats(img)
    inflated = s.bytes_inflated
    r = parse(image_html(later, max_bytes=thumbnail_cost(later) - 1))
    assert not r.imgs and s.bytes_inflated == inflated


def test_chunks_are_those_of_to_dask(tmp_path):
    path, _ = _series_gz(tmp_path, "bold.nii")
    for img in (vx.load(path), vx.load(path).slicer[2:, ::2], vx.load(path, chunks={3: 4})):
        chunks = img.to_dask().chunks
        n = int(np.prod([len(c) for c in chunks]))
        size = tuple(max(c) for c in chunks)
        want = f"1 chunk of {size}" if n == 1 else f"{n} chunks of {size}"
        assert parse(image_html(img, thumbnail=False)).rows["chunks"] == want


def test_readers_that_are_not_byte_ranges_cost_volume_0():
    from voxray.testing import NIBABEL_DATA

    img = vx.load(NIBABEL_DATA / "phantom_EPI_asc_CLEAR_2_1.PAR")  # PAR/REC: per-slice scaling
    cost = thumbnail_cost(img)
    assert cost == 64 * 64 * 9 * np.dtype(img.dataobj.reader.dtype).itemsize
    r = parse(image_html(img))
    assert len(r.imgs) == 1
    assert r.rows["class"] == "voxray.PARRECImage (nibabel.PARRECImage)"
    r = parse(image_html(img, max_bytes=cost - 1))
    assert r.notes == [
        f"no thumbnail: drawing it would decode {cost / 1024:.0f} KiB (more than "
        f"{(cost - 1) / 1024:.0f} KiB)"
    ]


def test_afni_brik_gz_is_priced_as_its_stream(fresh_cache):
    from voxray.testing import NIBABEL_DATA

    img = vx.load(NIBABEL_DATA / "example4d+orig.BRIK.gz")
    stored = 33 * 41 * 25 * 2  # int16 volumes (the values are float64 after the factors)
    cost = thumbnail_cost(img)
    assert cost >= stored
    s = open_source(img.dataobj.reader.source).stats
    s.reset()
    assert len(parse(image_html(img, max_bytes=cost)).imgs) == 1
    assert s.bytes_inflated <= cost
    later = img.slicer[..., 2]
    assert thumbnail_cost(later) >= 3 * stored


def test_dask_backed_images(tmp_path):
    da = pytest.importorskip("dask.array")
    img = vx.Image(da.zeros((10, 12, 14), chunks=5), np.eye(4))
    assert thumbnail_cost(img) is None  # a computation: its cost is unknown
    r = parse(image_html(img))
    assert r.rows["data"] == "lazy (a dask array)"
    assert r.notes == ["no thumbnail: its data is a dask computation voxray cannot price"]
    assert len(parse(image_html(img, thumbnail=True)).imgs) == 1


# -- DataArrays ---------------------------------------------------------------------------------


def test_dataarray_repr(tmp_path, fresh_cache):
    path, _ = _series_gz(tmp_path)
    da = vx.open_dataarray(path)
    img = vx.load(path)
    assert thumbnail_cost(da) == thumbnail_cost(img)
    r = parse(dataarray_html(da, max_bytes=thumbnail_cost(da) - 1))
    assert r.title == "DataArray 'bold' (64, 64, 32, 16)"
    assert r.rows["file"] == str(path)
    assert r.rows["class"] == "xarray.DataArray (from a nibabel.Nifti1Image)"
    assert r.rows["dims"] == "i: 64, j: 64, k: 32, t: 16"
    assert r.rows["dtype"] == "int16 on disk"
    assert r.rows["axis codes"] == "".join(da.vx.axcodes) == "LAS"
    np.testing.assert_allclose(
        [[float(c) for c in row] for row in r.affine], da.vx.affine, atol=5e-4
    )
    np.testing.assert_allclose(
        [float(z) for z in r.rows["zooms"].strip("()").split(",")], da.vx.zooms, atol=5e-4
    )
    assert r.rows["data"] == "lazy (a dask array)"
    assert r.rows["chunks"] == "1 chunk of (64, 64, 32, 16)"
    assert not r.imgs and "never-indexed" in r.notes[0]
    s = _stats(img)
    s.reset()
    r = parse(dataarray_html(da))
    assert len(r.imgs) == 1 and s.bytes_inflated <= thumbnail_cost(da)
    assert thumbnail_cost(img.to_xarray()) == thumbnail_cost(img)
    lazy = vx.open_dataarray(path, chunks=None)
    assert thumbnail_cost(lazy) == thumbnail_cost(img)
    assert parse(dataarray_html(lazy, thumbnail=False)).rows["data"] == (
        "lazy (xarray's lazy indexing)"
    )
    assert thumbnail_cost(da.isel(t=slice(1, None)) + 1) is None  # a computation


# -- in a real browser --------------------------------------------------------------------------


def _chromium():
    from voxray.testing.browser import chromium_path, require_chromium

    if chromium_path() is None and not os.environ.get("VOXRAY_REQUIRE_BROWSER"):
        pytest.skip("Chromium is not installed (make test installs it and requires it)")
    return require_chromium()  # raises, naming the install, when it is required


MEASURE = """<script>
const img = document.querySelector('.vx-repr img');
const head = document.querySelector('.vx-repr thead th');
const box = e => { const r = e.getBoundingClientRect();
  return [r.left, r.top, r.width, r.height]; };
document.body.dataset.layout = JSON.stringify({img: img && box(img), head: box(head),
  natural: img && [img.naturalWidth, img.naturalHeight]});
</script>"""


def _marker_image(tmp_path):
    """40x48x36 int16: smooth values up to 300 and a bright 9-voxel cube at the centre."""
    i, j, k = np.meshgrid(*(np.linspace(0, 1, n) for n in (40, 48, 36)), indexing="ij")
    arr = (100 + 100 * np.sin(6 * i) * np.cos(5 * j) + 50 * k).astype(np.int16)
    arr[16:25, 20:29, 14:23] = 1000
    return _image(tmp_path, "marker.nii", arr=arr)


def _bright_blocks(rgb, size=7):
    """Pixels at the centre of a size x size block of near-white pixels (text strokes
    are thinner than that; the marker is not)."""
    from numpy.lib.stride_tricks import sliding_window_view

    bright = (rgb[..., :3] > 0.9).all(axis=-1)
    win = sliding_window_view(bright, (size, size)).all(axis=(-1, -2))
    return np.argwhere(win) + size // 2


@pytest.mark.slow
def test_repr_in_headless_chromium(tmp_path):
    import matplotlib.image as mpimg

    from voxray.testing.browser import dump_dom, screenshot

    _chromium()
    img = vx.load(_marker_image(tmp_path))
    page = tmp_path / "repr.html"
    page.write_text(
        "<!doctype html><html><head><meta charset='utf-8'></head>"
        f"<body style='margin:10px;background:#ffffff'>{img._repr_html_()}{MEASURE}</body></html>"
    )
    size = (1000, 700)
    dom = dump_dom(page, size=size)
    png = screenshot(page, tmp_path / "repr.png", size=size)
    shot = mpimg.imread(png)[..., :3]
    assert shot.shape[:2] == (size[1], size[0])

    # The DOM as the browser built it: the table's rows with nibabel's values.
    r = parse(dom)
    ref = nib.load(img.get_filename())
    assert r.rows["shape"] == str(ref.shape)
    assert r.rows["axis codes"] == "".join(nib.aff2axcodes(ref.affine))
    np.testing.assert_allclose(
        [[float(c) for c in row] for row in r.affine], ref.affine, atol=5e-4
    )
    layout = json.loads(re.search(r'data-layout="([^"]*)"', dom).group(1).replace("&quot;", '"'))

    # The table: its header row's colour, where the browser laid it out.
    x, y, w, h = (round(v) for v in layout["head"])
    head = shot[y + 2 : y + h - 2, x + 2 : x + w - 2]
    colour = np.abs(head * 255 - np.array(HEADER_RGB)).max(axis=-1) <= 2
    assert colour.mean() > 0.6  # the rest is the title's white text

    # The thumbnail: shown 1:1, framed in black, with the marker in each of its 3 panels.
    x, y, w, h = (round(v) for v in layout["img"])
    assert [w, h] == layout["natural"] and w >= 300
    frame = shot[y - 4 : y - 1, x : x + w]
    assert frame.max() < 0.05  # the black frame around the image
    thumb = shot[y : y + h, x : x + w]
    blocks = _bright_blocks(thumb)
    assert len(blocks), "no marker in the thumbnail"
    cols = np.unique(blocks[:, 1])
    blobs = 1 + int((np.diff(cols) > 1).sum())  # separate runs of columns: one per panel
    assert blobs == 3, f"the marker shows {blobs} times, not once in each of 3 panels"
    assert (thumb.max(axis=-1) < 0.5).mean() > 0.5  # mostly the dim image and background
