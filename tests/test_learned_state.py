"""What a stream learns at run time survives a restart with ``vigil score --state``: the
adaptive threshold, the anomaly likelihood and the running normalization continue where they
were; a file of another model or an unreadable one starts afresh with a warning."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from dataclasses import replace

import numpy as np
import pytest

import vigil
from sensor_fixtures import WINDOW, tiny_sensor_graph, tiny_sensor_spec
from vigil.cli import commands as cli
from vigil.export.package import write_artifact
from vigil.runtime.core.spec import (AdaptiveThresholdSpec, LikelihoodSpec,
                                     RunningNormalizationSpec)
from vigil.runtime.sensor.streaming import StreamingScorer


def learning_spec(**changes):
    """The tiny model's spec with every part that learns while it runs, warming up quickly."""
    return replace(tiny_sensor_spec(),
                   adaptive=AdaptiveThresholdSpec(memory=60, warmup=20, quantile=0.9, factor=1.5),
                   likelihood=LikelihoodSpec(short=3, long=40, z=4.0, warmup=10, std_floor=0.01,
                                             level_warmup=20),
                   running_normalization=RunningNormalizationSpec(memory=80, warmup=15),
                   **changes)


@pytest.fixture
def learning_model(tmp_path):
    """The tiny model with every part that learns while it runs, warming up quickly."""
    return write_artifact(tiny_sensor_graph(), learning_spec(), tmp_path / "learning.onnx")


