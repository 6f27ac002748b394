"""`vigil score` and `vigil eval`: a source scored, or labeled data measured, through the
runtime alone (never TensorFlow)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from vigil.cli.arguments import reconnect_limit
from vigil.cli.shared import (EXIT_FAILURE, EXIT_INCOMPLETE, EXIT_INPUT, EXIT_OK, EXIT_OUTPUT,
                              PassedOver, error_line, incomplete_run, likelihood_option, log, progress_for, refuse_other_kind,
                              refuse_outputs_in_image_folders, write_result)
from vigil.runtime.core.output import strict_json


IMAGE_FLAGS = ("overlay_dir", "overlay_all", "overlay_video", "show", "max_frames",
               "reconnect_attempts", "pixel_threshold")


def _check_outputs(args, inputs: list) -> None:
    """Refuse an output path that is the model or an input: writing there would destroy it."""
    from vigil.runtime.core.output import refuse_inputs_as_output, same_file

    inputs = [args.model, *inputs]
    refuse_inputs_as_output(args.jsonl, inputs, "--jsonl")
    outputs = {"--health": args.health, "--overlay-video": getattr(args, "overlay_video", None),
               "--state": getattr(args, "state", None)}
    for flag, path in outputs.items():
        if path not in (None, "-"):
            refuse_inputs_as_output(path, inputs, flag)
            if args.jsonl not in (None, "-") and same_file(path, args.jsonl):
                raise ValueError(f"`{flag}` and `--jsonl` name the same file {path!r}")
    state, health = getattr(args, "state", None), args.health
    if state is not None and health not in (None, "-") and same_file(state, health):
        raise ValueError(f"`--state` and `--health` name the same file {state!r}; give each its "
                         "own")


def _open_outputs(args, detector, live: bool, health=None):
    """The results writer, health reporter and MQTT publisher that --jsonl,
    --append/--overwrite, --on-output-error, --health and --mqtt ask for (after the source is
    known good)."""
    from vigil.runtime.core.health import HealthReporter
    from vigil.runtime.core.output import JsonLines

    publisher = None
    if args.mqtt is not None:
        from vigil.runtime.core.mqtt import MqttPublisher

        from vigil.runtime.core.redact import redact

        publisher = MqttPublisher(args.mqtt, buffer=args.mqtt_buffer,
                                  client_id=args.mqtt_client_id, source=redact(str(args.source)))
    if health is None and (args.health or publisher is not None):
        # validated before the results file is touched; with --mqtt alone, reports go only there
        health = HealthReporter(args.health, args.health_interval, model=detector, exclusive=True)
    mode = "append" if args.append else "overwrite" if args.overwrite else "new"
    out = JsonLines(args.jsonl, on_error=args.on_output_error, live=live, mode=mode)
    if publisher is not None:
        out.mirror = publisher.publish_line
        health.mirror = publisher.publish_health
        health.sections["mqtt"] = publisher.stats
        publisher.start()
    return out, health, publisher


def _close_publisher(publisher, health=None) -> dict | None:
    """Close the MQTT publisher once what is pending is acknowledged; the run's final health
    report is written (and published) again then, with the publisher's counts after draining
    (written at the run's end, it counted the results still in flight as pending)."""
    if publisher is None:
        return None
    publisher.drain()
    if health is not None:
        health.write()
        health.release()  # the run's last write: another run may have the file now
    return publisher.close(timeout_s=2.0)


def _finish(args, summary, mqtt: dict | None = None, detector=None) -> int:
    """Print the summary (the model that made the lines, the MQTT publisher's counts); the exit
    code its ending calls for."""
    model = ({"model": {"path": str(detector.path), "sha256": detector.sha256}}
             if detector is not None else {})
    print(strict_json({"summary": summary.to_json(), **model,
                       **({"mqtt": mqtt} if mqtt else {})}), file=sys.stderr)
    if summary.stopped == "output_failed" or (summary.lines_lost
                                               and summary.stopped != "interrupted"):
        error_line(summary.last_error if summary.stopped == "output_failed" else
                    f"{summary.lines_lost} result lines could not be written; "
                    f"{summary.lines_written} were", args.log_json)
        return EXIT_OUTPUT
    if summary.stopped == "source_lost":
        error_line(summary.last_error, args.log_json)
        return EXIT_FAILURE
    from vigil.runtime.camera.scoring import FrameSummary
    from vigil.runtime.sensor.scoring import ScoreSummary

    if (isinstance(summary, ScoreSummary) and summary.rows
            and summary.rows_skipped == summary.rows and summary.stopped == "end"):
        error_line(f"no row could be scored: all {summary.rows} were skipped (the last: "
                    f"{summary.last_error}); each has its line with the reason", args.log_json)
        return EXIT_INPUT
    if (isinstance(summary, FrameSummary) and summary.frames_in
            and summary.skipped == summary.frames_in and summary.stopped == "end"):
        error_line(f"no frame could be scored: all {summary.frames_in} were skipped (the last: "
                    f"{summary.last_error}); each has its line with the reason", args.log_json)
        return EXIT_INPUT
    if getattr(args, "strict", False) and summary.stopped in ("end", "max_frames"):
        sensor = isinstance(summary, ScoreSummary)
        passed = getattr(args, "passed_over", None)
        note = incomplete_run(summary.files_skipped if sensor else 0,
                              summary.rows_skipped if sensor else summary.skipped,
                              ("row", "rows") if sensor else ("frame", "frames"),
                              summary.errors if sensor else [],
                              passed.count if passed is not None else 0)
        if note is not None:
            error_line(note, args.log_json)
            return EXIT_INCOMPLETE
    return EXIT_OK


def cmd_score(args) -> int:
    from vigil.runtime.core.interrupts import StopSignals

    if args.append and args.overwrite:
        raise ValueError("--append and --overwrite exclude each other; give one")
    _refuse_orphan_flags(args)
    # SIGTERM and Ctrl-C stop the run at the next safe point (between rows or frames, or at
    # once while waiting for input or a connection), so every input read has its line.
    with StopSignals(), PassedOver() as passed:  # what folders pass over, for --strict
        args.passed_over = passed
        try:
            return _score(args)
        except Exception as error:  # (a stop request before the start is no failure)
            report_failed_start(args, error)
            raise


def report_failed_start(args, error: Exception) -> None:
    """A run refused before its health reports began (a model refused, a source missing) left
    an earlier run's final report in place, which a watchdog reads as finished however old: it
    is replaced by this run's failure (a review restarted a scorer with a refused model). A
    report of a scorer still running there is left alone."""
    if not args.health or args.health == "-":
        return
    from vigil.runtime.core.health import HealthReporter, process_identity

    try:
        previous = json.loads(Path(args.health).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict) or "vigil_health" not in previous \
            or previous.get("status") != "stopped":
        return  # none to replace (no file: a fault already), or a scorer running there
    here = process_identity()
    if (previous.get("process") == here) if here is not None \
            else previous.get("pid") == os.getpid():
        return  # this run's own final report (a pid alone repeats: a container's pid 1)
    try:
        reporter = HealthReporter(args.health, args.health_interval)
    except ValueError:  # the --health path itself was what failed
        return
    reporter.stop("error", f"the run was refused before it began: {error}")


def _refuse_orphan_flags(args) -> None:
    """ValueError for a `vigil score` flag given without the one it qualifies (it would do
    nothing, and the user would think it did)."""
    orphans = [(flag, needs) for flag, given, needs, present in (
        ("--append", args.append, "--jsonl FILE", args.jsonl),
        ("--overwrite", args.overwrite, "--jsonl FILE", args.jsonl),
        ("--health-interval", args.health_interval != 10.0, "--health PATH or --mqtt URL",
         args.health or args.mqtt),
        ("--mqtt-buffer", args.mqtt_buffer != 10_000, "--mqtt URL", args.mqtt),
        ("--mqtt-client-id", args.mqtt_client_id is not None, "--mqtt URL", args.mqtt),
        ("--overlay-all", args.overlay_all, "--overlay-dir DIR", args.overlay_dir),
    ) if given and not present]
    if orphans:
        flag, needs = orphans[0]
        where = " (the results go to stdout)" if needs.startswith("--jsonl") else ""
        raise ValueError(f"{flag} applies only with {needs}, which is not given{where}; add "
                         f"{needs} or leave {flag} out")


def _score(args) -> int:
    from vigil.runtime import ImageDetector, load
    from vigil.runtime.sensor.learned_state import LearnedStateFile, check_state_path
    from vigil.runtime.sensor.scoring import check_source, score_source
    from vigil.runtime.sensor.tables import csv_files

    detector = load(args.model, providers=args.device, threads=args.threads,
                    expect_sha256=args.expect_sha256)
    if args.threshold is not None:
        detector.threshold = args.threshold
    likelihood_option(args, detector)
    if isinstance(detector, ImageDetector):
        if args.pixel_threshold is not None:
            detector.pixel_threshold = args.pixel_threshold
        return _score_frames(args, detector)
    given = [f"--{name.replace('_', '-')}" for name in IMAGE_FLAGS  # 0 is a value given too
             if getattr(args, name) is not None and getattr(args, name) is not False]
    if given:
        raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to image "
                         f"models; {args.model!r} is a sensor model")
    live = args.source == "-"
    if args.state is not None:
        check_state_path(args.state)  # before any output is opened
    if not live:
        refuse_other_kind(args.model, "sensor", args.source)
    _check_outputs(args, [] if live else csv_files(args.source, "source"))  # the source first: it exists
    if not live:
        # before the results file, the health report or the broker is touched
        check_source(detector, args.source, list(args.columns) if args.columns else None,
                     args.decimal)
    # its lock first: a file another run holds is refused before any output is opened
    state = LearnedStateFile(args.state, detector) if args.state is not None else None
    try:
        out, health, publisher = _open_outputs(args, detector, live)
    except BaseException:
        if state is not None:
            state.close()
        raise
    try:
        with progress_for(args) as progress:  # a long file's MB read, on stderr
            summary = score_source(detector, args.source, out, health=health,
                                   decimal=args.decimal,
                                   header=list(args.columns) if args.columns else None,
                                   state=state, progress=progress)
    finally:
        try:
            out.close()
        finally:
            mqtt = _close_publisher(publisher, health)
            if state is not None:
                state.close()
    return _finish(args, summary, mqtt, detector)


