"""Shared fixtures: the conformance corpus, an isolated gzip-index cache, I/O counters."""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config):
    # Never touch the user's cache: every test session gets its own index cache.
    os.environ["VOXRAY_CACHE_DIR"] = tempfile.mkdtemp(prefix="voxray-test-cache-")


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus")


@pytest.fixture(scope="session")
def corpus(corpus_dir):
    from voxray.testing import build_corpus

    return {e.name: e for e in build_corpus(corpus_dir)}


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty gzip-index cache and no open sources."""
    from voxray.sources import clear_cache

    monkeypatch.setenv("VOXRAY_CACHE_DIR", str(tmp_path / "cache"))
    clear_cache()
    yield tmp_path / "cache"
    clear_cache()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API server (moto's server mode) on 127.0.0.1, started and stopped here."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server._server.server_port
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """A fresh bucket on the local S3 server: ``.bucket``, ``.options`` (fsspec), ``.fs``."""
    import uuid
    from types import SimpleNamespace

    import s3fs

    for var, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(var, value)
    options = {"key": "testing", "secret": "testing", "endpoint_url": s3_endpoint}
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
    bucket = f"voxray-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    yield SimpleNamespace(bucket=bucket, options=options, fs=fs, endpoint=s3_endpoint)
    fs.rm(bucket, recursive=True)