def rows(n: int, seed: int = 0) -> np.ndarray:
    """Readings noisier than the tiny model's threshold expects, drifting slowly, with a fault."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 0.6, (n, 3)) + np.linspace(0, 1.0, n)[:, None]
    values[int(0.8 * n):int(0.8 * n) + 6] += 4.0
    return values


def decisions(results) -> list[tuple]:
    return [(r.index, r.score, r.threshold, r.anomaly) for r in results if r.score is not None]


def test_a_restored_stream_decides_as_the_unbroken_one_after_a_restart_of_its_window(
        learning_model):
    detector = vigil.load(learning_model)
    data = rows(300)
    first = StreamingScorer(detector)
    first.push_rows([(v, i, None, None) for i, v in enumerate(data[:150])])
    saved = json.loads(json.dumps(first.learned_state()))  # as the file holds it
    assert set(saved) == {"model_sha256", "model_identity", "parts"} and set(saved["parts"]) == {
        "adaptive_threshold", "anomaly_likelihood", "running_normalization"}

    restarted = StreamingScorer(detector)
    assert restarted.restore_learned(saved) == (
        ["adaptive_threshold", "anomaly_likelihood", "running_normalization"], [])
    later = [(v, 150 + i, None, None) for i, v in enumerate(data[150:])]
    after_restart = decisions(restarted.push_rows(later))
    first.reset()  # the same stream, its window restarted (as after a gap): it keeps what it learned
    unbroken = decisions(first.push_rows(later))
    assert after_restart == unbroken
    fresh = decisions(StreamingScorer(detector).push_rows(later))
    assert [d[2] for d in fresh] != [d[2] for d in unbroken]  # without it the threshold restarts


def test_a_part_recorded_under_another_rule_starts_afresh_and_a_malformed_one_is_refused(
        learning_model):
    detector = vigil.load(learning_model)
    scorer = StreamingScorer(detector)
    scorer.push_rows([(v, i, None, None) for i, v in enumerate(rows(80))])
    saved = json.loads(json.dumps(scorer.learned_state()))
    saved["parts"]["adaptive_threshold"]["spec"]["memory"] = 61
    assert StreamingScorer(detector).restore_learned(saved) == (
        ["anomaly_likelihood", "running_normalization"], ["adaptive_threshold"])
    saved["parts"]["running_normalization"]["var"][0] = -1.0
    with pytest.raises(ValueError, match="running_normalization.var must be a list of 3 finite "
                                         "non-negative numbers"):
        StreamingScorer(detector).restore_learned(saved)
    used = StreamingScorer(detector)
    used.push_rows([(rows(5)[0], 0, None, None)])
    with pytest.raises(ValueError, match="before the stream's first row"):
        used.restore_learned(saved)


def write_csv(path, data: np.ndarray, first_index: int = 0) -> None:
    lines = ["timestamp,a,b,c"] + [f"{first_index + i},{float(v[0])!r},{float(v[1])!r},{float(v[2])!r}"
                                   for i, v in enumerate(data)]
    path.write_text("\n".join(lines) + "\n")


def score_lines(argv: list[str]) -> list[dict]:
    return [json.loads(line) for line in open(argv[argv.index("--jsonl") + 1])]


def test_the_cli_continues_from_the_state_file_as_a_folder_continues_its_files(
        learning_model, tmp_path, capsys):
    data = rows(300)
    folder = tmp_path / "rotated"
    folder.mkdir()
    write_csv(folder / "part1.csv", data[:150])
    write_csv(folder / "part2.csv", data[150:], first_index=150)
    state = tmp_path / "pump.state.json"
    run1 = ["score", str(learning_model), str(folder / "part1.csv"), "--jsonl",
            str(tmp_path / "run1.jsonl"), "--state", str(state)]
    assert cli.main(run1) == 0
    saved = json.loads(state.read_text())
    assert saved["model_sha256"] == vigil.load(learning_model).sha256
    run2 = ["score", str(learning_model), str(folder / "part2.csv"), "--jsonl",
            str(tmp_path / "run2.jsonl"), "--state", str(tmp_path / "pump.state.json")]
    capsys.readouterr()
    assert cli.main(run2) == 0
    assert "continuing what was learned before: adaptive threshold (60 recent normal scores)" \
        in capsys.readouterr().err
    restarted = score_lines(run2)
    # a restarted process starts its window afresh: part2's first window ends at its WINDOW-th row
    assert restarted[0]["index"] == WINDOW - 1
    alone = ["score", str(learning_model), str(folder / "part2.csv"), "--jsonl",
             str(tmp_path / "alone.jsonl")]
    assert cli.main(alone) == 0
    assert [r.get("threshold") for r in score_lines(alone)] != \
           [r.get("threshold") for r in restarted]

    # the files of a folder are one stream: the rows at the boundary fill windows, the alarm
    # rule goes on, and every line is the one file's
    together = ["score", str(learning_model), str(folder), "--jsonl",
                str(tmp_path / "folder.jsonl"), "--state", str(tmp_path / "folder.state.json")]
    assert cli.main(together) == 0
    write_csv(tmp_path / "whole.csv", data)
    whole = ["score", str(learning_model), str(tmp_path / "whole.csv"), "--jsonl",
             str(tmp_path / "whole.jsonl"), "--state", str(tmp_path / "whole.state.json")]
    assert cli.main(whole) == 0
    decided = [(r["score"], r.get("threshold"), r["anomaly"], r.get("alarm_start"))
               for r in score_lines(whole)]
    assert [(r["score"], r.get("threshold"), r["anomaly"], r.get("alarm_start"))
            for r in score_lines(together)] == decided  # rows numbered in each file
    assert [r["index"] for r in score_lines(together) if r["source"].endswith("part2.csv")] == \
        list(range(150))


def test_a_folder_is_continued_in_its_names_natural_order_and_a_file_that_goes_back_in_time_is_named(
        learning_model, tmp_path, capsys):
    def run_summary() -> tuple[dict, str]:
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if '"summary"' in line]
        return json.loads(lines[-1])["summary"], err

    data = rows(330)
    days = tmp_path / "days"
    days.mkdir()
    epoch = 1_760_000_000  # times in epoch seconds: dates, which files of one stream continue
    for day in range(11):  # day0 .. day10: text order would read day10 before day2
        write_csv(days / f"day{day}.csv", data[30 * day:30 * (day + 1)],
                  first_index=epoch + 30 * day)
    out, state = tmp_path / "days.jsonl", tmp_path / "days.state.json"
    assert cli.main(["score", str(learning_model), str(days), "--jsonl", str(out), "--state",
                     str(state)]) == 0
    sources = list(dict.fromkeys(r["source"] for r in score_lines(["--jsonl", str(out)])))
    assert [s.rsplit("/", 1)[1] for s in sources] == [f"day{d}.csv" for d in range(11)]
    summary, err = run_summary()
    assert summary["files_out_of_order"] == 0 and "earlier than" not in err

    plant = tmp_path / "plant"  # two machines recorded over the same hours, one folder
    (plant / "pumpA").mkdir(parents=True)
    (plant / "pumpB").mkdir()
    write_csv(plant / "pumpA" / "day1.csv", data[:150], first_index=epoch)
    write_csv(plant / "pumpB" / "day1.csv", data[150:300], first_index=epoch)
    assert cli.main(["score", str(learning_model), str(plant), "--jsonl",
                     str(tmp_path / "plant.jsonl"), "--state", str(tmp_path / "plant.state.json")]) == 0
    summary, err = run_summary()
    assert summary["files_out_of_order"] == 1
    assert f"pumpB/day1.csv: its first time ('{epoch}', row 0) is earlier than" in err
    assert "score each machine's with its own --state FILE" in err

    logs = tmp_path / "logs"  # one machine's logs, each timed from its own start: not compared
    logs.mkdir()
    for part in range(3):
        write_csv(logs / f"log{part + 1}.csv", data[100 * part:100 * (part + 1)])
    assert cli.main(["score", str(learning_model), str(logs), "--jsonl",
                     str(tmp_path / "logs.jsonl"), "--state", str(tmp_path / "logs.json")]) == 0
    summary, err = run_summary()
    assert summary["files_out_of_order"] == 0 and "earlier than" not in err

    mixed = tmp_path / "mixed"  # pump A logs ISO times, pump B epoch seconds, the same hours
    mixed.mkdir()
    write_csv(mixed / "a.csv", data[:150], first_index=epoch)
    text = (mixed / "a.csv").read_text().splitlines()
    iso = [text[0]] + [f"{datetime.fromtimestamp(int(line.split(',')[0]), timezone.utc).isoformat()},"
                       f"{line.split(',', 1)[1]}" for line in text[1:]]
    (mixed / "a.csv").write_text("\n".join(iso) + "\n")
    write_csv(mixed / "b.csv", data[150:300], first_index=epoch)
    assert cli.main(["score", str(learning_model), str(mixed), "--jsonl",
                     str(tmp_path / "mixed.jsonl"), "--state", str(tmp_path / "mixed.json")]) == 0
    summary, err = run_summary()
    assert summary["files_out_of_order"] == 1 and "b.csv: its first time" in err


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot be read as a learned state"),
    ("\0" * 900, "cannot be read as a learned state"),  # NUL bytes after a power loss
    ('{"format": "other"}', "is not a version-1 Vigil learned state"),
    ('{"format": "vigil-learned-state", "version": 1, "model_sha256": "ab", "parts": {}}',
     "was learned by another artifact"),
])
def test_a_state_file_that_cannot_be_used_is_warned_of_and_replaced(
        learning_model, tmp_path, capsys, content, message):
    data_file = tmp_path / "s.csv"
    write_csv(data_file, rows(60))
    state = tmp_path / "s.state.json"
    state.write_text(content)
    assert cli.main(["score", str(learning_model), str(data_file), "--jsonl",
                     str(tmp_path / "o.jsonl"), "--state", str(state)]) == 0
    err = capsys.readouterr().err
    assert message in err and "learning starts afresh" in err
    assert json.loads(state.read_text())["model_sha256"] == vigil.load(learning_model).sha256


def test_state_is_refused_where_it_cannot_apply(learning_model, tmp_path, capsys):
    from image_fixtures import write_tiny_image_artifact

    data_file = tmp_path / "s.csv"
    write_csv(data_file, rows(60))
    same = tmp_path / "h.json"
    other = tmp_path / "readings.txt"
    other.write_text("time,a,b\n1,2,3\n")
    newer = tmp_path / "newer.json"
    newer.write_text('{"format": "vigil-learned-state", "version": 99, "parts": {}}')
    image_model = write_tiny_image_artifact(tmp_path / "img.onnx")
    for argv, message in (
            ([str(learning_model), str(data_file), "--state", str(same), "--health", str(same)],
             "`--state` and `--health` name the same file"),
            ([str(learning_model), str(data_file), "--state", "-"], "--state needs a file path"),
            ([str(learning_model), str(data_file), "--state", ""], "--state needs a file path"),
            ([str(learning_model), str(data_file), "--state", str(tmp_path)], "is a folder"),
            ([str(learning_model), str(data_file), "--state", str(data_file / "x.json")],
             "cannot be"),
            ([str(learning_model), str(data_file), "--state", str(tmp_path / "new") + "/"],
             "is a folder"),
            ([str(learning_model), str(data_file), "--state", "/dev/null"],
             "is not a regular file"),
            ([str(image_model), str(tmp_path), "--state", str(tmp_path / "x.json")],
             "--state applies to sensor models"),
            # a .csv in the folder scored: the next run would read it as data
            ([str(learning_model), str(tmp_path), "--state", str(tmp_path / "learned.csv")],
             "is a .csv inside"),
            ([str(learning_model), str(tmp_path), "--state", str(tmp_path / "learned.csv")],
             "name it .json"),
            # a file that holds something else (data) is never replaced by the state
            ([str(learning_model), str(data_file), "--state", str(other)],
             "exists and holds something else"),
            # a newer release's learning is kept for it (a rollback replaced it)
            ([str(learning_model), str(data_file), "--state", str(newer)],
             "was written by a newer Vigil (learned-state version 99")):
        capsys.readouterr()
        assert cli.main(["score", *argv]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists() and not same.exists()
    assert not (tmp_path / "learned.csv").exists() and other.read_text() == "time,a,b\n1,2,3\n"
    assert '"version": 99' in newer.read_text()


def test_the_files_of_a_folder_continue_one_another_even_where_the_state_cannot_be_written(
        learning_model, tmp_path, monkeypatch, capsys):
    from vigil.runtime.sensor import learned_state

    data = rows(300)
    folder = tmp_path / "rotated"
    folder.mkdir()
    write_csv(folder / "part1.csv", data[:150])
    write_csv(folder / "part2.csv", data[150:], first_index=150)
    argv = ["score", str(learning_model), str(folder), "--jsonl", str(tmp_path / "ok.jsonl"),
            "--state", str(tmp_path / "new" / "made" / "s.json")]  # its folders are made
    assert cli.main(argv) == 0 and (tmp_path / "new" / "made" / "s.json").exists()
    written = [r.get("threshold") for r in score_lines(argv)]

    def full_disk(path, text, mode=None, durable=False):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(learned_state, "write_atomically", full_disk)
    argv = ["score", str(learning_model), str(folder), "--jsonl", str(tmp_path / "full.jsonl"),
            "--state", str(tmp_path / "full.json")]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert len([line for line in err.splitlines() if "WARNING" in line and "carried to the next "
                "file of this run, but lost at a restart" in line]) == 1  # said once an hour
    # and the summary's (the health report's) state_error says it, leaving last_error to the
    # stream: nothing a watchdog reads showed it (r1), and last_error was overwritten (d2)
    summary = json.loads([line for line in err.splitlines() if '"summary"' in line][-1])
    assert summary["summary"]["state_error"].startswith(f"--state {tmp_path / 'full.json'}: "
                                                        f"cannot be written (No space left")
    assert "--state" not in (summary["summary"]["last_error"] or "")
    assert [r.get("threshold") for r in score_lines(argv)] == written


def test_a_run_without_the_likelihood_keeps_its_part_for_the_runs_with_it(learning_model,
                                                                          tmp_path, capsys):
    data_file = tmp_path / "s.csv"
    write_csv(data_file, rows(120))
    state = tmp_path / "s.json"
    base = ["score", str(learning_model), str(data_file), "--state", str(state)]
    assert cli.main([*base, "--jsonl", str(tmp_path / "1.jsonl")]) == 0
    assert cli.main([*base, "--jsonl", str(tmp_path / "2.jsonl"), "--no-likelihood"]) == 0
    assert "anomaly_likelihood" in json.loads(state.read_text())["parts"]
    capsys.readouterr()
    assert cli.main([*base, "--jsonl", str(tmp_path / "3.jsonl")]) == 0
    assert "learned afresh" not in capsys.readouterr().err


def test_a_folder_of_files_too_short_to_warm_up_is_warned_of_without_state(
        learning_model, tmp_path, capsys):
    folder = tmp_path / "rotated"
    folder.mkdir()
    data = rows(60)
    for n in range(3):  # 20 rows: 17 windows each, fewer than the adaptive warm-up of 20
        write_csv(folder / f"part{n}.csv", data[20 * n:20 * (n + 1)], first_index=20 * n)
    base = ["score", str(learning_model), str(folder)]
    assert cli.main([*base, "--jsonl", str(tmp_path / "a.jsonl")]) == 0
    assert "3 of its 3 files ended before the adaptive threshold" in capsys.readouterr().err
    assert cli.main([*base, "--jsonl", str(tmp_path / "b.jsonl"), "--state",
                     str(tmp_path / "s.json")]) == 0
    assert "ended before the adaptive threshold" not in capsys.readouterr().err


def test_the_likelihood_turned_off_stays_off_when_the_detector_is_pickled(learning_model):
    """--no-likelihood replaced the spec from the CLI, which unpickling (a batch's workers)
    forgot: the likelihood was back on."""
    import pickle

    detector = vigil.load(learning_model)
    assert detector.likelihood
    detector.likelihood = False
    again = pickle.loads(pickle.dumps(detector))
    assert not again.likelihood and again.spec.likelihood is None
    again.likelihood = True  # given back: the artifact's own
    assert again.spec.likelihood == vigil.load(learning_model).spec.likelihood
    plain = vigil.load(write_artifact(tiny_sensor_graph(), tiny_sensor_spec(),
                                      learning_model.with_name("plain.onnx")))
    with pytest.raises(ValueError, match="`likelihood` cannot be turned on"):
        plain.likelihood = True
    with pytest.raises(TypeError, match="`likelihood` must be True or False; received str"):
        detector.likelihood = "no"  # truthy: it turned the likelihood on


def test_overflowed_scores_as_eval_replays_them_are_never_learned():
    """A score that overflowed is written as the largest double (finite_or_max), and eval
    replays those: the likelihood summed them and failed (OverflowError from math.fsum)."""
    import sys

    from vigil.runtime.sensor.alarms import AdaptiveThreshold, AnomalyLikelihood

    likelihood = AnomalyLikelihood(LikelihoodSpec(short=3, long=40, z=4.0, warmup=10,
                                                  std_floor=0.01, level_warmup=20))
    adaptive = AdaptiveThreshold(AdaptiveThresholdSpec(memory=60, warmup=20, quantile=0.9,
                                                       factor=1.5))
    for k in range(100):
        score = sys.float_info.max if 40 <= k < 50 else float(k % 5)
        assert likelihood.step(score) is False or k < 40 or k >= 50
        adaptive.observe(score, alarm=False)
    assert adaptive.learned == 90 and np.isfinite(adaptive.threshold(1.0))


def test_learned_state_and_deciders_belong_to_their_own_model_and_rule(learning_model, tmp_path):
    """Another model's learned state and decider were taken without a word (a review: model B
    with A's state raised 52 alarms against 84; A's decider gave B 0 alarms against 204), the
    --state file's own record restored nothing silently, and a scorer made before the
    likelihood was turned off kept it."""
    detector = vigil.load(learning_model)
    data = rows(300)
    first = StreamingScorer(detector)
    first.push_rows([(v, i, None, None) for i, v in enumerate(data[:150])])
    saved = first.learned_state()
    other_spec = replace(tiny_sensor_spec(), adaptive=detector.spec.adaptive,
                         likelihood=detector.spec.likelihood, threshold=replace(
                             detector.spec.threshold, value=detector.spec.threshold.value + 1))
    other = vigil.load(write_artifact(tiny_sensor_graph(), other_spec, tmp_path / "other.onnx"))
    with pytest.raises(ValueError, match="was learned by another model"):
        StreamingScorer(other).restore_learned(saved)
    for wrong in (None, '{"a": 1}'):
        with pytest.raises(TypeError, match="must be the dict"):
            StreamingScorer(detector).restore_learned(wrong)
    # the record --state writes, and a bare dict of parts (0.3's first form), are read too
    names = ["adaptive_threshold", "anomaly_likelihood", "running_normalization"]
    for form in ({"format": "vigil-learned-state", "version": 1, **saved}, saved["parts"]):
        assert StreamingScorer(detector).restore_learned(form) == (names, [])
    scores = detector.score_signal(data)[1]
    with pytest.raises(ValueError, match="`decider` is another model's"):
        other.alarms(scores, detector.alarm_decider())
    decider = detector.alarm_decider()
    detector.likelihood = False
    with pytest.raises(ValueError, match="made under another alarm rule"):
        detector.alarms(scores, decider)
    stream = StreamingScorer(vigil.load(learning_model))
    stream.detector.likelihood = False
    with pytest.raises(ValueError, match="make a new StreamingScorer"):
        stream.push(data[0])


def test_a_state_file_is_held_by_one_run(learning_model, tmp_path, capsys):
    """Two runs given one --state file overwrote each other's learning without a word."""
    from vigil.runtime.sensor.learned_state import LearnedStateFile

    detector = vigil.load(learning_model)
    state = tmp_path / "learned.json"
    held = LearnedStateFile(state, detector)
    with pytest.raises(ValueError, match="is used by another run"):
        LearnedStateFile(state, detector)
    data_file = tmp_path / "s.csv"
    write_csv(data_file, rows(60))
    out = tmp_path / "o.jsonl"
    assert cli.main(["score", str(learning_model), str(data_file), "--jsonl", str(out),
                     "--state", str(state)]) == 2
    assert "is used by another run" in capsys.readouterr().err and not out.exists()
    held.close()
    assert cli.main(["score", str(learning_model), str(data_file), "--jsonl", str(out),
                     "--state", str(state)]) == 0
    LearnedStateFile(state, detector).close()  # released at the run's end


