"""`vigil batch`: archives re-scored in this process or on a local Ray (2 CPUs), writing exactly
the lines `vigil score` writes for the same inputs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import require
from vigil.cli import batch as batch_module
from vigil.runtime import load
from vigil.runtime.core.spec import ArtifactError
from vigil.cli import commands as cli


def _lines(path, drop=("latency_ms",)):
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


@pytest.fixture
def csv_folder(sensor_artifacts, tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    text = sensor_artifacts.test_csv.read_text().splitlines()
    for n, rows in enumerate((text[:900], text[:1] + text[600:1500], text[:1] + text[200:700])):
        (folder / f"day{n}.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for n in range(7):
        cv2.imwrite(str(folder / f"{n:03d}.png"), rng.integers(0, 255, (32, 32), np.uint8))
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


def test_batch_in_this_process_writes_what_score_writes(sensor_artifacts, csv_folder, tmp_path,
                                                        capsys):
    model = str(sensor_artifacts.fp32)
    assert cli.main(["score", model, str(csv_folder), "--jsonl", str(tmp_path / "s.jsonl")]) == 0
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(tmp_path / "b.jsonl")]) == 0
    assert (tmp_path / "b.jsonl").read_text() == (tmp_path / "s.jsonl").read_text()
    last = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    summary = last["summary"]
    assert summary["engine"] == "single process" and summary["items"] == 3
    assert last["model"] == {"path": model, "sha256": load(model).sha256}


def test_batch_takes_a_sha256_pin_and_refuses_another_file_before_any_output(
        sensor_artifacts, csv_folder, tmp_path, monkeypatch, capsys):
    """`--expect-sha256`, as `vigil score` has it; each worker checks the file it loads, so one
    deployed over the pinned file mid-batch stops the batch."""
    model = str(sensor_artifacts.fp32)
    digest = load(model).sha256
    out = tmp_path / "b.jsonl"
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out),
                     "--expect-sha256", "0" * 64]) == cli.EXIT_ARTIFACT
    assert f"expected {'0' * 64}" in capsys.readouterr().err and not out.exists()
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out),
                     "--expect-sha256", digest]) == 0
    assert out.read_text().count("\n") > 0
    # a worker that loads another file (deployed over the pinned one after planning) refuses it
    with pytest.raises(ArtifactError, match="expected " + "0" * 64):
        batch_module.Scorer(model, reading=batch_module.Reading(expect_sha256="0" * 64))


def test_a_long_csv_item_says_how_much_of_it_was_read(sensor_artifacts, csv_folder, tmp_path,
                                                      monkeypatch, capsys):
    """Within one long item (a month of readings in one CSV), the batch says the MB read of it,
    as `vigil score` does of a long file; short items say nothing of their own."""
    from vigil.runtime.sensor import scoring

    big = csv_folder / "day1.csv"  # the largest of the three
    assert big.stat().st_size > max((csv_folder / f"day{n}.csv").stat().st_size for n in (0, 2))
    monkeypatch.setattr(scoring, "PROGRESS_FILE_BYTES", big.stat().st_size)
    monkeypatch.setattr(scoring, "PROGRESS_EVERY_ROWS", 64)
    heard: list[tuple[str, int, int]] = []
    detector = load(str(sensor_artifacts.fp32))
    with open(tmp_path / "one.jsonl", "w") as out:
        scoring.score_source(detector, str(big), out, progress=lambda *c: heard.append(c))
    stage = "scoring day1.csv, MB read"
    assert heard[0] == (stage, 0, 0) and heard[-1] == (stage, 0, 0)
    assert len(heard) >= 1 + 800 // 64  # every 64 lines while it is read
    model = str(sensor_artifacts.fp32)
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(tmp_path / "b.jsonl")]) == 0
    err = capsys.readouterr().err
    assert f"vigil: {stage}: done in" in err
    assert "day0.csv, MB read" not in err and "day2.csv, MB read" not in err
    # the batch's own progress by the items' bytes, not their count (one long file weighed as
    # much as a short one: a review's time left was 3x too long)
    kb = sum((csv_folder / f"day{n}.csv").stat().st_size for n in range(3)) // 1024
    assert f"vigil: batch: kB of 3 items scored: {kb}/{kb}, done in" in err


def test_strict_exits_5_when_a_run_ends_with_input_not_scored(sensor_artifacts, csv_folder,
                                                              tiny_image_artifact, image_folder,
                                                              tmp_path, capsys):
    """--strict: a damaged image, a skipped CSV or a CSV too short for a window is exit 5 in
    `vigil score` and `vigil batch` alike, the lines still written; a whole run stays exit 0."""
    images = ["score", str(tiny_image_artifact), str(image_folder), "--jsonl"]
    assert cli.main(images + [str(tmp_path / "a.jsonl")]) == 0
    assert cli.main(images + [str(tmp_path / "b.jsonl"), "--strict"]) == 5
    assert "--strict: the run ended, but not all of its input was scored: 1 frame skipped" \
        in capsys.readouterr().err
    assert _lines(tmp_path / "b.jsonl") == _lines(tmp_path / "a.jsonl")
    assert cli.main(["batch", str(tiny_image_artifact), str(image_folder), "--strict",
                     "--jsonl", str(tmp_path / "c.jsonl")]) == 5
    assert "1 row or frame skipped" in capsys.readouterr().err
    model = str(sensor_artifacts.fp32)
    assert cli.main(["score", model, str(csv_folder), "--strict"]) == 0  # every row scored
    assert cli.main(["batch", model, str(csv_folder), "--strict",
                     "--jsonl", str(tmp_path / "d.jsonl")]) == 0
    # a rotated log beside them is passed over (warned of): not all of the input was scored
    (csv_folder / "day0.csv.1").write_text("a\n1\n")
    capsys.readouterr()
    assert cli.main(["score", model, str(csv_folder), "--strict"]) == 5
    assert "1 entry of its folders passed over" in capsys.readouterr().err
    from vigil.runtime.sensor import tables

    tables._told_unread.clear()  # said once a process: this test's second command is another
    assert cli.main(["batch", model, str(csv_folder), "--strict",
                     "--jsonl", str(tmp_path / "d2.jsonl")]) == 5
    (csv_folder / "day0.csv.1").unlink()
    (image_folder / "broken.png").unlink()
    (image_folder / "more").mkdir()  # a subfolder of frames: not read
    capsys.readouterr()
    assert cli.main(images + [str(tmp_path / "g.jsonl"), "--strict"]) == 5
    assert "1 entry of its folders passed over" in capsys.readouterr().err
    (image_folder / "more").rmdir()
    assert cli.main(images + [str(tmp_path / "h.jsonl"), "--strict"]) == 0
    (csv_folder / "day3.csv").write_text("a,b\n1,2\n")  # not the model's columns: skipped
    (csv_folder / "day4.csv").write_text(sensor_artifacts.test_csv.read_text()
                                         .splitlines()[0] + "\n")  # a header alone
    capsys.readouterr()
    assert cli.main(["score", model, str(csv_folder), "--strict"]) == 5
    err = capsys.readouterr().err
    assert "1 file(s) skipped" in err and "day3.csv" in err
    assert cli.main(["batch", model, str(csv_folder), "--strict",
                     "--jsonl", str(tmp_path / "e.jsonl")]) == 5
    assert cli.main(["batch", model, str(csv_folder),
                     "--jsonl", str(tmp_path / "f.jsonl")]) == 0
    # resumed after day3 and day4 were written (as after a reboot): they still count (a review
    # found a resumed --strict run exit 0 where the whole run exits 5)
    (csv_folder / "day9.csv").write_text((csv_folder / "day0.csv").read_text())
    whole = tmp_path / "e2.jsonl"
    assert cli.main(["batch", model, str(csv_folder), "--strict", "--jsonl", str(whole)]) == 5
    cut = tmp_path / "e3.jsonl"
    text = whole.read_text()
    cut.write_text(text[:len(text) - len(text) // 4])  # inside day9's lines
    capsys.readouterr()
    assert cli.main(["batch", model, str(csv_folder), "--strict", "--resume",
                     "--jsonl", str(cut)]) == 5
    err = capsys.readouterr().err
    assert "1 file(s) skipped; the first: skipped: " in err and "day3.csv" in err
    assert cut.read_text() == whole.read_text()


def test_resume_counts_the_skipped_lines_it_keeps_for_strict(tmp_path):
    """`--resume --strict` exited 0 where the lines kept from the interrupted run held a skipped
    row: only the resumed run's items were counted."""
    import json as json_module
    import os

    names = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for path in names:
        path.write_text("a\n1\n")
        os.utime(path, (1_000_000_000, 1_000_000_000))
    lines = [{"index": 0, "source": str(names[0]), "score": 1.0},
             {"index": 1, "source": str(names[0]), "score": None, "skipped": "bad cell"},
             {"index": 0, "source": str(names[1]), "score": 1.0}]
    jsonl = tmp_path / "out.jsonl"
    jsonl.write_text("".join(json_module.dumps(line) + "\n" for line in lines))
    items = [batch_module.WorkItem(kind="csv", paths=(str(n),), name=str(n)) for n in names]
    point = batch_module.resume_point(jsonl, items)
    assert (point.items_done, point.lines_kept, point.skipped_kept) == (1, 2, 1)