def _score_frames(args, detector) -> int:
    from vigil.runtime.camera.scoring import (FrameScoringOptions, FrameSummary,
                                              preview_unavailable, score_frames)
    from vigil.runtime.camera.sources import (ImageFiles, ReconnectPolicy, SourceOptions,
                                              SourceError, VideoFile, live_target, open_source,
                                              prefetched, redact)
    from vigil.runtime.core.health import HealthReporter

    given = [flag for flag, used in (("--columns", bool(args.columns)),
                                      ("--decimal", args.decimal != "."),
                                      ("--state", args.state is not None)) if used]
    if given:
        raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to sensor "
                         f"models; {args.model!r} is an image model")
    refuse_other_kind(args.model, "image", args.source)
    if args.show and preview_unavailable():
        raise ValueError(preview_unavailable())
    options = FrameScoringOptions(overlay_dir=args.overlay_dir, overlay_all=args.overlay_all,
                                  overlay_video=args.overlay_video, show=args.show,
                                  max_frames=args.max_frames)
    attempts = args.reconnect_attempts  # None: not given
    reconnect = ReconnectPolicy(max_attempts=reconnect_limit(attempts))
    health = None
    if args.health and live_target(args.source) is not None:
        # Connecting may take many attempts: the health report says so while it goes on.
        _check_outputs(args, [])
        health = HealthReporter(args.health, args.health_interval, model=detector,
                                exclusive=True)
        health.connecting("frames", redact(args.source))
    try:
        opened = open_source(args.source, SourceOptions(reconnect=reconnect))
        if isinstance(opened, ImageFiles):
            _check_frames(opened.paths, args)  # before any output is made or emptied
        elif isinstance(opened, VideoFile):
            try:
                opened.check()
            except SourceError:
                opened.close()
                raise
        if not opened.live and attempts is not None:
            log.warning("--reconnect-attempts applies to live sources (a camera index, an "
                        "rtsp/http URL); %r is read once, not reconnected", args.source)
        source = prefetched(opened)
    except KeyboardInterrupt:
        summary = FrameSummary(source=redact(args.source), stopped="interrupted")
        if health is not None:
            health.stop("interrupted")
        return _finish(args, summary, detector=detector)
    except BaseException as error:
        if health is not None:
            health.stop("error", str(error))
        raise
    try:
        if isinstance(opened, ImageFiles) and Path(args.source).is_dir():
            refuse_outputs_in_image_folders(args, [args.source])
        _check_outputs(args, _source_files(source))
        out, health, publisher = _open_outputs(args, detector, live=source.live, health=health)
    except BaseException as error:
        source.close()
        if health is not None:  # a live source's report said `connecting`: the run was refused
            health.stop("interrupted" if isinstance(error, KeyboardInterrupt) else "error",
                        None if isinstance(error, KeyboardInterrupt) else str(error))
        raise
    try:
        summary = score_frames(detector, source, out, options, health=health)
    finally:
        source.close()
        try:
            out.close()
        finally:
            mqtt = _close_publisher(publisher, health)
    return _finish(args, summary, mqtt, detector)


