"""Draw benchmarks/run.py's results: the ratio of each comparison (voxray / baseline).

    python benchmarks/figure.py [RESULTS.json ...] [-o docs/bench/bench-ratios.png]

With several JSON files (runs of different ``--only`` patterns), their comparisons are
drawn together, in the order given; the default is benchmarks/results/latest.json.

One horizontal bar per comparison at the ratio of the medians, a marker at the ratio of
the minima, and a short vertical line at the comparison's target where it has one.
Ratios below 1 are voxray faster; the axis is logarithmic.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_JSON = HERE / "results" / "latest.json"
DEFAULT_PNG = HERE.parent / "docs" / "bench" / "bench-ratios.png"


def draw(results: dict, out: Path) -> Path:
    """Draw ``results`` (run.py's JSON, loaded) into the PNG ``out``; return ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["results"] if r.get("ratio")]
    meta = results.get("meta", {})
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.36 * max(len(rows), 1)), dpi=100)
    ys = range(len(rows))[::-1]
    for y, r in zip(ys, rows):
        ratio, ratio_min, target = r["ratio"], r.get("ratio_min"), r.get("target")
        met = target is None or max(ratio, ratio_min or ratio) <= target
        ax.barh(y, ratio, height=0.6, color="#4c78a8" if met else "#e45756")
        if ratio_min:
            ax.plot(ratio_min, y, "k|", markersize=12, markeredgewidth=2)
        if target is not None:
            ax.plot([target, target], [y - 0.4, y + 0.4], color="#222", lw=1.5, ls=":")
    ax.axvline(1, color="#888", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(list(ys))
    labels = [f"{r['name']}\nvs {r.get('peer_call', r.get('what', ''))}" for r in rows]
    ax.set_yticklabels(labels, fontsize=6.5)
    ax.set_xlabel("voxray time / baseline time (bar: medians, |: minima, dotted: target)")
    runs = meta.get("repeat", "?")
    ax.set_title(
        f"voxray vs each peer's fastest call, {runs} alternating runs"
        f" ({meta.get('started', '')}, {meta.get('cpus', '?')} cores)",
        fontsize=9,
    )
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("json", nargs="*", type=Path, default=[DEFAULT_JSON])
    ap.add_argument("-o", "--out", type=Path, default=DEFAULT_PNG)
    args = ap.parse_args()
    loaded = [json.loads(p.read_text()) for p in args.json]
    merged = {"meta": dict(loaded[0]["meta"]), "results": []}
    for d in loaded:
        merged["results"] += d["results"]
    if len(loaded) > 1:  # the title gives the first run's start and the last one's end
        merged["meta"]["started"] = min(d["meta"].get("started", "") for d in loaded)
    out = draw(merged, args.out)
    names = ", ".join(str(p) for p in args.json)
    print(f"drew {out} ({out.stat().st_size / 1e3:.0f} kB) from {names}")


if __name__ == "__main__":
    main()