def test_push_rows_reads_every_row_before_taking_any(learning_model):
    """A row push_rows could not read raised after the rows before it had been taken: their
    windows were never scored or returned."""
    detector = vigil.load(learning_model)
    stream = StreamingScorer(detector)
    good = [(dict(zip("abc", v)), i, None, None) for i, v in enumerate(rows(8))]
    with pytest.raises(TypeError, match=r"`rows\[8\]` must be a tuple"):
        stream.push_rows(good + [({"a": 1.0, "b": 2.0}, 8, None)])
    assert stream.rows_in == 0
    assert len(stream.push_rows(good)) == 8 - detector.spec.window + 1
    # a row read but without one of the features is skipped, as a row of another width is
    (last,) = stream.push_rows([({"a": 1.0, "b": 2.0}, 8, None, None)])
    assert "without the model's ['c']" in last.skipped and stream.rows_in == 9


def test_a_dropped_state_file_lets_the_next_one_have_it(learning_model, tmp_path):
    import gc

    from vigil.runtime.sensor.learned_state import LearnedStateFile

    detector = vigil.load(learning_model)
    state = LearnedStateFile(tmp_path / "s.json", detector)
    with pytest.raises(ValueError, match="is used by another run"):  # held while it lives
        LearnedStateFile(tmp_path / "s.json", detector)
    del state
    gc.collect()
    taken = LearnedStateFile(tmp_path / "s.json", detector)  # dropped: its lock went with it
    with pytest.raises(ValueError, match="is used by another run"):
        LearnedStateFile(tmp_path / "s.json", detector)
    taken.close()
    LearnedStateFile(tmp_path / "s.json", detector).close()