def test_a_model_replaced_under_a_running_batch_is_named_with_both_digests(monkeypatch, caplog):
    """The summary named the model file as it was after the run: a model deployed over it during
    a batch was named, though the lines came from the one before (a review)."""
    import io

    from vigil.runtime.core.output import JsonLines

    items = [batch_module.WorkItem(kind="csv", paths=(f"day{n}.csv",), name=f"day{n}.csv")
             for n in range(3)]
    made = ["a" * 64, "a" * 64, "b" * 64]
    monkeypatch.setattr(batch_module, "score_locally", lambda *args: iter(
        ([f'{{"index": {n}}}'], {"model_sha256": sha}) for n, sha in enumerate(made)))
    with JsonLines(io.StringIO()) as out:
        summary = batch_module.run_batch("pump.onnx", items, out)
    assert summary["model_sha256"] == ["a" * 64, "b" * 64]
    assert "pump.onnx changed while the batch ran: from day2.csv on" in caplog.text


def test_an_item_for_the_other_kind_of_model_stops_the_batch_naming_the_model(
        tiny_image_artifact, image_folder, tmp_path):
    """A model file replaced by one of the other kind after the batch was planned (or another
    file at its path on a Ray node) was handed items it cannot read: the runtime's TypeError
    spoke of the Python API's `detector` argument, exit 2 as if an input were wrong."""
    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    sensor_model = write_tiny_sensor_artifact(tmp_path / "pump.onnx")
    table = tmp_path / "day.csv"
    table.write_text("timestamp,a,b,c\n" + "".join(
        f"2026-01-01 00:00:{n:02d},0,0,0\n" for n in range(8)))
    frame = str(image_folder / "000.png")
    for model, item, planned, found in (
            (tiny_image_artifact, batch_module.WorkItem("csv", (str(table),), str(table)),
             "a sensor", "an image"),
            (sensor_model, batch_module.WorkItem("images", (frame,), frame),
             "an image", "a sensor")):
        with pytest.raises(ArtifactError) as refused:
            batch_module.Scorer(str(model)).score_into(item, io.StringIO())
        assert (f"{item.name} was planned for {planned} model, but {str(model)!r} is {found} "
                f"model here") in str(refused.value)


def test_image_folders_are_split_but_numbered_as_one_run(tiny_image_artifact, image_folder,
                                                         tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(batch_module, "IMAGES_PER_ITEM", 3)
    model = str(tiny_image_artifact)
    assert cli.main(["score", model, str(image_folder), "--jsonl", str(tmp_path / "s.jsonl")]) == 0
    assert cli.main(["batch", model, str(image_folder), "--jsonl", str(tmp_path / "b.jsonl")]) == 0
    assert _lines(tmp_path / "b.jsonl") == _lines(tmp_path / "s.jsonl")
    assert [r["frame"] for r in _lines(tmp_path / "b.jsonl")] == list(range(8))
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])["summary"]
    # the damaged image is named in the batch's errors, not only counted
    assert any("(frames 6-7): 1 of its 2 frames skipped" in e and "broken.png" in e
               for e in summary["errors"])
    items = batch_module.plan_batch(model, [str(image_folder)])
    assert [i.first_index for i in items] == [0, 3, 6]


def test_batch_on_a_local_ray_writes_the_same_lines(sensor_artifacts, csv_folder,
                                                    tiny_image_artifact, image_folder, tmp_path,
                                                    capsys, monkeypatch):
    require("ray")
    model = str(sensor_artifacts.fp32)
    monkeypatch.setattr(batch_module, "RAY_CHUNK_CHARS", 3000)  # each file's lines in parts
    assert cli.main(["score", model, str(csv_folder), "--jsonl", str(tmp_path / "s.jsonl")]) == 0
    import ray.data
    from listeners import listening, off_loopback

    context = ray.data.DataContext.get_current()
    before = (context.execution_options.preserve_order, context.enable_progress_bars,
              context.target_max_block_size)
    exposed_before, while_running = off_loopback(listening()), []
    shutdown = ray.shutdown

    def look_then_shut_down(*args, **kwargs):  # while the local Ray's services still listen
        while_running.append(listening())
        shutdown(*args, **kwargs)

    monkeypatch.setattr(ray, "shutdown", look_then_shut_down)
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(tmp_path / "r.jsonl"),
                     "--ray", "--workers", "2"]) == 0
    assert while_running and while_running[0] - exposed_before  # Ray's own sockets were seen
    assert off_loopback(while_running[0]) - exposed_before == set()  # all on 127.0.0.1
    assert (tmp_path / "r.jsonl").read_text() == (tmp_path / "s.jsonl").read_text()
    assert (context.execution_options.preserve_order, context.enable_progress_bars,
            context.target_max_block_size) == before  # the caller's Ray settings are its own
    err = capsys.readouterr().err
    assert json.loads(err.strip().splitlines()[-1])["summary"]["engine"] == "ray local"
    assert "streaming_executor" not in err and "Progress bars" not in err  # Ray kept quiet
    assert "core_worker" not in err


