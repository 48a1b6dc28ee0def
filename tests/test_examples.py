"""The examples run as scripts, as users run them."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(script, tmp_path):
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # the demo writes its picture under the current directory
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip()
    if script == "demo.py":  # make demo shows the image: a PNG, and where it is
        png = tmp_path / "demo-output" / "example4d.png"
        assert f"wrote {png.resolve()}" in out.stdout
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_mean_matches_nibabel():
    import nibabel as nib
    import numpy as np
    from nibabel.testing import data_path

    demo = runpy.run_path(str(EXAMPLES / "demo.py"))
    path = f"{data_path}/example4d.nii.gz"
    vol = demo["run"](path)
    np.testing.assert_allclose(vol, nib.load(path).get_fdata().mean(-1))


def test_demo_without_matplotlib_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    from nibabel.testing import data_path

    demo = runpy.run_path(str(EXAMPLES / "demo.py"))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    assert demo["show"](f"{data_path}/example4d.nii.gz", tmp_path) is None
    assert "pip install 'voxray[plot]'" in capsys.readouterr().out
    assert not any(tmp_path.iterdir())