def test_times_compared_across_files_are_dates_in_seconds():
    from vigil.runtime.sensor.streaming import _date_seconds

    assert _date_seconds((1, 1_760_000_000.0)) == 1_760_000_000.0  # ISO 8601
    assert _date_seconds((0, 1_760_000_000.0)) == 1_760_000_000.0  # epoch seconds
    assert _date_seconds((0, 1_760_000_000_500.0)) == 1_760_000_000.5  # epoch milliseconds
    assert _date_seconds((0, 129.0)) is None and _date_seconds(None) is None  # elapsed seconds


def test_a_frozen_run_restored_at_a_restart_is_counted_and_said(learning_model, tmp_path, caplog):
    """A restarted scorer whose state brings a run past its limit flagged every line but
    counted none and said nothing (a review): it counts it once and says it."""
    from vigil.runtime.sensor.learned_state import LearnedStateFile
    from vigil.runtime.sensor.streaming import STEADY_FACTOR, STEADY_MIN_ROWS

    spec = vigil.load(learning_model).spec
    model = write_artifact(tiny_sensor_graph(), replace(
        spec, training={**spec.training, "steady_runs": {"a": 3, "b": 2, "c": 2}}),
        tmp_path / "steady.onnx")
    detector = vigil.load(model)
    run = detector.spec.steady_runs[0]
    limit = max(STEADY_FACTOR * run.longest, STEADY_MIN_ROWS)
    frozen = np.asarray(rows(limit + 20), dtype=np.float32)
    frozen[:, run.column] = frozen[0, run.column]
    first = StreamingScorer(detector)
    first.push_rows((r, i, None, None) for i, r in enumerate(frozen))
    assert first.summary()["unchanged_runs"] == 1
    state = LearnedStateFile(tmp_path / "s.json", detector)
    state.save(first)
    state.close()
    again = LearnedStateFile(tmp_path / "s.json", detector)  # the restarted process's
    second = StreamingScorer(detector)
    with caplog.at_level("WARNING", logger="vigil"):
        again.restore(second)
    assert second.summary()["unchanged_runs"] == 1
    assert "before this run (restored from the learned state)" in caplog.text
    results = second.push_rows((r, i, None, None) for i, r in enumerate(frozen[:30]))
    assert all(r.unchanged for r in results if r.score is not None)
    assert second.summary()["unchanged_runs"] == 1  # the same run: not counted again


