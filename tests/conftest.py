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
