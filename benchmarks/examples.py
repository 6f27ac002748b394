"""Run the worked examples of ``docs/examples.md`` as written and pool their figures.

Each example is a bash block after an ``<!-- example: NAME -->`` marker. It is run with
``bash -euo pipefail`` in a work folder, with this interpreter's ``vigil`` first on ``PATH`` and its
data variables (``NAB=../shared/data/nab`` and the like) pointed at ``--data``. Every
``vigil eval --json`` file the block writes is read back; the summary gives one row per file and
the pooled figures (point F1 over all rows, event F1 over all events, mean AUROC).

``--slice ROWS`` runs a block on a small slice of the data instead (what ``tests/test_examples.py``
does in CI): each data file is cut to its first ROWS rows, a folder of many streams keeps only
its first file and the files the block names (``rogue_agent_key_hold.csv``, ``119``), each
loop stops after its first stream, and training runs ``--epochs 1``.

    python benchmarks/examples.py --json results/examples.json
    python benchmarks/examples.py --only traffic --work /tmp/examples
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from vigil.runtime.core import metrics
from vigil.runtime.core.report import json_text

DOC = Path(__file__).resolve().parents[1] / "docs" / "examples.md"
DATA_VARIABLE = re.compile(r"^(\w+)=\.\./shared/data/(\S+)", re.MULTILINE)
MARKER = re.compile(r"<!-- example: (\w+) -->\s*```bash\n(.*?)```", re.DOTALL)
TRAIN = re.compile(r"(vigil train sensor \S+)")
LOOP_END = re.compile(r"^done$", re.MULTILINE)


def read_examples(doc: Path = DOC) -> dict[str, str]:
    """Each example's bash block by name, in the page's order."""
    blocks = {name: body for name, body in MARKER.findall(doc.read_text())}
    if not blocks:
        raise ValueError(f"{doc} holds no `<!-- example: NAME -->` bash blocks")
    return blocks


def datasets_of(block: str) -> dict[str, str]:
    """The block's data variables and the shared-data folder each names (``NAB`` -> ``nab``)."""
    return dict(DATA_VARIABLE.findall(block))


def slice_dataset(source: Path, target: Path, rows: int, named: set[str]) -> None:
    """Copy ``source`` to ``target`` with every CSV cut to its first ``rows`` data rows; in a
    folder of several CSVs only the first and those ``named`` (by name or stem) are kept. Labels,
    READMEs and licences are copied whole; ``raw/`` folders are left out."""
    for walked, _, files in os.walk(source):
        folder = Path(walked)
        if "raw" in folder.relative_to(source).parts:
            continue
        out = target / folder.relative_to(source)
        csvs = sorted(f for f in files if f.endswith(".csv"))
        keep = set(csvs[:1]) | {f for f in csvs if f in named or f[:-4] in named}
        for name in files:
            if name.endswith(".csv") and name not in keep:
                continue
            out.mkdir(parents=True, exist_ok=True)
            if name.endswith(".csv"):
                with open(folder / name) as reader, open(out / name, "w") as writer:
                    for number, line in enumerate(reader):
                        if number > rows:
                            break
                        writer.write(line)
            elif name.endswith((".json", ".md", ".txt")) or name == "LICENSE":
                shutil.copyfile(folder / name, out / name)


def prepared(block: str, data: Path, work: Path, slice_rows: int | None) -> str:
    """The block with its data variables pointed at ``data`` (or at sliced copies in ``work``)."""
    variables = datasets_of(block)
    roots = {}
    for variable, folder in variables.items():
        source = data / folder
        if not source.is_dir():
            raise FileNotFoundError(f"the example needs {source} ({variable}); pass --data with "
                                    "the folder that holds it")
        if slice_rows is not None:
            named = set(re.findall(r"[\w.-]+", block))
            target = work / "data" / folder
            if target.exists():
                shutil.rmtree(target)
            slice_dataset(source, target, slice_rows, named)
            source = target
        roots[variable] = source.resolve()
    text = DATA_VARIABLE.sub(lambda m: f"{m.group(1)}={roots[m.group(1)]}", block)
    if slice_rows is not None:
        text = TRAIN.sub(r"\1 --epochs 1", text)
        text = LOOP_END.sub("  break\ndone", text)
    return text