def _check_frames(paths: list, args) -> None:
    """SourceError unless one of an image source's files decodes; videos in it (which are not
    frames) are named with the commands that score them."""
    from vigil.runtime.camera.sources import VIDEO_EXTENSIONS, SourceError, check_images

    videos = [Path(p) for p in paths if Path(p).suffix.lower() in VIDEO_EXTENSIONS]
    fix = (f"score a video on its own (vigil score {args.model} {videos[0]}) or the folder, "
           f"videos included, with vigil batch {args.model} {args.source} --jsonl OUT"
           if videos else "")
    try:
        check_images(paths, args.source)
    except SourceError as error:
        if not videos:
            raise
        raise SourceError(f"{error}; it holds {len(videos)} video(s): {fix}") from None
    if videos:
        log.warning("%s: %d video(s) in it (e.g. %s) are not frames: each gets an 'unusable' "
                    "line; %s", args.source, len(videos), videos[0].name, fix)


def _source_files(source) -> list:
    """The files a frame source reads (images or a video), to keep outputs off them."""
    inner = getattr(source, "inner", source)
    return list(getattr(inner, "paths", [])) + ([inner.path] if hasattr(inner, "path") else [])


def _eval_images(args, detector) -> int:
    from vigil.runtime.camera.evaluation import evaluate_images, test_items
    from vigil.runtime.camera.report import write_image_report
    from vigil.runtime.core.report import json_text

    given = [flag for flag, used in (("--labels", args.labels is not None),
                                      ("--label-column", args.label_column is not None),
                                      ("--decimal", args.decimal != "."),
                                      ("--no-threshold-search", args.no_threshold_search))
             if used]
    if given:
        raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to sensor "
                         f"models; {args.model!r} is an image model (its labels are the "
                         "folders: an MVTec AD category, or --normal and --anomalous)")
    items = test_items(args.data, args.normal, args.anomalous, args.masks)
    with progress_for(args) as progress:
        result, scored = evaluate_images(detector, items, progress=progress)
    unmasked = result["pixel_unmasked_defects"]
    where = ("ground_truth/<defect>/NAME_mask.png, NAME.png beside NAME.jpg, or --masks DIR with "
             "NAME.png or NAME_mask.png")
    if unmasked and unmasked < result["anomalous"]:
        log.warning("%d defect image(s) have no mask and are left out of pixel_auroc and pro "
                    "(their defect pixels are unknown); give their masks (%s)", unmasked, where)
    elif unmasked:  # image labels only (as ELPV's): nothing is missing that was meant to be there
        log.info("no defect image has a mask: image metrics only (pixel metrics need masks: %s)",
                 where)
    keys = ("image_auroc", "pixel_auroc", "pro", "f1", "precision", "recall", "threshold",
            "box_hit_rate", "box_precision", "false_positive_rate")
    print(json_text({k: result.get(k) for k in keys}), flush=True)  # first: kept if a file fails
    if args.json:
        write_result(args.json, json_text(result))
    if args.report:
        report = write_image_report(result, scored, detector, args.report, args.model,
                                    _typed_data(args))
        print(f"report: {report}", file=sys.stderr)
    return EXIT_OK


