"""The examples run as scripts, as users run them."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(script):
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip()


def test_demo_mean_matches_nibabel():
    import nibabel as nib
    import numpy as np
    from nibabel.testing import data_path

    demo = runpy.run_path(str(EXAMPLES / "demo.py"))
    path = f"{data_path}/example4d.nii.gz"
    vol = demo["run"](path)
    np.testing.assert_allclose(vol, nib.load(path).get_fdata().mean(-1))
