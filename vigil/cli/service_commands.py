"""`vigil batch`, `serve`, `triton`, `health-check` and `bench`: scoring at scale, serving,
deployment checks and latency."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from vigil.cli.arguments import ray_took_a_path
from vigil.cli.shared import (EXIT_FAILURE, EXIT_INCOMPLETE, EXIT_INPUT, EXIT_INTERRUPTED,
                              EXIT_OK, EXIT_OUTPUT, PassedOver, check_keras_model, error_line,
                              incomplete_run, log, progress_for, refuse_other_kind,
                              refuse_outputs_in_image_folders, training_side, write_result)
from vigil.runtime.core.output import strict_json


def cmd_serve(args) -> int:
    from vigil.cli.serve import serve_forever

    if not 0 < args.max_request_mb <= 4096:
        raise ValueError(f"`--max-request-mb` must be > 0 and <= 4096; received "
                         f"{args.max_request_mb:g}")
    serve_forever(args.model, name=args.name, host=args.host, port=args.port,
                  replicas=args.replicas, threads=args.threads,
                  max_body_mb=args.max_request_mb, max_queued=args.max_queued,
                  expect_sha256=args.expect_sha256)
    return EXIT_OK


def cmd_batch(args) -> int:
    from vigil.runtime.core.interrupts import StopSignals

    # SIGTERM and Ctrl-C stop the batch between rows or frames; the item then being scored is
    # not written, so every item in the output is whole and --resume continues after them
    with StopSignals(), PassedOver() as passed:  # what folders pass over, for --strict
        args.passed_over = passed
        return _batch(args)


def _batch(args) -> int:
    from vigil.cli.batch import (Reading, Scorer, check_same_model, kept_problems, plan_batch,
                                 refuse_appending_again, resume_point, run_batch)
    from vigil.runtime import SensorSpec, load
    from vigil.runtime.core.interrupts import check
    from vigil.runtime.core.output import (JsonLines, OutputError, refuse_inputs_as_output,
                                           refuse_locked)

    given = [flag for flag, used in (("--append", args.append), ("--overwrite", args.overwrite),
                                     ("--resume", args.resume)) if used]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)} exclude each other; give one")
    if args.workers is not None and args.ray is None:
        raise ValueError(f"--workers {args.workers} applies to Ray workers; without --ray the "
                         "batch is scored in this process: add --ray (a local Ray) or leave "
                         "--workers out")
    if args.jsonl == "-" and args.resume:
        raise ValueError("--resume continues a results file, and `--jsonl -` is standard "
                         "output, which cannot be read back: give --jsonl a file")
    if args.jsonl == "-" and args.ray is not None:
        raise ValueError("with --ray, Ray's own processes print to standard output too, so "
                         "`--jsonl -` would mix their messages into the results: give --jsonl a "
                         "file (or a named pipe, made with mkfifo, to stream them)")
    took = ray_took_a_path(["--ray", args.ray]) if args.ray not in (None, "local") else ""
    if took:
        raise ValueError(took)
    relative = [given for given in args.inputs if not Path(given).is_absolute()]
    if args.ray not in (None, "local") and relative:
        # a cluster's workers read each input by its path on their own node, from their own
        # working folder: a relative path there names nothing, and every item would be skipped
        raise ValueError(f"--ray {args.ray}: the workers read the inputs by path on their own "
                         f"nodes, so relative paths ({relative[0]!r}) name nothing there; give "
                         f"absolute paths every node can read (e.g. "
                         f"{str(Path(relative[0]).resolve())!r}), or --ray alone for a local Ray")
    reading = Reading(threshold=args.threshold, decimal=args.decimal,
                      header=tuple(args.columns) if args.columns else None,
                      likelihood=args.likelihood, expect_sha256=args.expect_sha256)
    # nothing is in flight while planning: a stop request ends it between steps, inputs, files
    # and results lines (plan_batch, _results)
    detector = load(args.model, expect_sha256=args.expect_sha256)
    check()
    items = plan_batch(args.model, args.inputs, reading,  # the inputs are known good first
                       check=lambda kind, given: refuse_other_kind(args.model, kind, given),
                       detector=detector)
    if detector.spec.kind == "image":
        # a folder of recordings reads only videos and images: other files are not frames
        refuse_outputs_in_image_folders(args, [
            given for given in args.inputs if Path(given).is_dir()
            and not any(i.kind == "video" and i.given == given for i in items)])
    refuse_inputs_as_output(args.jsonl, [args.model, *args.inputs,
                                         *[p for i in items for p in i.paths]], "--jsonl")
    window = detector.spec.window if isinstance(detector.spec, SensorSpec) else None
    resumed = None
    if args.resume:
        refuse_locked(args.jsonl)  # before its lines are read and checked again
        resumed = resume_point(args.jsonl, items, window, header=not args.columns)
        check()
        check_same_model(args.jsonl, items, Scorer(args.model, args.threads, reading))
    elif args.append and args.jsonl != "-":
        refuse_appending_again(args.jsonl, items)  # before the file is opened
    if resumed:
        log.info("--resume: %d of %d items are in %s whole (%d lines); scoring from %s%s",
                 resumed.items_done, len(items), args.jsonl, resumed.lines_kept,
                 items[resumed.items_done].name if resumed.items_done < len(items) else "none",
                 f", whose {resumed.lines_cut} lines are written again" if resumed.lines_cut
                 else "")
    mode = "append" if args.append or resumed else "overwrite" if args.overwrite else "new"
    if mode == "new" and not args.resume and os.path.isfile(args.jsonl) \
            and os.path.getsize(args.jsonl) > 0:
        # JsonLines' own refusal names --append, which after an interrupted batch would write
        # every item's lines again after those already there
        raise ValueError(f"`--jsonl` {args.jsonl!r} already holds {os.path.getsize(args.jsonl)} "
                         "bytes of results: add --resume to continue the batch that wrote it "
                         "(the items already written are not scored again), or --overwrite to "
                         "replace it")
    check()  # a stop request while the inputs were checked: no output is opened for it
    with JsonLines(args.jsonl, mode=mode, keep=resumed.keep_bytes if resumed else None) as out, \
            progress_for(args) as progress:
        try:
            summary = run_batch(args.model, items[resumed.items_done:] if resumed else items,
                                out, use_ray=args.ray is not None,
                                ray_address=None if args.ray in (None, "local") else args.ray,
                                workers=args.workers, threads=args.threads, reading=reading,
                                progress=progress)
        except KeyboardInterrupt:
            out.flush()  # the whole items' lines
            if args.jsonl == "-":
                advice = ("standard output cannot be resumed: give --jsonl a file to continue "
                          "a batch with --resume")
            elif out.lines_written == 0 and not (resumed and resumed.lines_kept):
                advice = f"{args.jsonl} is as it was; run the same command again"
            elif args.append:
                advice = ("they follow the file's earlier lines, so --resume cannot tell this "
                          "run's items apart: append the rest by giving the inputs not yet "
                          "scored")
            else:
                advice = ("to continue, run the same command with --resume"
                          + (" in place of --overwrite" if args.overwrite else "")
                          + " (the items already written are not scored again)")
            error_line(f"interrupted after {out.lines_written} lines were written to "
                        f"{args.jsonl}; {advice}", args.log_json)
            return EXIT_INTERRUPTED
        except OutputError as error:  # a full disk: the items before the failed one are whole
            error_line(f"{error}; once there is room, the same command with --resume "
                        "continues after the items written whole", args.log_json)
            return EXIT_OUTPUT
        out.commit()  # every input was read: the output exists even without a line
    files_before = 0
    problems_before: list[str] = []
    if resumed:
        files_before, problems_before = kept_problems(items[:resumed.items_done], window,
                                                      header=not args.columns)
        summary["resumed"] = {"items_done_before": resumed.items_done,
                              "lines_kept": resumed.lines_kept, "lines_cut": resumed.lines_cut,
                              "files_skipped_before": files_before,
                              "errors_before": problems_before}
    from vigil.runtime.core.artifact import sha256_of

    # the model that made the lines: as each item's detector loaded it (not the file as it is
    # now, which may have been replaced since); two where it was replaced under the batch
    made_by = summary.pop("model_sha256", None) or [sha256_of(args.model)]
    model = {"path": str(Path(args.model).absolute()),
             "sha256": made_by[0] if len(made_by) == 1 else made_by}
    print(strict_json({"summary": summary, "model": model}), file=sys.stderr)
    if summary["lines"] and summary["skipped"] == summary["lines"]:
        error_line(f"nothing could be scored: all {summary['lines']} lines are skipped rows or "
                    f"frames, each with its reason", args.log_json)
        return EXIT_INPUT
    if args.strict:  # this run's items and, resumed, those of the items and lines the file kept
        note = incomplete_run(summary["files_skipped"] + files_before,
                              summary["skipped"] + (resumed.skipped_kept if resumed else 0),
                              ("row or frame", "rows or frames"),
                              problems_before + summary["errors"], args.passed_over.count)
        if note is not None:
            error_line(note, args.log_json)
            return EXIT_INCOMPLETE
    return EXIT_OK


def cmd_health_check(args) -> int:
    from vigil.runtime.core.health import health_verdict

    verdict = health_verdict(args.health, args.max_age, args.max_idle, args.max_unscored)
    if verdict.problem is not None:
        error_line(f"unhealthy: {verdict.problem}", args.log_json)
        return EXIT_FAILURE
    if verdict.finished:  # at its source's end or on request: no fault
        print(f"finished: {args.health} (stopped: {verdict.finished}; not to be restarted)")
    else:
        print(f"healthy: {args.health}")
    return EXIT_OK


def cmd_triton(args) -> int:
    from vigil.export.triton import write_triton_repository

    folder = write_triton_repository(args.model, args.repository, name=args.name,
                                     max_batch_size=args.max_batch_size,
                                     cpu_instances=args.cpu_instances)
    print(json.dumps({"model_repository": str(Path(args.repository)), "model": folder.name,
                      "config": str(folder / "config.pbtxt"),
                      "gpu_config": str(folder / "configs" / "gpu.pbtxt")}, indent=2))
    return EXIT_OK


def cmd_bench(args) -> int:
    from vigil.benchmarks.bench import BenchOptions, bench, compare, refuse_other_keras
    from vigil.benchmarks.bench_report import write_bench_report
    from vigil.runtime.core.report import json_text, pyplot

    if args.report:
        pyplot()  # a missing plotting library is known before the measurements, not after
    if args.compare:
        if args.models or args.against or args.input:
            given = [*args.models, *(["--against"] if args.against else []),
                     *(["--input"] if args.input else [])]
            raise ValueError(f"--compare merges earlier `vigil bench --json` results and times "
                             f"nothing, so {', '.join(given)} would be ignored: run `vigil bench "
                             f"MODEL.onnx --json OUT.json` first, then --compare the JSON files")
        result = compare(args.compare)
    else:
        if not args.models:
            raise ValueError("`vigil bench` needs MODEL.onnx (one or more) or --compare A.json ...")
        if args.decimal != "." and not args.input:
            raise ValueError("--decimal applies to an --input CSV; without --input `vigil bench` "
                             "times generated inputs: add --input DATA.csv or leave --decimal out")
        if args.against:
            check_keras_model(args.against, "--against")
            training_side("bench --against")
            refuse_other_keras(args.models, args.against)
        with progress_for(args) as progress:
            result = bench(args.models, BenchOptions(
                batches=args.batch, threads=args.threads, devices=args.device,
                seconds=args.seconds, input=args.input, decimal=args.decimal,
                against=args.against, cold_start=not args.no_cold_start,
                # a CSV for an image model, images for a sensor one: said as `score` says it
                check_input=refuse_other_kind), progress=progress)
    text = json_text(result)
    print(text, flush=True)  # first: the measurements are kept if a file cannot be written
    if args.json:
        write_result(args.json, text)
    if args.report:
        print(f"report: {write_bench_report(result, args.report)}", file=sys.stderr)
    return EXIT_OK