def _typed_data(args) -> str:
    """The data arguments of an image `vigil eval` as typed, for the commands a report suggests."""
    parts = [args.data]
    for flag, values in (("--normal", args.normal), ("--anomalous", args.anomalous),
                         ("--masks", args.masks or ())):
        for value in values:
            parts += [flag, value]
    return shlex.join(str(part) for part in parts)


def _typed_rows(args) -> str:
    """The data and label options of a sensor `vigil eval` as typed, for the commands its report
    suggests (a review's NAB report offered one without --labels, which was refused)."""
    parts = [args.data]
    if args.labels:
        parts += ["--labels", args.labels]
    if args.label_column:
        parts += ["--label-column", args.label_column]
    if args.decimal and args.decimal != ".":
        parts += ["--decimal", args.decimal]
    if not args.likelihood:
        parts.append("--no-likelihood")
    return shlex.join(str(part) for part in parts)


MOSTLY_ALARMED = 0.5  # `vigil eval` warns where the alarm was on for this share of normal rows


def cmd_eval(args) -> int:
    from vigil.runtime import ImageDetector, load
    from vigil.runtime.sensor.evaluation import evaluate
    from vigil.runtime.core.report import json_text

    if args.report:  # before any work: a missing plotting library is known now, not at the end
        from vigil.runtime.core.report import pyplot

        pyplot()
    detector = load(args.model, providers=args.device, threads=args.threads)
    if args.threshold is not None:
        detector.threshold = args.threshold
    likelihood_option(args, detector)
    refuse_other_kind(args.model, "image" if isinstance(detector, ImageDetector) else "sensor",
                       args.data)
    if isinstance(detector, ImageDetector):
        if args.pixel_threshold is not None:
            detector.pixel_threshold = args.pixel_threshold
        return _eval_images(args, detector)
    if args.pixel_threshold is not None:
        raise ValueError(f"--pixel-threshold applies to image models; {args.model!r} is a sensor "
                         "model")
    if args.normal or args.anomalous or args.masks:
        raise ValueError(f"--normal, --anomalous and --masks are for image models; {args.model} "
                         "is a sensor model (its labels come from --label-column or --labels)")
    from vigil.runtime.sensor.labels import read_labels

    labels = read_labels(args.labels) if args.labels else None
    with progress_for(args) as progress:
        label_column = args.label_column or detector.spec.label_column or "anomaly"
        result, files = evaluate(detector, args.data, label_column=label_column,
                                 labels=labels, decimal=args.decimal, progress=progress,
                                 threshold_search=not args.no_threshold_search)
    keys = ("precision", "recall", "f1", "auroc", "auprc", "event_f1", "point_adjusted_f1",
            "far", "mar", "threshold")
    print(json_text({k: result.get(k) for k in keys}), flush=True)  # first: kept if a file fails
    far = result.get("far")
    if isinstance(far, float) and far >= MOSTLY_ALARMED:
        log.warning("the alarm was on for %.0f %% of the rows labeled normal (far %.3f): recall "
                    "and event F1 count a detector that always alarms as perfect, so read them "
                    "beside far. Either the model does not fit these rows (trained on another "
                    "machine or regime: train one on this one's normal rows) or its threshold "
                    "lies below their scores (--threshold N to try another; --json's "
                    "alarm_best_f1_threshold is the best under the alarm rule on these labels, "
                    "found unless --no-threshold-search)", 100 * far, far)
    if args.json:
        write_result(args.json, json_text(result))
    if args.report:
        from vigil.runtime.sensor.report import write_report

        print(f"report: {write_report(result, files, args.report, args.model, _typed_rows(args))}",
              file=sys.stderr)
    return EXIT_OK


