"""Read a .nii.gz by URL, by byte ranges, and see what it cost.

A local HTTP server (voxray's test server, honouring Range requests) stands in
for object storage, so this runs anywhere; for S3 use an ``s3://`` URL and
``storage_options`` (``pip install "voxray[cloud]"``).
"""

import os
import tempfile

import nibabel as nib
import numpy as np
from nibabel.testing import data_path

import voxray as vx
from voxray.sources import clear_cache, open_source
from voxray.testing.httpserver import RangeServer

os.environ.setdefault("VOXRAY_CACHE_DIR", tempfile.mkdtemp(prefix="voxray-example-"))

with RangeServer(data_path) as server:
    url = server.url("example4d.nii.gz")

    img = vx.load(url)  # one HEAD and one small range request
    print(repr(img))
    src = open_source(img.dataobj.reader.source).raw
    print(f"opening: {src.stats.requests} range request(s), {src.stats.bytes_read} bytes")

    mean = img.to_dask().mean(axis=-1).compute()  # streams the object once, indexing it
    local = nib.load(f"{data_path}/example4d.nii.gz").get_fdata().mean(-1)
    assert np.allclose(mean, local)
    print(f"mean over time: {mean.shape}, equal to nibabel's on the local file")

    clear_cache()  # as another process would: the index comes from the cache
    img = vx.load(url)
    src = open_source(img.dataobj.reader.source).raw
    src.stats.reset()
    vol = img.dataobj[..., -1]
    print(
        f"last volume {vol.shape}: {src.stats.requests} request(s), {src.stats.bytes_read} "
        f"bytes of a {os.path.getsize(f'{data_path}/example4d.nii.gz')}-byte object"
    )