def test_a_continued_stream_decides_as_one_stream_and_an_alarm_across_the_boundary_is_one_episode(
        learning_model, tmp_path):
    detector = vigil.load(learning_model)
    data = rows(300)
    unbroken = StreamingScorer(detector).push_rows([(v, i, None, None) for i, v in enumerate(data)])
    cut = 242  # inside the fault (rows 240-245)
    assert unbroken[cut - WINDOW + 1].anomaly  # the window ending at the last row before the cut
    first = StreamingScorer(detector)
    before = first.push_rows([(v, i, None, None) for i, v in enumerate(data[:cut])])
    second = StreamingScorer(detector)
    second.continue_from(first)
    after = second.push_rows([(v, i, None, None) for i, v in enumerate(data[cut:])])
    assert [(r.score, r.threshold, r.anomaly, r.alarm_start) for r in before + after] == \
        [(r.score, r.threshold, r.anomaly, r.alarm_start) for r in unbroken]
    assert after[0].anomaly and not after[0].alarm_start and second.episodes == 0
    longest = second.summary()["longest_alarm"]  # it began in the stream continued
    assert longest["first_row"] == first.alarm_first_row < cut
    assert longest["first_source"] == "an earlier stream"

    with pytest.raises(ValueError, match="before the stream's first row"):
        second.continue_from(first)
    other = vigil.load(write_artifact(tiny_sensor_graph(), tiny_sensor_spec(),
                                      tmp_path / "other.onnx"))
    with pytest.raises(ValueError, match="scored another model"):
        StreamingScorer(other).continue_from(first)
    detector.likelihood = False  # the same model under another rule: said as such
    with pytest.raises(ValueError, match="decided under another alarm rule .*likelihood"):
        StreamingScorer(detector).continue_from(first)


