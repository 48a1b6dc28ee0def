"""Regenerate the pictures of docs/plotting.md (docs/images/*.png) from the page's own code.

    python docs/make_images.py            # needs voxray[test] (matplotlib, nilearn)

The page's ``python`` blocks run in order, in one namespace, in a temporary directory,
as tests/test_docs.py runs them; so the pictures come from exactly the calls the page
shows. A block followed by a picture, ``![...](images/NAME.png)``, leaves its figure in
``fig``, which is saved as docs/images/NAME.png. Every file the page opens ships with
nibabel (``nibabel.testing.data_path``) or nilearn (its MNI152 template): nothing is
downloaded. The pictures must stay small (each under 150 KB, all under 1 MB): the script
fails if one is larger, and removes pictures the page no longer shows.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
PAGE = DOCS / "plotting.md"
IMAGES = DOCS / "images"
#: Pixels per inch of the saved pictures (a 9 in orthogonal view: 810 pixels wide).
DPI = 90
MAX_BYTES = 150_000
MAX_TOTAL = 1_000_000
BLOCK = re.compile(
    r"^```python\n(?P<code>.*?)^```\n\s*(?:!\[[^\]]*\]\((?P<png>images/[\w.-]+\.png)\))?",
    flags=re.M | re.S,
)


def blocks(text: str) -> list[tuple[str, str | None]]:
    """(code, picture path or None) for each python block of the page, in order."""
    return [(m["code"], m["png"]) for m in BLOCK.finditer(text)]


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    IMAGES.mkdir(exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="voxray-docs-") as tmp:
        # voxray's gzip-index cache goes to the temporary directory, not the user's.
        os.environ["VOXRAY_CACHE_DIR"] = str(Path(tmp) / "cache")
        os.chdir(tmp)
        ns: dict = {}
        for n, (code, png) in enumerate(blocks(PAGE.read_text())):
            ns.pop("fig", None)
            exec(compile(code, f"{PAGE.name}[python block {n}]", "exec"), ns)
            if png is None:
                continue
            fig = ns.get("fig")
            if fig is None:
                raise SystemExit(f"python block {n} is followed by {png} but leaves no `fig`")
            out = DOCS / png
            fig.savefig(out, dpi=DPI, pil_kwargs={"optimize": True})
            written.append(out)
            print(f"{out.relative_to(DOCS.parent)}: {out.stat().st_size:,} bytes")
    for old in sorted(set(IMAGES.glob("*.png")) - set(written)):
        print(f"removed {old.relative_to(DOCS.parent)} (not on the page)")
        old.unlink()
    sizes = {p: p.stat().st_size for p in written}
    big = [f"{p.name} ({n:,} bytes)" for p, n in sizes.items() if n > MAX_BYTES]
    if big or sum(sizes.values()) > MAX_TOTAL:
        print(f"too large: {', '.join(big) or 'the total'}", file=sys.stderr)
        return 1
    print(f"{len(written)} pictures, {sum(sizes.values()):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