def test_bad_inputs_are_exit_2_and_no_output_is_opened(sensor_artifacts, tmp_path, capsys):
    out = tmp_path / "never.jsonl"
    assert cli.main(["batch", str(sensor_artifacts.fp32), str(tmp_path / "missing"),
                     "--jsonl", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err and not out.exists()
    existing = tmp_path / "old.jsonl"
    existing.write_text('{"index": 0}\n')
    assert cli.main(["batch", str(sensor_artifacts.fp32), str(sensor_artifacts.test_csv),
                     "--jsonl", str(existing)]) == 2
    assert "--resume" in capsys.readouterr().err and existing.read_text() == '{"index": 0}\n'


def test_append_refuses_sources_the_file_already_holds_and_appends_new_ones(
        sensor_artifacts, csv_folder, tmp_path, capsys):
    model, out = str(sensor_artifacts.fp32), tmp_path / "days.jsonl"
    day0, day1 = str(csv_folder / "day0.csv"), str(csv_folder / "day1.csv")
    assert cli.main(["batch", model, day0, "--jsonl", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert cli.main(["batch", model, day0, day1, "--jsonl", str(out), "--append"]) == 2
    err = capsys.readouterr().err
    assert f"already holds lines of {day0!r}" in err and "twice" in err
    assert out.read_bytes() == before  # refused before the file was opened
    assert cli.main(["batch", model, day1, "--jsonl", str(out), "--append"]) == 0
    sources = [json.loads(line)["source"] for line in out.read_bytes().splitlines()]
    assert sources[0] == day0 and sources[-1] == day1 and out.read_bytes().startswith(before)


def test_resume_scores_only_what_an_interrupted_run_left_undone(sensor_artifacts, csv_folder,
                                                                tmp_path, capsys):
    model, whole = str(sensor_artifacts.fp32), tmp_path / "whole.jsonl"
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(whole)]) == 0
    text = whole.read_bytes()
    sources = [json.loads(line)["source"] for line in text.splitlines()]
    first_of_day1 = sources.index(str(csv_folder / "day1.csv"))
    # a crash in the middle of day1.csv's lines, the last one written in part
    cut = sum(len(line) + 1 for line in text.splitlines()[:first_of_day1 + 40]) + 25
    resumed = tmp_path / "resumed.jsonl"
    resumed.write_bytes(text[:cut])
    capsys.readouterr()
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(resumed), "--resume"]) == 0
    assert resumed.read_bytes() == text  # the same file as the uninterrupted run's
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])["summary"]
    assert summary["items"] == 2  # day1 again and day2; day0 was whole
    assert summary["resumed"] == {"items_done_before": 1, "lines_kept": first_of_day1,
                                  "lines_cut": 40, "files_skipped_before": 0,
                                  "errors_before": []}
    # a finished run resumed scores its last item again and changes nothing
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(resumed), "--resume"]) == 0
    assert resumed.read_bytes() == text
    # no file yet: a new run
    fresh = tmp_path / "fresh.jsonl"
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(fresh), "--resume"]) == 0
    assert fresh.read_bytes() == text


def _resume_refused(model: str, written: list, folder, out, capsys) -> tuple[str, bytes]:
    """Batch ``written`` into ``out``, then resume it over ``folder``, which must be refused:
    (its error, the file as the first run left it)."""
    assert cli.main(["batch", model, *map(str, written), "--jsonl", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert cli.main(["batch", model, str(folder), "--jsonl", str(out), "--resume"]) == 2
    return capsys.readouterr().err, before


def test_resume_refuses_a_file_written_from_other_inputs_and_leaves_it(sensor_artifacts,
                                                                        csv_folder, tmp_path,
                                                                        capsys):
    model, out = str(sensor_artifacts.fp32), tmp_path / "out.jsonl"
    # the same files in another order: the file begins with day2, passing over day0 and day1
    err, before = _resume_refused(model, [csv_folder / "day2.csv", csv_folder / "day0.csv"],
                                  csv_folder, out, capsys)
    assert "day0.csv' has no line in" in err
    assert "--overwrite" in err and out.read_bytes() == before
    assert cli.main(["batch", model, str(csv_folder / "day0.csv"), str(csv_folder / "day2.csv"),
                     "--jsonl", str(out), "--resume"]) == 2  # its own items in another order
    assert "day0.csv' has no line in" in capsys.readouterr().err and out.read_bytes() == before
    assert cli.main(["batch", model, str(csv_folder / "day1.csv"), "--jsonl", str(out),
                     "--resume"]) == 2
    assert "is not among the inputs" in capsys.readouterr().err and out.read_bytes() == before
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out), "--resume",
                     "--append"]) == 2
    assert "exclude each other" in capsys.readouterr().err and out.read_bytes() == before


def test_resume_refuses_the_same_inputs_spelled_otherwise(sensor_artifacts, csv_folder,
                                                           tmp_path, capsys, monkeypatch):
    """A folder given relative, then absolute: one file would name its sources both ways."""
    model, out = str(sensor_artifacts.fp32), tmp_path / "out.jsonl"
    monkeypatch.chdir(csv_folder.parent)
    assert cli.main(["batch", model, csv_folder.name, "--jsonl", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "this run names the same file" in err and "as the run that wrote it did" in err
    assert out.read_bytes() == before
    assert cli.main(["batch", model, csv_folder.name, "--jsonl", str(out), "--resume"]) == 0


def test_resume_takes_the_same_image_files_spelled_as_before(tiny_image_artifact, image_folder,
                                                              tmp_path, capsys, monkeypatch):
    """./frames/000.png is written as frames/000.png: the same command resumes."""
    monkeypatch.chdir(image_folder.parent)
    files = [f"./{image_folder.name}/{n:03d}.png" for n in range(3)]
    out = tmp_path / "out.jsonl"
    command = ["batch", str(tiny_image_artifact), *files, "--jsonl", str(out)]
    assert cli.main(command) == 0

    def lines():  # as written, but for each frame's measured latency
        return [{k: v for k, v in json.loads(line).items() if k != "latency_ms"}
                for line in out.read_text().splitlines()]

    before = lines()
    assert cli.main([*command, "--resume"]) == 0
    assert lines() == before and before[0]["source"] == f"{image_folder.name}/000.png"


def test_resume_refuses_a_file_written_by_another_model_and_leaves_it(sensor_artifacts,
                                                                       csv_folder, tmp_path,
                                                                       capsys):
    """The FP32 and INT8 exports of one network score within a hair of each other: --resume
    still tells them apart, and the same model resumes as before."""
    fp32, int8, out = str(sensor_artifacts.fp32), str(sensor_artifacts.int8), tmp_path / "o.jsonl"
    assert cli.main(["batch", fp32, str(csv_folder), "--jsonl", str(out)]) == 0
    whole = out.read_bytes()
    out.write_bytes(whole[:len(whole) // 2 - whole[:len(whole) // 2][::-1].index(b"\n")])
    cut = out.read_bytes()
    capsys.readouterr()
    assert cli.main(["batch", int8, str(csv_folder), "--jsonl", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "the file was written by another model" in err and "--overwrite" in err
    assert out.read_bytes() == cut
    assert cli.main(["batch", fp32, str(csv_folder), "--jsonl", str(out), "--resume"]) == 0
    assert out.read_bytes() == whole


def test_resume_refuses_other_alarm_options_and_inputs_changed_since(sensor_artifacts,
                                                                     csv_folder, tmp_path,
                                                                     capsys):
    """--threshold or --no-likelihood given to a resume mixed two decision rules in one file; a
    file already written whole that grew since kept its stale lines; blank lines early in the
    first file made the model check fail for the same model."""
    import os

    model, out = str(sensor_artifacts.fp32), tmp_path / "o.jsonl"
    first = csv_folder / "day0.csv"
    rows = first.read_text().splitlines()
    first.write_text("\n".join(rows[:1] + [""] * 80 + rows[1:]) + "\n")  # blank lines: no rows
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out)]) == 0
    whole = out.read_bytes()
    keep = whole.index(b'"source": "' + str(csv_folder / "day2.csv").encode())
    out.write_bytes(whole[:whole[:keep].rindex(b"\n") + 1])  # interrupted in the last file
    cut = out.read_bytes()
    for flags, says in ((["--threshold", "-1e3"], "this run decides anomaly true"),
                        (["--no-likelihood"], "and this run decides no surprise")):
        capsys.readouterr()
        assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out), "--resume",
                         *flags]) == 2
        err = capsys.readouterr().err
        assert says in err and "its alarm options" in err and out.read_bytes() == cut
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out)]) == 2
    err = capsys.readouterr().err  # not --append, which would write every item again after them
    assert "add --resume to continue the batch that wrote it" in err and "--append" not in err
    later = out.stat().st_mtime + 60  # day0.csv, written whole, changed after the results
    os.utime(first, (later, later))
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out), "--resume"]) == 2
    assert "day0.csv' was changed after" in capsys.readouterr().err and out.read_bytes() == cut
    os.utime(first, (later - 3600, later - 3600))
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out), "--resume"]) == 0
    assert out.read_bytes() == whole