@pytest.fixture
def timed_model(tmp_path):
    """The learning model, trained (as it were) on rows one second apart: epoch-second times."""
    from vigil.runtime.core.spec import TimeStepSpec

    spec = learning_spec(hold=3, time_step=TimeStepSpec(numeric=True, typical=1.0, limit=4.0))
    return write_artifact(tiny_sensor_graph(), spec, tmp_path / "timed.onnx")


def test_a_restart_that_follows_within_the_time_step_continues_the_window_and_its_alarm(
        timed_model, tmp_path, capsys):
    """A review scored a file's halves in two runs with one --state: the second half's first
    47 rows were never decided and a fault right after the split went unseen."""
    epoch = 1_760_000_000
    data = rows(300)
    cut = 242  # inside the fault (rows 240-245)
    write_csv(tmp_path / "whole.csv", data, first_index=epoch)
    write_csv(tmp_path / "part1.csv", data[:cut], first_index=epoch)
    write_csv(tmp_path / "part2.csv", data[cut:], first_index=epoch + cut)

    def run(name: str, state: str) -> list[dict]:
        argv = ["score", str(timed_model), str(tmp_path / name), "--jsonl",
                str(tmp_path / f"{name}.jsonl"), "--state", str(tmp_path / state)]
        assert cli.main(argv) == 0
        return score_lines(argv)

    unbroken = run("whole.csv", "whole.json")
    restarted = run("part1.csv", "parts.json") + run("part2.csv", "parts.json")
    assert [(r["score"], r.get("threshold"), r["anomaly"], r.get("alarm_start"))
            for r in restarted] == [(r["score"], r.get("threshold"), r["anomaly"],
                                     r.get("alarm_start")) for r in unbroken]
    assert "the window's last 3 rows, its alarm and episode" in capsys.readouterr().err

    # an hour later: the window starts afresh, and says why
    write_csv(tmp_path / "later.csv", data[cut:], first_index=epoch + cut + 3600)
    later = run("later.csv", "parts.json")
    assert later[0]["index"] == WINDOW - 1
    step = cut + 3600 - (len(data) - 1)  # from part2's last row
    assert f"row 0: {step} after the last row the state kept (continued within 4), so its " \
           f"window starts afresh" in capsys.readouterr().err


def test_a_malformed_window_tail_in_a_state_is_not_continued(timed_model):
    detector = vigil.load(timed_model)
    first = StreamingScorer(detector)
    first.push_rows([(v, i, str(1_760_000_000 + i), None) for i, v in enumerate(rows(50))])
    saved = json.loads(json.dumps(first.learned_state()))
    assert len(saved["parts"]["window_tail"]["rows"]) == WINDOW - 1
    for key, value in (("rows", [[1.0, 2.0]] * (WINDOW - 1)), ("latest_time", float("nan")),
                       ("position", -1), ("episode_on", 1), ("rows", [])):
        broken = json.loads(json.dumps(saved))
        broken["parts"]["window_tail"][key] = value
        restarted = StreamingScorer(detector)
        assert "window_tail" not in restarted.restore_learned(broken)[0], key
        results = restarted.push_rows([(v, 50 + i, str(1_760_000_050 + i), None)
                                       for i, v in enumerate(rows(10))])
        assert [r.index for r in results if r.score is not None][0] == 50 + WINDOW - 1


def test_a_window_tail_given_to_a_model_without_a_time_step_starts_the_window_afresh(
        timed_model, learning_model, caplog):
    """A record of bare parts names no model, so a window tail kept by a model that records its
    time step may be given to one that records none: its first timed row starts the window
    afresh (it met None: AttributeError on the time step)."""
    first = StreamingScorer(vigil.load(timed_model))
    first.push_rows([(v, i, str(1_760_000_000 + i), None) for i, v in enumerate(rows(50))])
    tail = json.loads(json.dumps(first.learned_state()))["parts"]["window_tail"]
    untimed = StreamingScorer(vigil.load(learning_model))
    assert "window_tail" in untimed.restore_learned({"window_tail": tail})[0]
    with caplog.at_level("INFO", logger="vigil"):
        results = untimed.push_rows([(v, 50 + i, str(1_760_000_050 + i), None)
                                     for i, v in enumerate(rows(10))])
    assert [r.index for r in results if r.score is not None][0] == 50 + WINDOW - 1
    assert ("row 50: the model records no time step to continue a window within, so its "
            "window starts afresh") in caplog.text


