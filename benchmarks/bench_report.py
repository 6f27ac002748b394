"""The bench report: a markdown table, the JSON, and PNG plots."""

from __future__ import annotations

from pathlib import Path

from vigil.runtime.core.report import json_text


def _giga(value: float | None) -> float | None:
    return None if value is None else value / 1e9


def _mega(value: float | None) -> float | None:
    return None if value is None else value / 1e6


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _times(value) -> str:
    """A ratio as "2.4x", or "n/a" where it could not be measured."""
    return "n/a" if value is None else f"{_fmt(value)}x"


def write_bench_report(result: dict, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json_text(result))
    lines = ["# Vigil bench", ""]
    machine = result.get("machine")
    if machine:
        peak = result.get("peak_per_core_estimate", {})
        roof = result.get("measured_roof_one_thread", {})
        lines += [f"Machine: {machine['model']} ({machine['vendor']}), {machine['cores']} cores, "
                  f"{_fmt(machine.get('ghz'))} GHz, ISA: {' '.join(machine['isa'])}; onnxruntime "
                  f"{machine['onnxruntime']}, providers {', '.join(machine['providers_available'])}.",
                  "", f"Estimated peak per core: {_fmt(_giga(peak.get('fp32_flops')))} GFLOP/s "
                  f"FP32, {_fmt(_giga(peak.get('int8_ops')))} G op/s INT8 "
                  f"({peak.get('int8_kind')}); measured one-thread GEMM roof: FP32 "
                  f"{_fmt(_giga(roof.get('fp32_ops_per_s')))} GFLOP/s, u8s8 "
                  f"{_fmt(_giga(roof.get('u8s8_ops_per_s')))} G op/s.", ""]
    for model in result.get("models", []):
        eff = model.get("efficiency", {})
        cold = model.get("cold_start", {})
        cold_text = (f"Cold start (import + load + first score, fresh process, CPU, one "
                     f"thread): "
                     f"{_fmt(cold.get('import_load_first_score_s'))} s; peak RSS "
                     f"{_fmt(cold.get('peak_rss_mb'))} MB." if cold else
                     "Cold start: not measured (--no-cold-start).")
        lines += [f"## {model.get('label') or Path(model['model']).name} ({model['kind']}, "
                  f"{model['precision']}, "
                  f"{model['file_bytes'] / 1e6:.2f} MB)", "",
                  f"Input: {model['input']}. {cold_text}",
                  f"Timed: {model.get('timed', 'n/a')}.",
                  f"Work per item: {_fmt(_mega(model.get('ops_per_item')))} M op. "
                  + (f"Batch-1 one-thread: {_fmt(_giga(eff['achieved_ops_per_s']))} G op/s, "
                     f"{_times(eff['times_below_isa_peak'])} below the ISA peak, "
                     f"{_times(eff['times_below_measured_roof'])} below the measured roof; INT8 "
                     f"kernels {_fmt(eff['int8_kernel_time_share'])} of kernel time. "
                     f"{eff['verdict']}." if eff else ""), ""]
    lines += ["| model | precision | device | threads | batch | runs | p50 ms | p90 ms | p99 ms "
              "| max ms | p50 ms/item | items/s | IQR ms |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in result["cells"]:
        lines.append(f"| {c['run'] if 'run' in c else c.get('label') or Path(c['model']).name} | "
                     f"{c.get('precision', '')} | {c.get('device', '')} | {c.get('threads')} | "
                     f"{c.get('batch')} | {c.get('runs', 'n/a')} | {_fmt(c.get('p50_ms'))} | "
                     f"{_fmt(c.get('p90_ms'))} | {_fmt(c.get('p99_ms'))}"
                     f"{' (unstable)' if c.get('unstable') else ''}"
                     f"{' (of under 100 runs: near the max)' if (c.get('runs') or 100) < 100 else ''} | "
                     f"{_fmt(c.get('max_ms'))} | "
                     f"{_fmt(c.get('p50_ms_per_item'))} | {_fmt(c.get('items_per_s'), 4)} | "
                     f"{_fmt(c.get('iqr_ms'))} |")
    sides = result.get("side_by_side") or []
    if sides:
        first = next(k for k in sides[0] if k.startswith("p50_over_"))
        names = list(sides[0]["p50_ms"])
        lines += ["", f"## Side by side (interleaved): each p50 over {first[len('p50_over_'):]}'s",
                  "", "| device | threads | batch | " + " | ".join(names) + " |",
                  "|---|---:|---:|" + "---:|" * len(names)]
        for side in sides:
            ratios = side.get(next(k for k in side if k.startswith("p50_over_")), {})
            device = side["device"] if isinstance(side["device"], str) else "mixed"
            lines.append(f"| {device} | {side['threads']} | {side['batch']} | "
                         + " | ".join("n/a" if ratios.get(n) is None else f"{ratios[n]:.2f}x"
                                    for n in names) + " |")
    base = result.get("baselines")
    if base:
        lines += ["", "## Against Keras and TFLite (batch 1, one thread, interleaved)", "",
                  "| engine | p50 ms | p99 ms |", "|---|---:|---:|"]
        for name, s in base["stats"].items():
            lines.append(f"| {name} | {_fmt(s['p50_ms'])} | {_fmt(s['p99_ms'])} |")
        lines += ["", "| ratio | value |", "|---|---:|"]
        lines += [f"| {k} | {v:.2f}x |" for k, v in base["ratios"].items()]
        failed = [n for n in base.get("notes", []) if "failed" in n]
        if failed:
            lines += ["", "Not measured:", *[f"- {n}" for n in failed]]
    if result.get("notes"):
        lines += ["", *[f"- {n}" for n in result["notes"]]]
    pngs = _plots(result, folder)
    lines += ["", *[f"![{p.stem}]({p.name})" for p in pngs]]
    report = folder / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def _plots(result: dict, folder: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        result.setdefault("notes", []).append("plots need matplotlib: pip install 'vigil-edge[report]'")
        return []
    cells = result["cells"]
    out = []
    label = lambda c: ((c.get("run") or c.get("label") or Path(c["model"]).name)  # noqa: E731
                       + f" {c.get('precision')} {c.get('device')} t{c['threads']}")
    figure, axis = plt.subplots(figsize=(9, 4), dpi=100)
    for key in sorted({label(c) for c in cells}):
        chosen = sorted((c for c in cells if label(c) == key), key=lambda c: c["batch"])
        axis.plot([c["batch"] for c in chosen], [c["items_per_s"] for c in chosen], "o-", label=key)
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("batch")
    axis.set_ylabel("items / s")
    axis.set_title("Throughput vs batch")
    axis.legend(fontsize=7)
    figure.tight_layout()
    out.append(folder / "throughput.png")
    figure.savefig(out[-1])
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(9, 4), dpi=100)
    names = [f"{label(c)} b{c['batch']}" for c in cells]
    rows = range(len(cells))
    # p50 as a dot and the spread to p99 as a bar, on a log axis: a 0.01 ms p50 beside a 10 ms
    # p99 stays visible (bars from zero cannot be drawn on a log axis)
    axis.hlines(rows, [c["p50_ms_per_item"] for c in cells], [c["p99_ms_per_item"] for c in cells],
                color="tab:orange", lw=6, label="p50..p99")
    axis.plot([c["p50_ms_per_item"] for c in cells], rows, "o", color="tab:blue", label="p50")
    axis.set_yticks(list(rows), names)
    axis.set_ylim(-0.6, len(cells) - 0.4)
    axis.set_xscale("log")
    axis.set_xlabel("ms per item (log scale)")
    axis.set_title("Latency per item (p50 and the spread to p99)")
    axis.legend(fontsize=7)
    axis.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    out.append(folder / "latency.png")
    figure.savefig(out[-1])
    plt.close(figure)

    base = result.get("baselines")
    if base and base["ratios"]:
        keys = list(base["ratios"])
        figure, axis = plt.subplots(figsize=(8, 1.2 + 0.3 * len(keys)), dpi=100)
        axis.barh(keys, [base["ratios"][k] for k in keys], color="tab:green")
        axis.axvline(1.0, color="black", lw=0.8)
        axis.set_xscale("log")
        axis.set_xlabel("A_over_B: A's p50 over B's (above 1: B faster)", fontsize=8)
        figure.tight_layout()
        out.append(folder / "ratios.png")
        figure.savefig(out[-1])
        plt.close(figure)
    return out