def test_a_folder_of_subfolders_gets_a_hint_batch_can_follow(tiny_image_artifact, image_folder,
                                                             tmp_path, capsys):
    """`vigil batch` takes no glob: the hint names the subfolders as inputs instead."""
    category = tmp_path / "category"
    category.mkdir()
    image_folder.rename(category / "good")
    out = tmp_path / "o.jsonl"
    assert cli.main(["batch", str(tiny_image_artifact), str(category), "--jsonl", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"them all as inputs ({category}/*/ unquoted" in err and "**" not in err
    assert cli.main(["batch", str(tiny_image_artifact), f"{category}/good/", "--jsonl",
                     str(out)]) == 0
    assert len(_lines(out)) == len(list((category / "good").iterdir()))


def test_resume_of_an_image_folder_continues_at_its_part(tiny_image_artifact, image_folder,
                                                         tmp_path, monkeypatch):
    monkeypatch.setattr(batch_module, "IMAGES_PER_ITEM", 3)
    model, whole = str(tiny_image_artifact), tmp_path / "whole.jsonl"
    assert cli.main(["batch", model, str(image_folder), "--jsonl", str(whole)]) == 0
    lines = whole.read_text().splitlines(keepends=True)
    resumed = tmp_path / "resumed.jsonl"
    resumed.write_text("".join(lines[:4]))  # frames 0-3: the part of frames 3-5 cut short
    items = batch_module.plan_batch(model, [str(image_folder)])
    point = batch_module.resume_point(resumed, items)
    assert (point.items_done, point.lines_kept, point.lines_cut) == (1, 3, 1)
    assert cli.main(["batch", model, str(image_folder), "--jsonl", str(resumed), "--resume"]) == 0
    assert _lines(resumed) == _lines(whole)


def test_batch_reads_csvs_as_score_does(sensor_artifacts, tmp_path, tiny_image_artifact, capsys):
    """--decimal, --columns and --no-likelihood mean what they mean in `vigil score`."""
    model = str(sensor_artifacts.fp32)
    rows = sensor_artifacts.test_csv.read_text().splitlines()[:400]
    european = tmp_path / "comma.csv"
    european.write_text("\n".join(r.replace(",", ";").replace(".", ",") for r in rows) + "\n")
    headless = tmp_path / "headless.csv"
    headless.write_text("\n".join(rows[1:]) + "\n")
    for source, options in ((european, ["--decimal", ","]),
                            (headless, ["--columns", rows[0]]),
                            (sensor_artifacts.test_csv, ["--no-likelihood"])):
        score, batch = tmp_path / "s.jsonl", tmp_path / "b.jsonl"
        assert cli.main(["score", model, str(source), "--jsonl", str(score), "--overwrite",
                         *options]) == 0
        assert cli.main(["batch", model, str(source), "--jsonl", str(batch), "--overwrite",
                         *options]) == 0
        assert batch.read_text() == score.read_text()
    # without it, as in `vigil score`: refused with the hint before the output is made, exit 2
    unread = tmp_path / "unread.jsonl"
    assert cli.main(["batch", model, str(european), "--jsonl", str(unread)]) == 2
    assert "Read it with --decimal ," in capsys.readouterr().err and not unread.exists()
    assert cli.main(["batch", str(tiny_image_artifact), str(tmp_path), "--decimal", ",",
                     "--jsonl", str(tmp_path / "no.jsonl")]) == 2
    assert "--decimal applies to sensor models" in capsys.readouterr().err


def test_ctrl_c_says_how_to_resume_and_resume_finishes_the_file(sensor_artifacts, csv_folder,
                                                                 tmp_path, monkeypatch, capsys):
    """Ctrl-C in the middle of a file: that file's lines are not written, the batch stops with
    exit 130 and says how to go on, and --resume then writes the file an uninterrupted run does."""
    import os
    import signal

    model, whole, out = str(sensor_artifacts.fp32), tmp_path / "whole.jsonl", tmp_path / "o.jsonl"
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(whole)]) == 0
    score = batch_module.Scorer.score_into

    def ctrl_c_while_scoring_day1(self, item, out):
        if item.name.endswith("day1.csv"):
            os.kill(os.getpid(), signal.SIGINT)  # recorded; honoured at the next safe point
        return score(self, item, out)

    monkeypatch.setattr(batch_module.Scorer, "score_into", ctrl_c_while_scoring_day1)
    # a safe point every 100 rows, so that the stop lands inside day1.csv, as in a long file
    monkeypatch.setattr("vigil.runtime.sensor.scoring.CHUNK_ROWS", 100)
    capsys.readouterr()
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out)]) == 130
    assert "run the same command with --resume" in capsys.readouterr().err
    sources = {json.loads(line)["source"] for line in out.read_text().splitlines()}
    assert sources == {str(csv_folder / "day0.csv")}  # day0 whole, nothing of day1
    assert whole.read_text().startswith(out.read_text())
    monkeypatch.setattr(batch_module.Scorer, "score_into", score)
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out), "--resume"]) == 0
    assert out.read_bytes() == whole.read_bytes()
    # stopped before its first item was whole: the earlier file is as it was, and said so
    def ctrl_c_at_once(self, item, out):
        os.kill(os.getpid(), signal.SIGINT)
        return score(self, item, out)

    monkeypatch.setattr(batch_module.Scorer, "score_into", ctrl_c_at_once)
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out), "--overwrite"]) == 130
    assert "is as it was; run the same command again" in capsys.readouterr().err
    assert out.read_bytes() == whole.read_bytes()


