"""`vigil batch`: re-scoring archives (folders of CSVs, image folders, videos), in this process or
on a Ray cluster with Ray Data, writing the same JSON lines as `vigil score` does locally.

The inputs are cut into work items that score independently with the local code: one CSV file
(a sensor stream's windows never cross files), one video, or a run of up to ``IMAGES_PER_ITEM``
images of a folder numbered as the whole folder would be. On Ray, each worker loads the model
once and scores one item per call (the model and the inputs must be readable at the same paths
on every node: a shared file system, as archives on a cluster usually are); results come back in input order
and are written by this process. ``latency_ms`` of frames is measured where they are scored.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

IMAGES_PER_ITEM = 64


@dataclass(frozen=True)
class WorkItem:
    """One independent piece of scoring: ``kind`` is ``csv``, ``video`` or ``images``."""

    kind: str
    paths: tuple[str, ...]
    name: str              # the source name the local run would print
    first_index: int = 0   # images: the first frame's number in its folder


def work_items(model_kind: str, inputs: Sequence[str]) -> list[WorkItem]:
    """The work items of ``inputs`` for a ``sensor`` or ``image`` model, in input order; an input
    that does not exist or holds nothing to score is a ValueError naming it."""
    from vigil.runtime.camera.sources import IMAGE_EXTENSIONS, folder_files
    from vigil.runtime.sensor.tables import csv_files

    items: list[WorkItem] = []
    for spec in inputs:
        path = Path(spec)
        if not path.exists():
            raise ValueError(f"input {spec!r} does not exist; `vigil batch` takes CSV files or "
                             "folders (sensor models), image folders, images or videos (image "
                             "models)")
        if model_kind == "sensor":
            items += [WorkItem("csv", (str(p),), str(p)) for p in csv_files(spec)]
        elif path.is_dir():
            files = [str(p) for p in folder_files(path)]
            items += [WorkItem("images", tuple(files[i:i + IMAGES_PER_ITEM]), spec, i)
                      for i in range(0, len(files), IMAGES_PER_ITEM)]
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            items.append(WorkItem("images", (spec,), spec))
        else:
            items.append(WorkItem("video", (spec,), spec))
    return items


class Scorer:
    """Scores work items with one detector (a Ray Data worker holds one of these)."""

    def __init__(self, model: str, threads: int | None = 1,
                 threshold: float | None = None) -> None:
        from vigil.runtime import load

        self.detector = load(model, threads=threads)
        if threshold is not None:
            self.detector.threshold = threshold

    def score(self, item: WorkItem) -> tuple[str, dict]:
        """(the JSON lines of ``item``, its summary)."""
        from vigil.runtime.camera.scoring import score_frames
        from vigil.runtime.camera.sources import ImageFiles, VideoFile
        from vigil.runtime.sensor.scoring import score_source

        out = io.StringIO()
        if item.kind == "csv":
            summary = score_source(self.detector, item.paths[0], out)
        else:
            source = (ImageFiles([Path(p) for p in item.paths], item.name, item.first_index)
                      if item.kind == "images" else VideoFile(Path(item.paths[0])))
            try:
                summary = score_frames(self.detector, source, out)
            finally:
                source.close()
        return out.getvalue(), summary.to_json()

    def __call__(self, batch: dict) -> dict:
        """Ray Data's entry: a batch of JSON-encoded items in, their lines and summaries out."""
        lines, summaries = [], []
        for encoded in batch["item"]:
            text, summary = self.score(WorkItem(**json.loads(encoded)))
            lines.append(text)
            summaries.append(json.dumps(summary))
        return {"lines": lines, "summary": summaries}


def _bound_scorer(model: str, threads: int | None, threshold: float | None) -> type:
    """A ``Scorer`` class with its arguments built in: Ray Data then needs no constructor
    arguments (which it would keep in the object store, and warn about on every worker)."""
    class BoundScorer(Scorer):
        def __init__(self) -> None:
            super().__init__(model, threads, threshold)

    return BoundScorer


def score_locally(model: Path, items: Sequence[WorkItem], threads: int | None,
                  threshold: float | None) -> Iterator[tuple[str, dict]]:
    """The single-process path: every item in turn, in this process."""
    scorer = Scorer(str(model), threads, threshold)
    for item in items:
        yield scorer.score(item)


def score_on_ray(model: Path, items: Sequence[WorkItem], address: str | None,
                 workers: int | None, threads: int | None,
                 threshold: float | None) -> Iterator[tuple[str, dict]]:
    """Every item on Ray Data (a local Ray when ``address`` is None), in input order."""
    try:
        import ray
        import ray.data
    except ImportError:
        from vigil.runtime.core.report import MissingDependency

        raise MissingDependency("--ray needs Ray Data, which is not installed: "
                                "pip install 'vigil-edge[ray]'") from None
    for name in ("ray", "ray.data", "ray.data._internal.execution.streaming_executor"):
        logging.getLogger(name).setLevel(logging.ERROR)  # only our logger speaks; Ray's is off
    # Ray's core logs to stderr from C++; keep it to fatal errors unless the user set a level
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    started_here = not ray.is_initialized()
    if started_here:
        if address is None:
            ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        pool = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        dataset = ray.data.from_items([{"item": json.dumps(asdict(i))} for i in items],
                                      override_num_blocks=max(1, len(items)))
        scored = dataset.map_batches(
            _bound_scorer(str(model.resolve()), threads, threshold), batch_size=1, concurrency=min(pool, max(1, len(items))), num_cpus=1)
        for row in scored.iter_rows():
            yield row["lines"], json.loads(row["summary"])
    finally:
        if started_here:
            ray.shutdown()


def plan_batch(model: str | Path, inputs: Sequence[str]) -> list[WorkItem]:
    """The work items of ``inputs`` for ``model`` (checked: before any output is opened)."""
    from vigil.runtime import load
    from vigil.runtime.sensor.scoring import check_header

    detector = load(model)
    items = work_items(detector.spec.kind, inputs)
    if not items:
        raise ValueError(f"the inputs {list(inputs)} hold nothing to score")
    if detector.spec.kind == "sensor":
        for item in items:
            check_header(detector, item.paths[0])
    return items


def run_batch(model: str | Path, items: Sequence[WorkItem], out, use_ray: bool = False,
              ray_address: str | None = None, workers: int | None = None,
              threads: int | None = 1, threshold: float | None = None) -> dict:
    """Score ``items`` (``plan_batch``) with ``model`` and write their lines to ``out`` (a
    ``JsonLines``); returns the run's summary (items, lines, seconds, throughput, errors)."""
    model = Path(model)
    started = time.perf_counter()
    results = (score_on_ray(model, items, ray_address, workers, threads, threshold) if use_ray
               else score_locally(model, items, threads, threshold))
    totals = {"items": len(items), "lines": 0, "skipped": 0, "errors": []}
    for text, summary in results:
        for line in text.splitlines():
            out.write_line(line)  # written by the same JsonLines code in the worker
            totals["lines"] += 1
        totals["skipped"] += summary.get("rows_skipped", summary.get("skipped", 0)) or 0
        totals["errors"] += summary.get("errors", [])
    out.flush()
    seconds = time.perf_counter() - started
    return {"engine": ("ray " + (ray_address or "local")) if use_ray else "single process",
            **totals, "seconds": round(seconds, 3),
            "lines_per_s": round(totals["lines"] / seconds, 1) if seconds > 0 else None}