def run_example(name: str, block: str, data: Path, work: Path,
                slice_rows: int | None = None) -> dict:
    """Run one block in ``work``; its pooled figures and one row per ``vigil eval`` JSON."""
    work.mkdir(parents=True, exist_ok=True)
    script = prepared(block, data, work, slice_rows)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    started = time.perf_counter()
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=work, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"example {name!r} failed (exit {done.returncode}) after {seconds:.0f} s;"
                           f" stderr:\n{done.stderr[-4000:]}")
    out = work / "examples-out" / name
    results = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    if not results:
        raise RuntimeError(f"example {name!r} wrote no `vigil eval --json` file under {out}")
    return {"example": name, "seconds": seconds, **pooled(results), "stdout": done.stdout,
            "files": [{"file": file, **{k: r.get(k) for k in FILE_KEYS}}
                      for file, r in results.items()]}


FILE_KEYS = ("rows", "anomalous_rows", "f1", "precision", "recall", "event_f1", "events",
             "events_hit", "alarm_runs", "false_alarm_runs", "auroc", "threshold")


def pooled(results: dict[str, dict]) -> dict:
    """Point F1 over every row, event F1 over every event and alarm run, mean AUROC."""
    c = metrics.Counts(*(sum(r[k] for r in results.values()) for k in ("tp", "fp", "fn", "tn")))
    events = metrics.event_scores_of_totals(list(results.values()))
    aurocs = [r["auroc"] for r in results.values() if r.get("auroc") is not None
              and r.get("anomalous_rows")]
    return {"f1": c.f1, "precision": c.precision, "recall": c.recall, **events, "auroc_mean": float(np.mean(aurocs)) if aurocs else None,
            "files_with_labels": len(aurocs)}


def markdown_table(result: dict) -> str:
    """The example's figures as the table docs/examples.md shows: one row per stream, then pooled."""
    def number(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    lines = ["| stream | rows | events caught | false alarm runs | F1 | event F1 | AUROC |",
             "|---|---|---|---|---|---|---|"]
    for row in result["files"]:
        lines.append(f"| {row['file']} | {row['rows']:,} | {row['events_hit']}/{row['events']} | "
                     f"{row['false_alarm_runs']} | {number(row['f1'])} | {number(row['event_f1'])} "
                     f"| {number(row['auroc']) if row['anomalous_rows'] else 'n/a'} |")
    lines.append(f"| **all {len(result['files'])}** | {sum(r['rows'] for r in result['files']):,} | "
                 f"**{result['events_hit']}/{result['events']}** | **{result['false_alarm_runs']}** |"
                 f" **{number(result['f1'])}** | **{number(result['event_f1'])}** | "
                 f"**{number(result['auroc_mean'])}** (mean) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--doc", type=Path, default=DOC, help=f"the page (default {DOC})")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="folder holding nab/, smd/, ecg-mitbih/ (default ../shared/data)")
    parser.add_argument("--work", type=Path, default=Path("examples-work"),
                        help="where the blocks run and write (default examples-work)")
    parser.add_argument("--only", default="", help="these examples (comma-separated; default all)")
    parser.add_argument("--slice", type=int, default=None, metavar="ROWS",
                        help="run on each file's first ROWS rows, one stream per folder "
                             "(default: the whole data)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--markdown", action="store_true",
                        help="also print each example's table as docs/examples.md shows it")
    args = parser.parse_args(argv)
    blocks = read_examples(args.doc)
    wanted = [n for n in args.only.split(",") if n] or list(blocks)
    unknown = sorted(set(wanted) - set(blocks))
    if unknown:
        parser.error(f"--only: no example named {unknown}; the page has {list(blocks)}")
    results = []
    for name in wanted:
        result = run_example(name, blocks[name], args.data.resolve(), args.work / name, args.slice)
        results.append(result)
        print(f"{name}: {len(result['files'])} files, F1 {result['f1']:.3f}, event F1 "
              f"{result['event_f1']:.3f} ({result['events_hit']}/{result['events']} events, "
              f"{result['false_alarm_runs']} false alarm runs), mean AUROC "
              f"{'n/a' if result['auroc_mean'] is None else format(result['auroc_mean'], '.3f')}"
              f" in {result['seconds']:.0f} s")
        for row in result["files"]:
            auroc = "n/a" if row["auroc"] is None else f"{row['auroc']:.3f}"
            f1 = "n/a" if row["f1"] is None else f"{row['f1']:.3f}"  # no labeled anomaly
            print(f"  {row['file']:<42} F1 {f1}  events {row['events_hit']}/"
                  f"{row['events']}  false runs {row['false_alarm_runs']:3d}  AUROC {auroc}")
        if args.markdown:
            print(markdown_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json_text({"examples": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