def test_repeated_inputs_are_refused_and_a_folder_of_videos_is_scored_video_by_video(
        tiny_image_artifact, csv_folder, sensor_artifacts, tmp_path, capsys):
    model = str(sensor_artifacts.fp32)
    assert cli.main(["batch", model, str(csv_folder), str(csv_folder / "day1.csv"),
                     "--jsonl", str(tmp_path / "twice.jsonl")]) == 2
    assert "repeats" in capsys.readouterr().err and not (tmp_path / "twice.jsonl").exists()
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for name, level in (("cam1.avi", 40), ("cam2.avi", 200)):
        writer = cv2.VideoWriter(str(recordings / name), cv2.VideoWriter_fourcc(*"MJPG"), 5,
                                 (32, 32), isColor=False)
        for _ in range(3):
            writer.write(np.full((32, 32), level, np.uint8))
        writer.release()
    (recordings / "index.txt").write_text("cam1: line 1, cam2: line 2\n")  # no frame
    out = tmp_path / "videos.jsonl"
    assert cli.main(["batch", str(tiny_image_artifact), str(recordings), "--jsonl", str(out)]) == 0
    lines = _lines(out)
    assert [(Path(r["source"]).name, r["frame"]) for r in lines] == [
        ("cam1.avi", 0), ("cam1.avi", 1), ("cam1.avi", 2),
        ("cam2.avi", 0), ("cam2.avi", 1), ("cam2.avi", 2)]
    assert all(r["score"] is not None for r in lines)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not an image")
    (broken / "b.png").write_bytes(b"")
    previous = tmp_path / "previous.jsonl"
    previous.write_text('{"frame": 0}\n')
    for command in ("score", "batch"):  # nothing decodes: refused before the output is emptied
        assert cli.main([command, str(tiny_image_artifact), str(broken), "--jsonl",
                         str(previous), "--overwrite"]) == 2
        assert "none of its 2 files is an image that can be read" in capsys.readouterr().err
        assert previous.read_text() == '{"frame": 0}\n'
    (recordings / "cam3.avi").write_bytes(b"RIFF" + bytes(60))  # a damaged recording
    (recordings / "cam4.mts").write_bytes(b"")  # no suffix of ours: named, not scored
    capsys.readouterr()
    assert cli.main(["batch", str(tiny_image_artifact), str(recordings), "--jsonl",
                     str(tmp_path / "bad.jsonl")]) == 0  # in a folder: skipped, the others go on
    err = capsys.readouterr().err
    assert "skipped: `source`" in err and "cam3.avi" in err and "cam4.mts" in err
    assert _lines(tmp_path / "bad.jsonl") == lines
    summary = json.loads(err.strip().splitlines()[-1])["summary"]
    assert summary["files_skipped"] == 1 and "cam3.avi" in summary["errors"][0]
    assert cli.main(["batch", str(tiny_image_artifact), str(recordings / "cam3.avi"), "--jsonl",
                     str(tmp_path / "bad2.jsonl")]) == 2  # given itself: refused
    assert "cam3.avi" in capsys.readouterr().err and not (tmp_path / "bad2.jsonl").exists()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "cam3.avi").write_bytes(b"RIFF" + bytes(60))
    assert cli.main(["batch", str(tiny_image_artifact), str(damaged), "--jsonl",
                     str(tmp_path / "bad3.jsonl")]) == 2  # nothing in the folder can be scored
    assert "none of its 1 files could be scored" in capsys.readouterr().err
    assert not (tmp_path / "bad3.jsonl").exists()


def test_resume_refuses_a_file_added_since_and_batch_scores_a_folder_as_score_does(
        sensor_artifacts, csv_folder, tmp_path, monkeypatch, capsys):
    import os
    import signal

    model = str(sensor_artifacts.fp32)
    out = tmp_path / "out.jsonl"
    # day1.csv sorts between the two: the run that wrote the file never scored it
    err, before = _resume_refused(model, [csv_folder / "day0.csv", csv_folder / "day2.csv"],
                                  csv_folder, out, capsys)
    assert "day1.csv' has no line in" in err and "added since" in err
    assert out.read_bytes() == before
    # a day whose sensor was dead (no usable row) is skipped in a folder, as `vigil score` does
    rows = (csv_folder / "day0.csv").read_text().splitlines()
    header = rows[0].split(",")
    dead = [",".join("" if name == header[1] else cell
                     for name, cell in zip(header, row.split(","))) for row in rows[1:]]
    (csv_folder / "day3.csv").write_text("\n".join([rows[0], *dead]) + "\n")
    scored, batched = tmp_path / "s.jsonl", tmp_path / "b.jsonl"
    assert cli.main(["score", model, str(csv_folder), "--jsonl", str(scored)]) == 0
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(batched)]) == 0
    assert batched.read_text() == scored.read_text()
    # Ctrl-C while the inputs are being checked ends the run before the next file's check
    # (never within one: a check may be OpenCV's code, which crashed on an exception raised there)
    from vigil.runtime.sensor import scoring

    checked = []

    def interrupted_check(*args, **kwargs):
        checked.append(args[1])
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs within the check, as it may in
        checked.append("returned")           # OpenCV's code: there it must only record it

    monkeypatch.setattr(scoring, "check_header", interrupted_check)
    out = tmp_path / "x.jsonl"
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out)]) == 130
    assert checked == [csv_folder / "day0.csv", "returned"] and not out.exists()


def test_resume_refuses_an_image_added_inside_a_written_part(tiny_image_artifact, image_folder,
                                                            tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(batch_module, "IMAGES_PER_ITEM", 3)
    model, whole = str(tiny_image_artifact), tmp_path / "whole.jsonl"
    assert cli.main(["batch", model, str(image_folder), "--jsonl", str(whole)]) == 0
    resumed = tmp_path / "resumed.jsonl"
    resumed.write_text("".join(whole.read_text().splitlines(keepends=True)[:5]))
    before = resumed.read_bytes()
    # a frame added among those already written: every frame after it would be numbered anew
    (image_folder / "000a.png").write_bytes((image_folder / "000.png").read_bytes())
    capsys.readouterr()
    assert cli.main(["batch", model, str(image_folder), "--jsonl", str(resumed),
                     "--resume"]) == 2
    err = capsys.readouterr().err
    assert "000a.png' has no line in" in err and "--overwrite" in err
    assert resumed.read_bytes() == before


def test_a_file_reached_twice_is_refused_whatever_the_spelling(sensor_artifacts, csv_folder,
                                                               tmp_path, capsys):
    model = str(sensor_artifacts.fp32)
    out = tmp_path / "out.jsonl"
    assert cli.main(["batch", model, str(csv_folder), str(csv_folder), "--jsonl", str(out)]) == 2
    assert "given twice" in capsys.readouterr().err and not out.exists()
    (csv_folder / "current.csv").symlink_to(csv_folder / "day1.csv")
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(out)]) == 2
    err = capsys.readouterr().err
    assert "current.csv" in err and "day1.csv" in err and "the same file" in err
    assert not out.exists()