def test_rotated_files_with_a_hole_in_time_or_a_refused_file_between_them(timed_model, tmp_path,
                                                                          capsys):
    """Review dA: a day file missing (ten days) joined the files' rows unflagged; a refused file
    between two hid that the third went back in time, while its windows took the first's rows."""
    epoch, data = 1_760_000_000, rows(300)
    logs = tmp_path / "logs"
    logs.mkdir()
    write_csv(logs / "day1.csv", data[:150], first_index=epoch)
    write_csv(logs / "day3.csv", data[150:], first_index=epoch + 10 * 86_400)
    argv = ["score", str(timed_model), str(logs), "--jsonl", str(tmp_path / "logs.jsonl"),
            "--state", str(tmp_path / "logs.json")]
    assert cli.main(argv) == 0
    day3 = [r for r in score_lines(argv) if r["source"].endswith("day3.csv")]
    assert [r["index"] for r in day3 if r.get("time_gap")] == list(range(WINDOW - 1))
    assert "rows 149 and 0 are 863851 apart" in capsys.readouterr().err

    parts = tmp_path / "parts"
    parts.mkdir()
    write_csv(parts / "part1.csv", data[:150], first_index=epoch)
    (parts / "part2.csv").write_text("timestamp,x,y\n1,2,3\n")  # another machine's columns
    write_csv(parts / "part3.csv", data[150:], first_index=epoch + 10)  # back in time
    argv = ["score", str(timed_model), str(parts), "--jsonl", str(tmp_path / "parts.jsonl"),
            "--state", str(tmp_path / "parts.json")]
    assert cli.main(argv) == 0
    part3 = [r for r in score_lines(argv) if r["source"].endswith("part3.csv")]
    assert part3[0]["index"] == WINDOW - 1  # a hole in the stream: its window starts afresh
    err = capsys.readouterr().err
    assert "part3.csv: its first time" in err and "is earlier than" in err


def test_a_continued_stream_learns_on_a_copy(timed_model):
    """Review dA: two streams continued from one shared its learning, and changed the first's."""
    detector = vigil.load(timed_model)
    first = StreamingScorer(detector)
    first.push_rows([(v, i, None, None) for i, v in enumerate(rows(100))])
    learned = json.dumps(first.learned_state())
    a, b = StreamingScorer(detector), StreamingScorer(detector)
    a.continue_from(first)
    b.continue_from(first)
    b.push_rows([(v + 3.0, i, None, None) for i, v in enumerate(rows(80, seed=1))])
    alone = StreamingScorer(detector)
    alone.continue_from(first)
    later = [(v, i, None, None) for i, v in enumerate(rows(80, seed=2))]
    assert decisions(a.push_rows(later)) == decisions(alone.push_rows(later))
    assert json.dumps(first.learned_state()) == learned


def test_a_restart_at_any_row_decides_and_flags_as_the_unbroken_stream(timed_model):
    """Review dC: a run of blank rows across the restart was filled past max_gap, and the
    windows after it lost their filled_in_window and time_gap flags."""
    detector = vigil.load(timed_model)
    data = rows(160)
    data[60:64] = np.nan  # four blank rows: two filled (max_gap 2), then the window restarts
    data[100:102] = np.nan
    epoch = 1_760_000_000
    times = [epoch + i + (30 if i >= 120 else 0) for i in range(160)]  # a gap before row 120
    times[140] = epoch + 100  # a row out of order
    feed = [(v, i, str(t), None) for i, (v, t) in enumerate(zip(data, times))]
    whole = [r.to_json() for r in StreamingScorer(detector).push_rows(feed)]
    for cut in (58, 61, 62, 63, 64, 99, 101, 103, 119, 120, 121, 122, 139, 141, 143):
        first = StreamingScorer(detector)
        before = [r.to_json() for r in first.push_rows(feed[:cut])]
        state = json.loads(json.dumps(first.learned_state()))
        restarted = StreamingScorer(detector)
        restarted.restore_learned(state)
        after = [r.to_json() for r in restarted.push_rows(feed[cut:])]
        if times[cut] - max(times[:cut]) > 4:  # not within the time step's limit: afresh
            continue
        assert before + after == whole, cut


def test_a_tail_kept_survives_a_run_that_reads_no_row_and_a_damaged_one_is_said(timed_model):
    detector = vigil.load(timed_model)
    first = StreamingScorer(detector)
    first.push_rows([(v, i, str(1_760_000_000 + i), None) for i, v in enumerate(rows(50))])
    state = json.loads(json.dumps(first.learned_state()))
    idle = StreamingScorer(detector)  # restarted, then stopped before a row came
    assert "window_tail" in idle.restore_learned(state)[0]
    assert idle.learned_state()["parts"]["window_tail"] == state["parts"]["window_tail"]
    del state["parts"]["window_tail"]["alarm_began_in"]  # damaged: never a KeyError
    restarted = StreamingScorer(detector)
    assert restarted.restore_learned(state)[1] == ["window_tail"]
    results = restarted.push_rows([(v, 50 + i, str(1_760_000_050 + i), None)
                                   for i, v in enumerate(rows(10))])
    assert [r.index for r in results if r.score is not None][0] == 50 + WINDOW - 1


