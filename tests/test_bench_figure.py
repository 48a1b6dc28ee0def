"""benchmarks/figure.py draws run.py's JSON into a PNG."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _figure():
    spec = importlib.util.spec_from_file_location("bench_figure", ROOT / "benchmarks/figure.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_draw_writes_a_png(tmp_path):
    side = {"seconds": 1.0, "seconds_min": 0.9, "user": 0.8, "sys": 0.1}
    results = {
        "meta": {"repeat": 5, "started": "2026-12-02T00:00:00Z", "cpus": 2},
        "results": [
            dict(
                name="gz full read",
                peer_call="np.asanyarray(img.dataobj)",
                nibabel=side,
                voxray=side,
                ratio=0.4,
                ratio_min=0.38,
                target=0.45,
            ),
            dict(
                name="missed",
                peer_call="x",
                nibabel=side,
                voxray=side,
                ratio=1.3,
                ratio_min=1.2,
                target=1.0,
            ),
            dict(
                name="no target",
                peer_call="y",
                nibabel=side,
                voxray=side,
                ratio=0.9,
                ratio_min=0.8,
                target=None,
            ),
        ],
    }
    out = _figure().draw(results, tmp_path / "sub" / "ratios.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 1000