def test_a_folders_unusable_files_are_skipped_as_score_skips_them(sensor_artifacts, csv_folder,
                                                                  tmp_path, capsys):
    model = str(sensor_artifacts.fp32)
    (csv_folder / "DAY3.CSV").write_text((csv_folder / "day2.csv").read_text())  # scored too
    (csv_folder / "day1b.csv").write_bytes(b"")  # an empty file: named and skipped
    (csv_folder / "day1c.csv").write_text("x,y\n1,2\n")  # other columns: named and skipped
    scored, batched = tmp_path / "s.jsonl", tmp_path / "b.jsonl"
    assert cli.main(["score", model, str(csv_folder), "--jsonl", str(scored)]) == 0
    capsys.readouterr()
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(batched)]) == 0
    assert batched.read_text() == scored.read_text()
    assert str(csv_folder / "DAY3.CSV") in {r["source"] for r in _lines(batched)}
    err = capsys.readouterr().err
    summary = json.loads(err.strip().splitlines()[-1])["summary"]
    assert summary["files_skipped"] == 2 and len(summary["errors"]) == 2
    assert "day1b.csv" in err.split('{"summary"')[0]  # named before the run, not only after
    # resume passes over the skipped files, as over a short file ending in blank lines
    window = load(model).spec.window  # fewer data rows than a window, then blank lines
    short = csv_folder / "day1d.csv"
    short.write_text("\n".join((csv_folder / "day0.csv").read_text().splitlines()[:window])
                     + "\n" * (window + 2))
    whole = tmp_path / "whole.jsonl"
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(whole)]) == 0
    text = whole.read_bytes()
    day2 = text.rindex(b"\n", 0, text.index(str(csv_folder / "day2.csv").encode())) + 1
    resumed = tmp_path / "resumed.jsonl"
    resumed.write_bytes(text[:day2 + 500])  # cut inside day2.csv's lines
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(resumed), "--resume"]) == 0
    assert resumed.read_bytes() == text


def test_a_file_gone_during_the_run_is_skipped_and_the_others_go_on(sensor_artifacts,
                                                                    csv_folder):
    import io

    from vigil.runtime.core.output import JsonLines

    model = str(sensor_artifacts.fp32)
    items = batch_module.plan_batch(model, [str(csv_folder)])
    (csv_folder / "day1.csv").unlink()  # a retention job, after the batch was planned
    out = io.StringIO()
    summary = batch_module.run_batch(model, items, JsonLines(out))
    sources = {json.loads(line)["source"] for line in out.getvalue().splitlines()}
    assert sources == {str(csv_folder / "day0.csv"), str(csv_folder / "day2.csv")}
    assert summary["files_skipped"] == 1 and "day1.csv" in summary["errors"][0]
    # in the batch's words, not `vigil score`'s (its `source` argument; a review)
    assert "removed or moved after the batch was planned" in summary["errors"][0]
    assert "`source`" not in summary["errors"][0]


def test_outputs_inside_an_image_folder_and_flags_without_their_mode_are_refused(
        tiny_image_artifact, image_folder, sensor_artifacts, csv_folder, tmp_path, capsys):
    model = str(tiny_image_artifact)
    for command in ("batch", "score"):  # the next run would read the file as a frame
        inside = image_folder / f"{command}.jsonl"
        assert cli.main([command, model, str(image_folder), "--jsonl", str(inside)]) == 2
        err = capsys.readouterr().err
        assert "lies in the image folder" in err and str(tmp_path / inside.name) in err
        assert not inside.exists()
    inside = csv_folder / "scores.csv"  # read as data by the next run on the folder
    for command in ("batch", "score"):
        assert cli.main([command, str(sensor_artifacts.fp32), str(csv_folder), "--jsonl",
                         str(inside)]) == 2
        assert "is a .csv inside" in capsys.readouterr().err and not inside.exists()
    out = tmp_path / "w.jsonl"
    assert cli.main(["batch", str(sensor_artifacts.fp32), str(csv_folder), "--jsonl", str(out),
                     "--workers", "4"]) == 2
    assert "--workers 4 applies to Ray workers" in capsys.readouterr().err and not out.exists()


def test_a_ray_cluster_that_cannot_be_joined_is_an_input_error(sensor_artifacts, csv_folder,
                                                               tmp_path, capsys, monkeypatch):
    require("ray")
    import ray

    def no_cluster(*args, **kwargs):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "init", no_cluster)
    out = tmp_path / "r.jsonl"
    assert cli.main(["batch", str(sensor_artifacts.fp32), str(csv_folder), "--jsonl", str(out),
                     "--ray", "auto"]) == 2
    err = capsys.readouterr().err
    assert "--ray auto: no Ray cluster could be joined" in err and "ray start --head" in err
    assert not out.exists()


def test_a_ray_address_where_nothing_listens_is_refused_before_ray_joins(
        sensor_artifacts, csv_folder, tmp_path, capsys, monkeypatch):
    """Joining HOST:PORT where nothing listens, Ray retried for ever, deaf to Ctrl-C."""
    require("ray")
    import socket

    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init was reached"))
    with socket.socket() as probe:  # a port nothing listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        out = tmp_path / "r.jsonl"
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            assert cli.main(["batch", str(sensor_artifacts.fp32), str(csv_folder), "--jsonl",
                             str(out), "--ray", address]) == 2
            err = capsys.readouterr().err
            assert f"--ray {address}: nothing accepts a connection there" in err
            assert not out.exists()


def test_a_ray_address_where_something_else_listens_is_refused_before_ray_joins(
        sensor_artifacts, csv_folder, tmp_path, capsys, monkeypatch):
    """A web server (a Ray dashboard, say) at the address: Ray waited ten minutes, deaf to
    Ctrl-C. A gRPC server, as Ray's GCS and client server are, passes the check."""
    require("ray")
    require("cryptography")  # the test's throwaway TLS certificate
    import http.server
    import threading
    from concurrent import futures

    import grpc
    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("ray.init was reached"))
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    out = tmp_path / "r.jsonl"
    try:
        port = web.server_address[1]
        for address in (f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"):
            assert cli.main(["batch", str(sensor_artifacts.fp32), str(csv_folder), "--jsonl",
                             str(out), "--ray", address]) == 2
            err = capsys.readouterr().err
            assert f"--ray {address}: " in err and ("is not Ray" in err or "not a http://" in err)
            assert not out.exists()
    finally:
        web.shutdown()
    server = grpc.server(futures.ThreadPoolExecutor(1))
    port = server.add_insecure_port("127.0.0.1:0")
    tls = grpc.server(futures.ThreadPoolExecutor(1))  # a cluster run with RAY_USE_TLS=1
    tls_port = tls.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([_self_signed()]))
    server.start()
    tls.start()
    try:
        for accepted in (port, tls_port):  # gRPC answers, in plain text or over TLS
            batch_module._refuse_silent_address(f"127.0.0.1:{accepted}")
            batch_module._refuse_silent_address(f"ray://127.0.0.1:{accepted}")
        batch_module._refuse_silent_address("module://some.client.builder")  # Ray reads it
    finally:
        server.stop(None)
        tls.stop(None)