def test_a_lasting_alarm_said_before_a_restart_is_watched_after_it(tmp_path, caplog):
    """Review dC: a restart took up the alarm but not its watch, so a lasting alarm that then
    went silent as the threshold rose was never said."""
    from vigil.runtime.core.spec import TimeStepSpec

    spec = learning_spec(hold=3, time_step=TimeStepSpec(numeric=True, typical=1.0, limit=4.0))
    spec = replace(spec, running_normalization=None, likelihood=None)  # an alarm that lasts
    detector = vigil.load(write_artifact(tiny_sensor_graph(), spec, tmp_path / "lasting.onnx"))
    data = rows(1400)
    data[100:1250] += 6.0  # a fault lasting past LASTING_ALARM_WINDOWS
    feed = [(v, i, str(1_760_000_000 + i), None) for i, v in enumerate(data)]
    first = StreamingScorer(detector)
    first.push_rows(feed[:1200])
    assert first.watch._lasting is not None  # said before the restart
    restarted = StreamingScorer(detector)
    restarted.restore_learned(json.loads(json.dumps(first.learned_state())))
    restarted.source = "part2.csv"
    caplog.clear()
    with caplog.at_level("INFO", logger="vigil"):
        restarted.push_rows(feed[1200:])
    ended = [r.getMessage() for r in caplog.records
             if "the lasting alarm since row" in r.getMessage()]
    assert len(ended) == 1 and "since row 100 of an earlier run" in ended[0]


def test_a_state_continues_on_another_export_of_the_same_model(tmp_path, capsys):
    """Exporting the same .keras again makes another file (tf2onnx orders its nodes anew, the
    parity timings differ): a review's devices lost what they had learned, told it was "another
    model". An export with the same Keras model, options and versions continues it; one of
    another threshold does not."""
    keras = {"keras_sha256": "ab" * 32}
    spec = replace(learning_spec(), training={**learning_spec().training, **keras})
    first = write_artifact(tiny_sensor_graph(), replace(spec, parity={"fp32_p50_ms": 0.11}),
                           tmp_path / "first.onnx")
    again = write_artifact(tiny_sensor_graph(), replace(spec, parity={"fp32_p50_ms": 0.13}),
                           tmp_path / "again.onnx")
    other = write_artifact(tiny_sensor_graph(), replace(spec, threshold=replace(
        spec.threshold, value=spec.threshold.value + 1)), tmp_path / "other.onnx")
    assert vigil.load(first).sha256 != vigil.load(again).sha256
    assert vigil.load(first).scoring_identity == vigil.load(again).scoring_identity
    assert vigil.load(other).scoring_identity != vigil.load(first).scoring_identity
    data = tmp_path / "s.csv"
    write_csv(data, rows(120))
    state = tmp_path / "s.json"
    assert cli.main(["score", str(first), str(data), "--jsonl", str(tmp_path / "a.jsonl"),
                     "--state", str(state)]) == 0
    capsys.readouterr()
    assert cli.main(["score", str(again), str(data), "--jsonl", str(tmp_path / "b.jsonl"),
                     "--state", str(state)]) == 0
    err = capsys.readouterr().err
    assert "learned by another export of this model" in err and "starts afresh" not in err
    saved = StreamingScorer(vigil.load(first))
    saved.push_rows([(v, i, None, None) for i, v in enumerate(rows(120))])
    StreamingScorer(vigil.load(again)).restore_learned(saved.learned_state())  # Python alike
    with pytest.raises(ValueError, match="was learned by another model"):
        StreamingScorer(vigil.load(other)).restore_learned(saved.learned_state())
    assert cli.main(["score", str(other), str(data), "--jsonl", str(tmp_path / "c.jsonl"),
                     "--state", str(state)]) == 0
    assert "was learned by another artifact" in capsys.readouterr().err


def test_a_state_without_the_window_rows_says_the_window_starts_afresh(timed_model, tmp_path,
                                                                       capsys):
    """A state written before states kept the window's last rows (an upgrade) left the first
    window after the restart unscored without a word (a review)."""
    epoch = 1_760_000_000
    data = rows(240)
    write_csv(tmp_path / "part1.csv", data[:120], first_index=epoch)
    write_csv(tmp_path / "part2.csv", data[120:], first_index=epoch + 120)
    state = tmp_path / "s.json"
    assert cli.main(["score", str(timed_model), str(tmp_path / "part1.csv"), "--jsonl",
                     str(tmp_path / "a.jsonl"), "--state", str(state)]) == 0
    record = json.loads(state.read_text())
    del record["parts"]["window_tail"]
    state.write_text(json.dumps(record))
    capsys.readouterr()
    assert cli.main(["score", str(timed_model), str(tmp_path / "part2.csv"), "--jsonl",
                     str(tmp_path / "b.jsonl"), "--state", str(state)]) == 0
    assert (f"it keeps no rows of the stream's last window (a state written before 2026-12-07, "
            f"or whose last rows were untimed or did not follow each other), so this run's first "
            f"{WINDOW - 1} rows fill a window afresh") in capsys.readouterr().err


def test_a_state_saved_again_clears_its_error(learning_model, tmp_path, monkeypatch, caplog):
    """The error is the summary's state_error while saves fail, and gone once one works (d2:
    it stayed in last_error after the disk recovered)."""
    from vigil.runtime.sensor import learned_state

    detector = vigil.load(learning_model)
    state = learned_state.LearnedStateFile(tmp_path / "s.json", detector)
    heard: list = []
    state.on_problem, state.on_saved = heard.append, lambda: heard.append(None)
    scorer = StreamingScorer(detector)
    scorer.push_rows((row, i, str(i), None) for i, row in enumerate(rows(120)))
    real = learned_state.write_atomically

    def full_disk(path, text, mode=None, durable=False):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(learned_state, "write_atomically", full_disk)
    state.save(scorer)
    state.save(scorer)
    monkeypatch.setattr(learned_state, "write_atomically", real)
    state.save(scorer)
    state.close()
    assert [h if h is None else h[:40] for h in heard] == [
        f"--state {tmp_path / 's.json'}: cannot"[:40]] * 2 + [None]
    assert "written again, after it could not be" in caplog.text