def cmd_inspect(args) -> int:
    """What an artifact holds, read (and checked) as `vigil score` loads it."""
    from vigil.runtime import load
    from vigil.runtime.core.artifact import CONTENT_DIGEST_KEY
    from vigil.runtime.core.report import json_text
    from vigil.runtime.core.spec import SensorSpec
    from vigil.runtime.sensor.streaming import STEADY_FACTOR, STEADY_MIN_ROWS
    from vigil.cli.log_format import printable

    detector = load(args.model, threads=1)
    spec = detector.spec
    metadata = detector.metadata  # as loading read and checked it
    digest = metadata.get(CONTENT_DIGEST_KEY)
    size = detector.path.stat().st_size
    if args.json:  # the entry as written (its digest too), as the loader read and checked it
        print(json_text({"path": str(detector.path), "bytes": size, "sha256": detector.sha256,
                         "content": "as exported" if digest else "not recorded",
                         "metadata": metadata}))
        return EXIT_OK
    lines = [f"{detector.path}: a Vigil {spec.kind} artifact, {spec.precision}, {size:,} bytes, "
             f"sha256 {detector.sha256}",
             "content: as exported (its recorded digest matches)" if digest else
             "content: not checked (exported before artifacts recorded their digest)"]
    if isinstance(spec, SensorSpec):
        lines.append(f"input: windows of {spec.window} rows of {len(spec.features)} features "
                     f"({', '.join(spec.features)}), stride {spec.stride}"
                     + (f", time column {spec.time_column!r}" if spec.time_column else ""))
        rule = [f"{spec.consecutive} window(s) above it to alarm", f"hold {spec.hold}"]
        rule += [f"re-arm {spec.rearm}"] if spec.rearm else []
        rule += [f"an adaptive threshold (max of it and {spec.adaptive.rule}, after "
                 f"{spec.adaptive.warmup} scores)" if spec.adaptive else "a fixed threshold"]
        if spec.likelihood:
            floor = spec.likelihood.level_warmup
            rule += ["HTM's anomaly likelihood beside it" + (
                f", its long-run level a floor under the threshold after {floor} means"
                if floor is not None else "")]
        rule += ["running normalization"] if spec.running_normalization else []
        if spec.steady_runs:
            rule += [f"readings unchanged for {STEADY_FACTOR}x their longest run in training "
                     f"(at least {STEADY_MIN_ROWS} rows) flagged"]
        lines.append(f"threshold: {spec.threshold.value:.6g} ({spec.threshold.method}); alarm "
                     f"rule: {', '.join(rule)}")
    else:
        lines.append(f"input: frames {spec.width}x{spec.height}, {spec.color}, {spec.resize} "
                     f"({spec.interpolation})")
        lines.append(f"threshold: {spec.threshold.value:.6g} ({spec.threshold.method}); pixel "
                     f"threshold {spec.pixel_threshold.value:.6g}")
    files = spec.training.get("files")
    # a record's entries are a vendor's: an entry or a count of another form is left uncounted
    # (one of strings ended inspect in an AttributeError; review r3)
    rows = [f.get("rows") for f in files if isinstance(f, dict)] if isinstance(files, list) else []
    counted = [r for r in rows if isinstance(r, int) and not isinstance(r, bool)]
    trained = ([f"{len(files)} file(s)" + (f", {sum(counted):,} rows" if counted else "")]
               if isinstance(files, list) and files else [])
    if "images" in spec.training:  # and the normal ones held out to set the threshold
        held_out = spec.training.get("validation_normal")
        trained.append(f"{spec.training['images']} images"
                       + (f" (and {held_out} normal ones held out to set the threshold)"
                          if isinstance(held_out, int) and held_out else ""))
    if trained:
        lines.append("trained on: " + "; ".join(trained))
    recorded_model = spec.training.get("model")
    model = recorded_model if isinstance(recorded_model, dict) else {}
    if spec.training.get("mode") == "supervised":  # its score is a logit, not a normal model's
        architecture = str(model.get("architecture", "lstm"))
        cell = "GRU" if architecture.startswith("gru") else "LSTM"
        labeled = spec.training.get("labeled_anomalous_windows")
        lines.append(f"model: a supervised {cell} classifier (--supervised), trained on "
                     f"{labeled if labeled is not None else 'an unrecorded number of'} labeled "
                     f"anomalous windows; the score is its logit that a window's last row is "
                     f"anomalous")
    elif spec.kind == "image":
        # an image record keeps its architecture beside the model's settings (a review: U-Net
        # and feature artifacts looked alike, where the default changed between them); 0.2's
        # records name none: they were U-Nets
        architecture = str(spec.training.get("architecture", "unet"))
        recorded_features = model.get("features")
        features = recorded_features if isinstance(recorded_features, dict) else model
        levels = features.get("levels")
        recorded_backbone = features.get("backbone")
        backbone = recorded_backbone.get("name") if isinstance(recorded_backbone, dict) else None
        lines.append(f"model: {architecture}" + (
            f" ({backbone}, stages {','.join(map(str, levels))}, a bank of "
            f"{features.get('bank')} entries)" if backbone and isinstance(levels, list) else ""))
    elif model.get("architecture"):
        members = model.get("members")
        lines.append(f"model: {model['architecture']}" + (
            f", {members} networks averaged" if isinstance(members, int) and members > 1 else "")
            + (" (normal-only training)" if spec.kind == "sensor" else ""))
    lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in sorted(spec.versions.items())))
    lines.append(f"all of it: vigil inspect {args.model} --json")
    # names and texts from the file, shown as text: a terminal's escape sequences among them
    # (a review's feature named with ESC [31m coloured the operator's terminal) are escaped
    print("\n".join(printable(line) for line in lines))
    return EXIT_OK