def _self_signed() -> tuple[bytes, bytes]:
    """(private key, certificate) PEM of a throwaway certificate for 127.0.0.1."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(1).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            certificate.public_bytes(serialization.Encoding.PEM))


def test_a_signal_while_ray_starts_is_a_stop_request_not_rays_exit(monkeypatch):
    """Ray's own SIGTERM handler exits with 15 and a stack dump; a run stops as after Ctrl-C,
    and the run's handlers are back once Ray has started."""
    import signal

    def ours(*args):
        pass

    before = signal.signal(signal.SIGTERM, ours)
    try:
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            with batch_module._our_signal_handlers():
                signal.signal(signal.SIGTERM, lambda *a: None)  # as ray.init does
                raise SystemExit(signal.SIGTERM)  # what its handler does on the signal
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_full_disk_names_the_item_and_how_to_continue(sensor_artifacts, csv_folder, capsys):
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full (a device that is always full) exists on Linux only")
    assert cli.main(["batch", str(sensor_artifacts.fp32), str(csv_folder), "--jsonl",
                     "/dev/full"]) == cli.EXIT_OUTPUT
    err = capsys.readouterr().err
    assert "No space left on device" in err and "the batch stopped at" in err
    assert ".csv" in err and "--resume" in err


def test_an_items_lines_wait_in_a_temporary_file_past_the_spool_size(sensor_artifacts,
                                                                     csv_folder, tmp_path,
                                                                     monkeypatch):
    """A long file's lines are handed on whole, from disk past SPOOL_BYTES: the same file."""
    model = str(sensor_artifacts.fp32)
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(tmp_path / "a.jsonl")]) == 0
    monkeypatch.setattr(batch_module, "SPOOL_BYTES", 1024)
    spooled = []
    real = batch_module.tempfile.SpooledTemporaryFile

    def watched(*args, **kwargs):
        spool = real(*args, **kwargs)
        spooled.append(spool)
        return spool

    monkeypatch.setattr(batch_module.tempfile, "SpooledTemporaryFile", watched)
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", str(tmp_path / "b.jsonl")]) == 0
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    assert len(spooled) == 3 and all(s._rolled for s in spooled)  # each item went to disk


def test_a_ray_worker_hands_an_items_lines_on_in_whole_line_parts(sensor_artifacts, csv_folder,
                                                                   tmp_path, monkeypatch):
    """On Ray a worker yields an item's lines in parts of about ``part_chars`` (spooled to disk
    past SPOOL_BYTES, never one string), whole lines each, the summary with the last part."""
    model = str(sensor_artifacts.fp32)
    items = batch_module.plan_batch(model, [str(csv_folder)])
    local = [("".join(line + "\n" for line in lines), summary) for lines, summary
             in batch_module.score_locally(Path(model), items, 1, batch_module.Reading())]
    monkeypatch.setattr(batch_module, "SPOOL_BYTES", 1024)
    scorer = batch_module.Scorer(model)
    scorer.part_chars = 2000
    for item, (expected, summary) in zip(items, local):
        parts = list(scorer({"item": [json.dumps(batch_module.asdict(item))]}))
        texts = [p["lines"][0] for p in parts]
        assert len(expected) > 4000 and 1 < len(parts) <= -(-len(expected) // 2000)
        assert "".join(texts) == expected and all(t.endswith("\n") for t in texts)
        assert [p["summary"][0] for p in parts[:-1]] == [""] * (len(parts) - 1)
        # (a worker's warnings ride with its summary; in this process they went to the log)
        timed = ("seconds", "windows_per_s", "frames_per_s", "worker_warnings")
        last = json.loads(parts[-1]["summary"][0])
        assert {k: v for k, v in last.items() if k not in timed} == \
            {k: v for k, v in summary.items() if k not in timed}
    empty = batch_module.WorkItem("csv", (str(csv_folder / "gone.csv"),), "gone.csv",
                                  skip="it went")
    (only,) = scorer({"item": [json.dumps(batch_module.asdict(empty))]})
    assert only["lines"] == [""] and json.loads(only["summary"][0])["files_skipped"] == 1


def test_a_full_temporary_folder_stops_the_batch_before_the_item(sensor_artifacts, csv_folder,
                                                                 tmp_path, monkeypatch, capsys):
    """An item's lines that cannot be held in $TMPDIR are not handed on cut short: exit 4."""
    import errno

    monkeypatch.setattr(batch_module, "SPOOL_BYTES", 1024)
    real = batch_module.tempfile.SpooledTemporaryFile

    class Full(real):
        def write(self, text):
            if self.tell() > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(text)

    monkeypatch.setattr(batch_module.tempfile, "SpooledTemporaryFile", Full)
    out = tmp_path / "out.jsonl"
    assert cli.main(["batch", str(sensor_artifacts.fp32), str(csv_folder), "--jsonl",
                     str(out)]) == cli.EXIT_OUTPUT
    err = capsys.readouterr().err
    assert "could not be held in a temporary file" in err and "TMPDIR" in err
    assert "day0.csv" in err and "--resume" in err
    assert not out.exists() or not out.read_text()  # no item handed on cut short


def test_an_output_beside_recordings_is_no_frame(tiny_image_artifact, tmp_path):
    from test_sources import write_video

    recordings = tmp_path / "recordings"
    recordings.mkdir()
    write_video(recordings / "cam1.avi", 3)
    out = recordings / "results.jsonl"  # a folder of videos reads only videos and images
    assert cli.main(["batch", str(tiny_image_artifact), str(recordings), "--jsonl",
                     str(out)]) == 0
    assert cli.main(["batch", str(tiny_image_artifact), str(recordings), "--jsonl",
                     str(out), "--overwrite"]) == 0
    assert len(_lines(out)) == 3


def test_resume_of_frames_refuses_another_threshold_for_videos_and_image_folders(
        tiny_image_artifact, image_folder, tmp_path, capsys):
    """Frame lines carried no threshold and a video's frames were not checked: a --resume with
    another --threshold mixed two thresholds' decisions in one file."""
    from test_sources import write_video

    video = write_video(tmp_path / "line.avi", frames=12)
    model = str(tiny_image_artifact)
    for inputs in ([str(video)], [str(image_folder)]):
        whole = tmp_path / "whole.jsonl"
        assert cli.main(["batch", model, *inputs, "--jsonl", str(whole), "--overwrite",
                         "--threshold", "1e-9"]) == 0
        first = json.loads(whole.read_text().splitlines()[0])
        assert first["threshold"] == 1e-9 and first["anomaly"] is True
        cut = tmp_path / "cut.jsonl"
        cut.write_text("".join(whole.read_text().splitlines(keepends=True)[:2]))
        capsys.readouterr()
        assert cli.main(["batch", model, *inputs, "--jsonl", str(cut), "--resume"]) == 2
        err = capsys.readouterr().err
        assert "this run decides" in err and "its threshold (--threshold) is not" in err
        assert "likelihood" not in err
        assert cli.main(["batch", model, *inputs, "--jsonl", str(cut), "--resume",
                         "--threshold", "1e-9"]) == 0
        assert _lines(cut) == _lines(whole)


def test_the_batch_summary_adds_up_what_score_says_of_each_source(sensor_artifacts, tmp_path,
                                                                   capsys):
    """Someone re-scoring months of files read `"errors": []` and nothing of rows filled, out
    of order, or the alarms: the summary adds up `vigil score`'s counts over the items."""
    model = str(sensor_artifacts.fp32)
    rows = sensor_artifacts.test_csv.read_text().splitlines()[:300]
    folder = tmp_path / "month"
    folder.mkdir()
    dirty = rows[:50] + [rows[50].replace(rows[50].split(",")[1], "oops", 1)] + rows[51:]
    (folder / "a.csv").write_text("\n".join(dirty) + "\n")
    (folder / "b.csv").write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    def summary() -> dict:  # the last JSON line either command printed
        said = capsys.readouterr()
        lines = [line for line in (said.out + said.err).splitlines() if line.startswith("{")]
        record = json.loads(lines[-1])
        return record.get("summary", record)

    assert cli.main(["score", model, str(folder), "--jsonl", str(tmp_path / "s.jsonl")]) == 0
    scored = summary()
    assert cli.main(["batch", model, str(folder), "--jsonl", str(tmp_path / "b.jsonl")]) == 0
    batch = summary()
    for key in ("rows", "windows", "rows_filled", "rows_out_of_order", "rows_unseen_inputs", "alarms",
                "alarm_episodes"):
        assert batch[key] == scored[key], key
    assert batch["rows_filled"] == 1


def test_standard_output_is_neither_resumed_nor_shared_with_ray(sensor_artifacts, csv_folder,
                                                                capsys):
    model = str(sensor_artifacts.fp32)
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", "-", "--resume"]) == 2
    assert "`--jsonl -` is standard output, which cannot be read back" in capsys.readouterr().err
    assert cli.main(["batch", model, str(csv_folder), "--jsonl", "-", "--ray"]) == 2
    assert "Ray's own processes print to standard output too" in capsys.readouterr().err


def test_a_file_none_of_whose_rows_scored_is_an_error_of_the_batch(tmp_path, capsys):
    """A decimal-comma file gave only skipped lines and no error in the batch's summary, where
    `vigil score` refuses it; a long batch also said nothing until its end."""
    from sensor_fixtures import write_tiny_sensor_artifact

    tiny_sensor = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    archive = tmp_path / "archive"  # a folder's files are checked as they are scored
    archive.mkdir()
    good, comma = archive / "good.csv", archive / "comma.csv"
    good.write_text("timestamp,a,b,c\n" + "".join(f"{i},0.1,0.2,0.3\n" for i in range(20)))
    comma.write_text("timestamp;a;b;c\n" + "".join(f"{i};0,1;0,2;0,3\n" for i in range(20)))
    assert cli.main(["batch", str(tiny_sensor), str(archive), "--jsonl",
                     str(tmp_path / "b.jsonl")]) == 0
    err = capsys.readouterr().err
    summary = json.loads(err.strip().splitlines()[-1])["summary"]
    assert any("comma.csv: none of its 20 rows could be scored" in e for e in summary["errors"])
    assert not any("good.csv" in e for e in summary["errors"])
    assert "items scored" in err  # progress on stderr


def test_resume_on_an_output_another_run_writes_is_refused_before_reading_it(tmp_path, capsys,
                                                                            monkeypatch):
    """A second --resume scanned and re-scored the whole file before its lock refused it."""
    import fcntl

    from sensor_fixtures import write_tiny_sensor_artifact

    tiny_sensor = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    data = tmp_path / "day.csv"
    data.write_text("timestamp,a,b,c\n" + "".join(f"{i},0.1,0.2,0.3\n" for i in range(20)))
    results = tmp_path / "b.jsonl"
    assert cli.main(["batch", str(tiny_sensor), str(data), "--jsonl", str(results)]) == 0
    capsys.readouterr()
    read = []
    monkeypatch.setattr(batch_module, "resume_point", lambda *a, **k: read.append(a))
    with open(results, "rb") as held:  # the other run
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert cli.main(["batch", str(tiny_sensor), str(data), "--jsonl", str(results),
                         "--resume"]) == cli.EXIT_INPUT
    assert "is being written by another process" in capsys.readouterr().err and not read


def test_ray_on_a_cluster_refuses_relative_inputs_and_a_swallowed_model_is_named(
        sensor_artifacts, csv_folder, tmp_path, capsys, monkeypatch):
    """A cluster's workers read the inputs from their own working folder: relative paths named
    nothing there and every item was skipped with exit 0. `--ray MODEL INPUT` took the model as
    the address and argparse said only that inputs were missing."""
    monkeypatch.chdir(csv_folder.parent)
    out = tmp_path / "out.jsonl"
    assert cli.main(["batch", str(sensor_artifacts.fp32), csv_folder.name, "--jsonl", str(out),
                     "--ray", "ray://head:10001"]) == 2
    err = capsys.readouterr().err
    assert "relative paths" in err and str(csv_folder.resolve()) in err and not out.exists()
    argv = ["batch", "--ray", str(sensor_artifacts.fp32), str(csv_folder), "--jsonl", str(out)]
    with pytest.raises(SystemExit) as stopped:  # the inputs are missing: a usage error
        cli.main(argv)
    assert stopped.value.code == 2
    assert "--ray took" in capsys.readouterr().err and not out.exists()
    two = ["batch", "--ray", str(sensor_artifacts.fp32), str(csv_folder), str(csv_folder),
           "--jsonl", str(out)]  # parsed: the folder taken as the model
    assert cli.main(two) == 2
    assert "--ray took" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit):  # another usage error says nothing of --ray
        cli.main(["batch", str(sensor_artifacts.fp32), str(csv_folder), "--jsonl", str(out),
                  "--threads", "abc", "--ray", str(csv_folder)])
    assert "--ray took" not in capsys.readouterr().err
    from vigil.cli.arguments import ray_took_a_path

    (tmp_path / "auto").mkdir()  # Ray's own word for the cluster is never taken for a path
    monkeypatch.chdir(tmp_path)
    assert ray_took_a_path(["batch", "--ray", "auto", "m.onnx"]) == ""
    assert "--ray took 'auto'" not in ray_took_a_path(["batch", "--ray", "auto"])


def test_a_ray_workers_warnings_travel_with_its_items_summary(sensor_artifacts, monkeypatch):
    """On Ray a worker's warnings (a gap in time, a lasting alarm) went to Ray's logs, which are
    off: the item's summary now carries them, and the driver says them."""
    import logging
    from dataclasses import asdict

    scorer = batch_module.Scorer(str(sensor_artifacts.fp32))

    def warning_item(item, out, max_frames=None):
        logging.getLogger("vigil").warning("%s: rows 3 and 4 are 60 s apart", item.name)
        out.write('{"index": 0}\n')
        return {"rows": 1}

    monkeypatch.setattr(scorer, "score_into", warning_item)
    item = batch_module.WorkItem("csv", ("a.csv",), "a.csv")
    (part,) = list(scorer({"item": [json.dumps(asdict(item))]}))
    summary = json.loads(part["summary"][0])
    assert summary[batch_module.WORKER_WARNINGS] == [
        [logging.WARNING, "a.csv: rows 3 and 4 are 60 s apart"]]
    assert not logging.getLogger("vigil").handlers or all(
        type(h).__name__ != "Keeper" for h in logging.getLogger("vigil").handlers)
