"""vigil bench says what really ran: the provider's device, fallbacks, and unstable tails."""

from __future__ import annotations

import json

import onnxruntime as ort
import pytest

pytest.importorskip("onnx")


def test_a_device_that_is_not_here_is_reported_as_what_ran(tmp_path):
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.benchmarks.bench import BenchOptions, bench, device_of

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: the fallback cannot be shown here")
    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    result = bench([model], BenchOptions(batches=(1,), devices=("cpu", "cuda"), seconds=0.05,
                                         cold_start=False, profile=False))
    cells = result["cells"]
    assert [(c["device"], c["requested_device"]) for c in cells] == [("cpu", "cpu")]
    assert any("--device cuda is not available here; it ran on cpu" in n for n in result["notes"])
    assert any("not measured twice" in n for n in result["notes"])
    assert device_of(["CUDAExecutionProvider", "CPUExecutionProvider"]) == "cuda"
    assert device_of(["TensorrtExecutionProvider", "CUDAExecutionProvider"]) == "tensorrt"


def test_report_without_cold_start_says_so_and_lists_failed_baselines(tmp_path):
    pytest.importorskip("matplotlib")
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.benchmarks.bench import BenchOptions, bench
    from vigil.benchmarks.bench_report import write_bench_report

    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    result = bench([model], BenchOptions(batches=(1, 4), devices=("cpu",), seconds=0.05,
                                         cold_start=False, profile=False))
    failure = "tflite_int8 conversion failed: exit -11"
    result["baselines"] = {"stats": {"runtime_int8": {"p50_ms": 0.1, "p99_ms": 0.2}},
                           "ratios": {}, "notes": [failure]}
    text = write_bench_report(result, tmp_path / "report").read_text()
    assert "Cold start: not measured (--no-cold-start)." in text
    assert " s; peak RSS  MB" not in text and "|  |" not in text
    assert f"Not measured:\n- {failure}" in text
    assert (tmp_path / "report" / "latency.png").read_bytes()[:4] == b"\x89PNG"


def test_a_report_without_a_batch_one_cell_says_n_a_not_n_ax(tmp_path):
    """No batch-1 cell: the efficiency's ratios and a missing side-by-side ratio read "n/a"."""
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.benchmarks.bench import BenchOptions, bench
    from vigil.benchmarks.bench_report import write_bench_report

    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    result = bench([model], BenchOptions(batches=(4,), devices=("cpu",), seconds=0.05,
                                         cold_start=False, profile=False))
    assert result["models"][0]["efficiency"]["times_below_isa_peak"] is None
    result["side_by_side"] = [{"device": "cpu", "threads": 1, "batch": 4,
                               "p50_ms": {"a": 1.0, "b": 2.0}, "p50_over_a": {"a": 1.0}}]
    text = write_bench_report(result, tmp_path / "report").read_text()
    assert "n/ax" not in text and "nanx" not in text
    assert "| cpu | 1 | 4 | 1.00x | n/a |" in text


def test_the_prepared_gpu_check_runs_here_and_says_what_it_could_not_test(tmp_path,
                                                                          tiny_image_artifact):
    import json

    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.benchmarks import gpu_check

    sensor = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--models", str(sensor), str(tiny_image_artifact), "--seconds", "0.05",
                           "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    for model in result["models"]:
        cpu = next(r for r in model["devices"] if r["device"] == "cpu")
        assert cpu["within_parity"] and cpu["max_abs_diff_vs_cpu"] == 0.0
        assert cpu["batch1_p50_ms"] > 0 and cpu["batch32_items_per_s"] > 0
    if not result["gpu_tested"]:
        assert "the GPU path is untested" in result["verdict"]


def test_camera_latency_sets_the_goals_beside_the_arithmetic_limit(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from vigil.benchmarks.latency_camera import arithmetic_limit

    weights = numpy_helper.from_array(np.ones((64, 32), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32])],
                              [weights])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    limit = arithmetic_limit(path, {"runtime_int8": 2.0, "tflite_int8": 3.0,
                                    "keras_tf_function": 20.0})
    assert limit["ops_per_frame"] == 2 * 64 * 32
    floor = limit["ops_per_frame"] / limit["u8s8_ops_per_s_one_thread"] * 1e3
    assert limit["floor_ms"] == pytest.approx(floor)
    assert limit["ms"] == pytest.approx({"runtime_int8": 2.0,
                                         "goal_1.2x_faster_than_tflite_int8": 2.5,
                                         "goal_5x_faster_than_keras_tf_function": 4.0})
    assert limit["over_floor"]["runtime_int8"] == pytest.approx(2.0 / floor)
    # a roof measured before the timings that is higher is kept (the larger, as bench keeps it)
    higher = arithmetic_limit(path, {"runtime_int8": 2.0}, roof_before=1e15)
    assert higher["u8s8_ops_per_s_one_thread"] == 1e15


def test_mixed_precision_limit_counts_quantized_nodes_at_the_int8_rate(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from vigil.benchmarks.bench import _blended_rate
    from vigil.benchmarks.flops import count_flops

    # a float MatMul (64 -> 32), then a QDQ one (32 -> 16) whose data input is dequantized
    initializers = [numpy_helper.from_array(np.ones((64, 32), np.float32), "w1"),
                    numpy_helper.from_array(np.ones((32, 16), np.float32), "w2"),
                    numpy_helper.from_array(np.array(0.1, np.float32), "scale"),
                    numpy_helper.from_array(np.array(0, np.uint8), "zero")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]),
             helper.make_node("QuantizeLinear", ["h", "scale", "zero"], ["hq"]),
             helper.make_node("DequantizeLinear", ["hq", "scale", "zero"], ["hd"]),
             helper.make_node("MatMul", ["hd", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
                              initializers)
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    counted = count_flops(path)
    assert counted["ops"] == 2 * 64 * 32 + 2 * 32 * 16
    assert counted["int8_ops"] == 2 * 32 * 16
    # a graph with a quarter of its operations at 4x the rate of the rest: 1 / (0.25/4 + 0.75/1)
    assert _blended_rate(0.25, 4.0, 1.0) == pytest.approx(1 / 0.8125)
    assert _blended_rate(0.0, 4.0, 1.0) == pytest.approx(1.0)
    assert _blended_rate(0.5, None, 1.0) is None


def test_compare_merges_runs_into_one_report_and_names_a_file_that_is_not_one(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.cli import commands as cli

    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    for name in ("a.json", "b.json"):
        assert cli.main(["bench", str(model), "--batch", "1", "--seconds", "0.05",
                         "--no-cold-start", "--quiet", "--json", str(tmp_path / name)]) == 0
    capsys.readouterr()
    assert cli.main(["bench", "--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                     "--report", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.md").is_file()
    assert (tmp_path / "report" / "latency.png").is_file()
    (tmp_path / "data.csv").write_text("timestamp,a\n1,2\n")
    assert cli.main(["bench", "--compare", str(tmp_path / "data.csv")]) == cli.EXIT_INPUT
    assert "--compare" in capsys.readouterr().err
    assert cli.main(["bench", "--compare", str(tmp_path / "a.json"), "--json",
                     str(tmp_path / "a.json")]) == cli.EXIT_INPUT
    assert "an input of this run" in capsys.readouterr().err
    # numbers written as text (a spreadsheet's round trip): named, and no report begun
    edited = json.loads((tmp_path / "a.json").read_text())
    edited["cells"][0]["p50_ms"] = str(edited["cells"][0]["p50_ms"])
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    assert cli.main(["bench", "--compare", str(tmp_path / "edited.json"), str(tmp_path / "b.json"),
                     "--report", str(tmp_path / "report2")]) == cli.EXIT_INPUT
    assert "cell 0's p50_ms is '" in capsys.readouterr().err
    assert not (tmp_path / "report2").exists()


def test_bench_reads_a_decimal_comma_input_and_refuses_an_against_of_the_other_kind(
        sensor_artifacts, image_artifacts, tmp_path, capsys):
    import json

    from vigil.cli import commands as cli

    rows = sensor_artifacts.test_csv.read_text().splitlines()[:200]
    comma = tmp_path / "comma.csv"
    comma.write_text("\n".join(r.replace(",", ";").replace(".", ",") for r in rows) + "\n")
    run = ["bench", str(sensor_artifacts.fp32), "--batch", "1", "--seconds", "0.05",
           "--no-cold-start", "--input", str(comma)]
    assert cli.main(run) == cli.EXIT_INPUT
    assert "Read it with --decimal ," in capsys.readouterr().err
    assert cli.main([*run, "--decimal", ","]) == cli.EXIT_OK
    assert "windows from" in json.loads(capsys.readouterr().out)["models"][0]["input"]
    assert cli.main(["bench", str(sensor_artifacts.fp32), "--against",
                     str(image_artifacts.keras_model)]) == cli.EXIT_INPUT
    assert "is an image model and" in capsys.readouterr().err


@pytest.mark.parametrize("family,model,bits", [(0x19, "AMD EPYC 9654", 256),
                                               (0x1A, "AMD EPYC 9555", 512),
                                               (0x1A, "AMD Ryzen AI 9 HX 370", 256),
                                               (None, "AMD EPYC", 256)])
def test_the_isa_peak_knows_zen5s_full_width_vectors(family, model, bits):
    from vigil.benchmarks.machine import peak_per_core

    info = {"vendor": "AuthenticAMD", "model": model, "family": family, "ghz": 2.0,
            "isa": ["avx2", "avx512f", "avx512_vnni"]}
    peak = peak_per_core(info)
    assert peak["vector_bits"] == bits
    assert peak["fp32_flops"] == bits // 32 * 4 * 2.0e9


def test_an_unknown_clock_gives_no_peak_and_no_crash(tmp_path):
    """An ARM VM with no cpufreq and no 'cpu MHz': the efficiency has no ISA peak, the measured
    roof still judges the model."""
    from vigil.benchmarks.bench import _efficiency
    from vigil.benchmarks.machine import peak_per_core

    estimate = peak_per_core({"vendor": "ARM", "model": "", "ghz": None, "isa": []})
    assert estimate["fp32_flops"] is None and estimate["int8_ops"] is None
    result = {"cells": [{"model": "m", "batch": 1, "threads": 1, "device": "cpu",
                         "achieved_ops_per_s": 1e9}],
              "peak_per_core_estimate": estimate,
              "measured_roof_one_thread": {"fp32_ops_per_s": 2e9, "u8s8_ops_per_s": 8e9}}
    for precision in ("fp32", "mixed"):
        entry = {"model": "m", "ops_per_item": 1e6, "int8_ops_per_item": 5e5,
                 "precision": precision}
        _efficiency(entry, result)
        assert entry["efficiency"]["isa_peak_ops_per_s"] is None
        assert entry["efficiency"]["times_below_isa_peak"] is None
        assert "arithmetic limit" in entry["efficiency"]["verdict"]
    result["measured_roof_one_thread"] = {}  # a runtime-only install: no roof either
    entry = {"model": "m", "ops_per_item": 1e6, "precision": "fp32"}
    _efficiency(entry, result)
    assert entry["efficiency"]["verdict"].startswith("no arithmetic limit known here")


def test_a_bad_model_or_input_fails_before_anything_is_timed(tmp_path, monkeypatch):
    from image_fixtures import write_tiny_image_artifact
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.benchmarks import bench as bench_module
    from vigil.runtime.core.spec import ArtifactError

    def timed(*args, **kwargs):
        raise AssertionError("timing began before every model and input was checked")

    monkeypatch.setattr(bench_module, "measured_roof", timed)
    monkeypatch.setattr(bench_module, "time_interleaved", timed)
    sensor = write_tiny_sensor_artifact(tmp_path / "sensor.onnx")
    image = write_tiny_image_artifact(tmp_path / "image.onnx")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(sensor.read_bytes()[:500])
    with pytest.raises(ArtifactError):
        bench_module.bench([sensor, truncated])
    rows = tmp_path / "rows.csv"
    rows.write_text("timestamp,a,b,c\n" + "".join(f"{i},1,2,3\n" for i in range(40)))
    with pytest.raises(ValueError, match=r"--input '.*rows.csv' cannot be read for image.onnx "
                                         r"\(an image model\)"):
        bench_module.bench([sensor, image], bench_module.BenchOptions(input=str(rows)))


def test_throughput_is_given_at_the_median_call_and_sustained_over_every_call():
    from vigil.benchmarks.harness import latency_stats

    stats = latency_stats([0.001, 0.001, 0.001, 0.010], items=2)  # one slow call in four
    assert stats["items_per_s"] == pytest.approx(2 / 0.001)
    assert stats["sustained_items_per_s"] == pytest.approx(4 * 2 / 0.013)


def test_ratios_are_given_over_every_runtime_precision():
    from vigil.benchmarks.bench import baseline_ratios

    ratios = baseline_ratios({"runtime_fp32": 0.15, "tflite_fp32": 0.6, "keras_tf_function": 3.0})
    assert ratios == {"tflite_fp32_over_runtime_fp32": pytest.approx(4.0),
                      "keras_tf_function_over_runtime_fp32": pytest.approx(20.0)}
    both = baseline_ratios({"runtime_int8": 2.0, "runtime_mixed": 4.0, "tflite_int8": 3.0})
    assert both["tflite_int8_over_runtime_int8"] == pytest.approx(1.5)
    assert both["runtime_mixed_over_runtime_int8"] == pytest.approx(2.0)
    assert both["tflite_int8_over_runtime_mixed"] == pytest.approx(0.75)


def test_bench_limits_are_checked_before_anything_is_timed(tmp_path, monkeypatch, capsys):
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.benchmarks import bench as bench_module
    from vigil.cli import commands as cli

    def timed(*args, **kwargs):
        raise AssertionError("timing began before the options were checked")

    monkeypatch.setattr(bench_module, "measured_roof", timed)
    monkeypatch.setattr(bench_module, "time_interleaved", timed)
    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    for flag, value in (("--threads", "1,2000"), ("--batch", "1,1000000000")):
        with pytest.raises(SystemExit) as stopped:  # argparse's own exit, as it reads the command
            cli.main(["bench", str(model), flag, value, "--no-cold-start"])
        assert stopped.value.code == cli.EXIT_INPUT
        assert "expected integers from 1 to" in capsys.readouterr().err
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 1024}  # a 4 MiB machine
    monkeypatch.setattr(bench_module.os, "sysconf", lambda name: pages[name])
    with pytest.raises(ValueError, match=r"--batch 60,000 of tiny.onnx's inputs and outputs .* "
                                         r"more than a quarter of this machine's 0.0 GiB: give "
                                         r"--batch"):
        bench_module.bench([model], bench_module.BenchOptions(batches=(1, 60_000)))
    from image_fixtures import write_tiny_image_artifact

    camera = write_tiny_image_artifact(tmp_path / "camera.onnx")  # its float maps counted too
    probe = bench_module.load(camera)
    height, width, channels = probe.input_shape
    per_frame = height * width * channels + 8 * height * width
    with pytest.raises(ValueError, match=rf"inputs and outputs \({per_frame:,} bytes each\)"):
        bench_module.bench([camera], bench_module.BenchOptions(batches=(1, 60_000)))
    monkeypatch.undo()
    assert cli.main(["bench", str(model), "--compare", str(tmp_path / "a.json")]) == cli.EXIT_INPUT
    assert "would be ignored" in capsys.readouterr().err


def test_compare_keeps_each_runs_unstable_cells_and_notes(tmp_path):
    import json

    from vigil.benchmarks.bench import compare

    run = {"machine": {"model": "cpu", "cores": 2}, "notes": ["m.onnx cpu t1 b1: p99 is over 3x"],
           "cells": [{"model": "m.onnx", "p50_ms": 0.1, "p99_ms": 3.3, "unstable": True},
                     {"model": "m.onnx", "p50_ms": 0.2, "p99_ms": 0.3}]}
    (tmp_path / "a.json").write_text(json.dumps(run))
    merged = compare([tmp_path / "a.json"])
    assert [c["unstable"] for c in merged["cells"]] == [True, False]
    assert merged["notes"] == ["a (cpu, 2 cores): m.onnx cpu t1 b1: p99 is over 3x"]


def test_an_int8_graph_whose_work_stays_float_is_judged_at_the_blended_rate():
    """An INT8 sensor model's LSTMs stay float (3.5 % of its operations are INT8): judged at the
    pure INT8 rate it read 107x below the roof instead of about 13x. Without an operation count
    (no onnx package) or a batch-1 one-thread cell, the kernel profile still names INT8 that
    does not run."""
    from vigil.benchmarks.bench import _blended_rate, _efficiency

    result = {"cells": [{"model": "m", "batch": 1, "threads": 1, "device": "cpu",
                         "achieved_ops_per_s": 1e9}],
              "peak_per_core_estimate": {"fp32_flops": 1e10, "int8_ops": 1e12},
              "measured_roof_one_thread": {"fp32_ops_per_s": 2e9, "u8s8_ops_per_s": 8e10}}
    entry = {"model": "m", "ops_per_item": 2e6, "int8_ops_per_item": 7e4, "precision": "int8",
             "kernels": {"int8_kernel_time_share": 0.05}}
    _efficiency(entry, result)
    roof = _blended_rate(0.035, 8e10, 2e9)
    assert entry["efficiency"]["times_below_measured_roof"] == pytest.approx(roof / 1e9)
    assert entry["efficiency"]["times_below_measured_roof"] < 2.1
    assert "only 5% of kernel time is in INT8 kernels" in entry["efficiency"]["verdict"]
    for missing in ({"ops_per_item": None}, {"model": "other"}):
        entry = {"model": "m", "ops_per_item": 2e6, "precision": "int8",
                 "kernels": {"int8_kernel_time_share": 0.05}, **missing}
        _efficiency(entry, result)
        assert entry["efficiency"]["times_below_measured_roof"] is None
        assert "only 5% of kernel time is in INT8 kernels" in entry["efficiency"]["verdict"]


def test_compare_names_each_model_of_a_run_and_keeps_every_figure(tmp_path):
    import json

    from vigil.benchmarks.bench import compare

    cells = [{"model": f"/x/{name}.onnx", "precision": name, "batch": 1, "p50_ms": 0.1,
              "p90_ms": 0.15, "p99_ms": 0.2, "max_ms": 0.3, "iqr_ms": 0.01} for name in
             ("fp32", "int8")]
    (tmp_path / "a.json").write_text(json.dumps({"machine": {"model": "cpu", "cores": 2},
                                                 "cells": cells}))
    merged = compare([tmp_path / "a.json"])
    assert [c["run"] for c in merged["cells"]] == ["a (cpu, 2 cores): fp32.onnx",
                                                   "a (cpu, 2 cores): int8.onnx"]
    assert all(c["p90_ms"] == 0.15 and c["max_ms"] == 0.3 and c["iqr_ms"] == 0.01
               for c in merged["cells"])
    # a run's baselines (Keras, TFLite) and per-model figures come along; a file given twice
    # gives rows told apart
    baselines = {"stats": {"keras_call": {"p50_ms": 3.0}}, "ratios": {"k": 30.0}}
    (tmp_path / "b.json").write_text(json.dumps({"machine": {"model": "cpu", "cores": 2},
                                                 "cells": cells, "baselines": baselines,
                                                 "models": [{"model": "/x/fp32.onnx"}]}))
    merged = compare([tmp_path / "b.json", tmp_path / "b.json"])
    assert merged["runs"][0]["baselines"] == baselines
    assert merged["runs"][0]["models"] == [{"model": "/x/fp32.onnx"}]
    assert [r["run"] for r in merged["runs"]] == ["b (cpu, 2 cores)", "b (cpu, 2 cores) #2"]
    assert merged["cells"][2]["run"] == "b (cpu, 2 cores) #2: fp32.onnx"


def test_bench_says_what_it_timed_and_when_a_batch_is_several_runs(tmp_path, capsys):
    import json

    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.cli import commands as cli

    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    assert cli.main(["bench", str(model), "--batch", "1,600", "--seconds", "0.05",
                     "--no-cold-start", "--quiet", "--json", str(tmp_path / "b.json")]) == 0
    result = json.loads((tmp_path / "b.json").read_text())
    (entry,) = result["models"]
    assert entry["timed"].startswith("score_with_features") and entry["max_batch_per_run"] == 512
    assert [c["runs_per_call"] for c in result["cells"]] == [1, 2]
    assert any("at most 512 items per model run" in note for note in result["notes"])
    assert "running normalization" not in entry["timed"]


def test_bench_says_batched_rates_do_not_apply_to_a_model_with_running_normalization(
        tmp_path):
    import json
    from dataclasses import replace

    from sensor_fixtures import tiny_sensor_graph, tiny_sensor_spec

    from vigil.cli import commands as cli
    from vigil.export.package import write_artifact
    from vigil.runtime.core.spec import RunningNormalizationSpec

    spec = replace(tiny_sensor_spec(), running_normalization=RunningNormalizationSpec(100, 10))
    model = write_artifact(tiny_sensor_graph(), spec, tmp_path / "drifting.onnx")
    assert cli.main(["bench", str(model), "--batch", "1,32", "--seconds", "0.05",
                     "--no-cold-start", "--quiet", "--json", str(tmp_path / "b.json")]) == 0
    result = json.loads((tmp_path / "b.json").read_text())
    assert "one window at a time" in result["models"][0]["timed"]
    assert any("batched throughput is not reached" in note for note in result["notes"])


def test_real_frames_are_prepared_before_timing_and_the_cost_of_preparing_is_said(tmp_path):
    import cv2
    import numpy as np
    from image_fixtures import normal_frame, write_tiny_image_artifact

    from vigil.benchmarks.bench import inputs_for
    from vigil.runtime import load

    detector = load(write_tiny_image_artifact(tmp_path / "tiny.onnx"))
    (tmp_path / "frames").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "frames" / f"{i}.png"), normal_frame(np.random.default_rng(i),
                                                                        200, 150))
    items, described = inputs_for(detector, str(tmp_path / "frames"))
    assert items.shape == (3, *detector.input_shape)
    assert "3 frames from" in described and "(150x200), prepared for the model" in described
    assert "not in the timings" in described
    # what a reject costs beside the model run: its map at the frame's size, searched and boxed
    from vigil.benchmarks.bench import frame_costs

    costs = frame_costs(detector, str(tmp_path / "frames"))
    assert costs["frames_measured"] == 3
    assert costs["prepare_ms_p50"] > 0 and costs["reject_locate_ms_p50"] > 0


def test_artifacts_of_one_precision_keep_a_ratio_each():
    from vigil.benchmarks.bench import baseline_ratios, runtime_names

    assert runtime_names(["a/m.onnx", "b/q.onnx"], ["fp32", "int8"]) == ["runtime_fp32",
                                                                         "runtime_int8"]
    names = runtime_names(["a/sensor.onnx", "b/sensor.onnx", "c/x-a.onnx", "d/x_a.onnx", "i.onnx"],
                          ["fp32"] * 4 + ["int8"])
    assert names == ["runtime_fp32_sensor", "runtime_fp32_sensor_2", "runtime_fp32_x_a",
                     "runtime_fp32_x_a_2", "runtime_int8"]
    ratios = baseline_ratios({"keras_tf_function": 3.0, **{n: 1.0 for n in names}})
    assert all(f"keras_tf_function_over_{n}" in ratios for n in names)


def test_several_artifacts_are_timed_side_by_side_in_each_cell(tmp_path, monkeypatch):
    """They were timed one after the other: on a busy machine two copies of one file came out
    3x apart. Now each cell interleaves them, and their p50 ratios are given."""
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.benchmarks import bench as bench_module

    first = write_tiny_sensor_artifact(tmp_path / "a.onnx")
    second = tmp_path / "b.onnx"
    second.write_bytes(first.read_bytes())
    order = []
    real_runner = bench_module._runner

    def recording_runner(detector):
        run = real_runner(detector)
        name = detector.path.name

        def call(x):
            order.append(name)
            return run(x)
        return call

    monkeypatch.setattr(bench_module, "_runner", recording_runner)
    result = bench_module.bench([first, second], bench_module.BenchOptions(
        batches=(1, 2), devices=("cpu",), seconds=0.05, cold_start=False, profile=False))
    switches = sum(1 for a, b in zip(order, order[1:]) if a != b)
    assert switches > 10  # turns of a few calls each, not one model's whole cell then the other's
    (one, two) = result["side_by_side"]
    assert [one["batch"], two["batch"]] == [1, 2]
    assert set(one["p50_ms"]) == {"a.onnx", "b.onnx"}
    assert one["p50_over_a.onnx"]["a.onnx"] == 1.0
    assert len(result["cells"]) == 4 and len(result["models"]) == 2
    # labelled with the device the models ran on, the one asked for beside it
    assert one["device"] == "cpu" and one["requested_device"] == "cpu"
    from vigil.benchmarks.bench_report import write_bench_report

    text = (write_bench_report(result, tmp_path / "report")).read_text()
    assert "## Side by side (interleaved): each p50 over a.onnx's" in text
    assert "| cpu | 1 | 1 | 1.00x |" in text and "| runs |" in text


def test_a_fast_call_is_timed_for_as_long_as_a_slow_one_beside_it():
    """Each was timed until its own budget: beside a call 15 times slower, 93 % of the fast
    one's samples were timed alone (review s58 sH). Turns of about equal time bring both to
    their budgets together."""
    import time as clock

    from vigil.benchmarks.harness import time_interleaved

    order = []

    def call(name, seconds):
        def run():
            order.append(name)
            clock.sleep(seconds)
        return run

    timings = time_interleaved({"fast": call("fast", 0.0002), "slow": call("slow", 0.003)},
                               budget_s=0.3, min_runs=5)
    last_slow = len(order) - 1 - order[::-1].index("slow")
    alone = sum(1 for name in order[last_slow + 1:] if name == "fast")
    assert alone <= 0.2 * len(timings["fast"])  # about its last turn, not most of its samples
    # each gets about its budget: the slow one is not timed as often as the fast one needs
    assert sum(timings["slow"]) < 3 * 0.3 and sum(timings["fast"]) >= 0.3


def test_side_by_side_turns_can_wait_for_the_other_call_to_settle(monkeypatch):
    """onnxruntime's pool threads spin on after a run: side by side at 2 threads two copies of one
    model took 1.6-1.9 ms against 0.73 alone (a review). With ``settle_s`` each turn waits that
    long after the other call and lasts at least twice as long."""
    from vigil.benchmarks import harness

    now, events = [0.0], []
    monkeypatch.setattr(harness.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(harness.time, "sleep", lambda s: events.append(("pause", s)))

    def call(name):
        def run():
            events.append(name)
            now[0] += 0.001
        return run

    timings = harness.time_interleaved({"a": call("a"), "b": call("b")}, budget_s=1.0,
                                       min_runs=5, settle_s=0.1)
    assert len(timings["a"]) >= 1000 and len(timings["b"]) >= 1000
    turns, current = [], None
    for event in events[2 * harness.WARMUP_RUNS:]:  # after the warm-up
        if isinstance(event, tuple):
            assert event == ("pause", 0.1)
            current = None
            continue
        if event != current:
            assert current is None  # a turn only after a pause
            turns.append([event, 0])
            current = event
        turns[-1][1] += 1
    assert all(count >= 200 for _, count in turns[:-2])  # at least 0.2 s of calls a turn


def test_the_latency_scripts_refuse_a_partial_or_mislabelled_set_of_artifacts(tmp_path, capsys):
    """A set without --fp32 trained and timed a model of the script's own, without a word; an
    --int8 that was a mixed artifact ended in a KeyError after a minute of timing."""
    import argparse

    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.benchmarks.script_args import check_given_artifacts

    parser = argparse.ArgumentParser(prog="latency_sensor.py")
    model = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")  # an fp32 artifact
    precisions = {"int8": "int8", "fp32": "fp32"}
    partial = argparse.Namespace(keras=tmp_path / "m.keras", int8=model, fp32=None)
    with pytest.raises(SystemExit):
        check_given_artifacts(parser, partial, precisions)
    assert "--keras, --int8 given without --fp32" in capsys.readouterr().err
    mislabelled = argparse.Namespace(keras=tmp_path / "m.keras", int8=model, fp32=model)
    with pytest.raises(SystemExit):
        check_given_artifacts(parser, mislabelled, precisions)
    assert "--int8 " in (err := capsys.readouterr().err) and "is an fp32 artifact" in err
    none = argparse.Namespace(keras=None, int8=None, fp32=None)
    assert check_given_artifacts(parser, none, precisions) is False


def test_models_that_share_a_name_are_told_apart_in_every_table(tmp_path):
    """The same file twice gave no side_by_side (one key); two s1.onnx in other folders shared
    one label in --compare."""
    import json

    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.benchmarks import bench as bench_module

    model = write_tiny_sensor_artifact(tmp_path / "s1.onnx")
    (tmp_path / "other").mkdir()
    other = tmp_path / "other" / "s1.onnx"
    other.write_bytes(model.read_bytes())
    assert bench_module.model_labels([model, model, other]) == [
        str(model), f"{model} #2", str(other)]
    assert bench_module.model_labels([model, model]) == ["s1.onnx", "s1.onnx #2"]
    result = bench_module.bench([model, model], bench_module.BenchOptions(
        batches=(1,), devices=("cpu",), seconds=0.02, cold_start=False, profile=False))
    (side,) = result["side_by_side"]
    assert set(side["p50_ms"]) == {"s1.onnx", "s1.onnx #2"}
    (tmp_path / "run.json").write_text(json.dumps(result))
    rows = bench_module.compare([tmp_path / "run.json"])["cells"]
    assert [r["run"].split(": ", 1)[1] for r in rows] == ["s1.onnx", "s1.onnx #2"]


def test_an_against_of_another_shape_or_another_keras_file_is_refused_before_timing(
        sensor_artifacts, monkeypatch):
    """A .keras of another window was timed in full and then lost to TFLite's shape error; one
    of the same shape but another training was timed with no word (its ratios another model's)."""
    from types import SimpleNamespace

    from vigil import runtime
    from vigil.benchmarks.bench import refuse_other_keras
    from vigil.training import checkpoint

    spec = runtime.load(sensor_artifacts.fp32).spec
    exported_from = spec.training["keras_sha256"]
    assert exported_from == checkpoint.sha256_of(sensor_artifacts.keras_model)
    record = {"kind": "sensor", "window": spec.window, "features": list(spec.features),
              "model_sha256": exported_from}
    monkeypatch.setattr(checkpoint, "load_run", lambda path: SimpleNamespace(record=record))
    refuse_other_keras([str(sensor_artifacts.fp32)], "same.keras")  # its own: no error
    record["window"] = spec.window + 1
    with pytest.raises(ValueError, match="takes inputs of shape"):
        refuse_other_keras([str(sensor_artifacts.fp32)], "wider.keras")
    record["window"], record["model_sha256"] = spec.window, "0" * 64
    with pytest.raises(ValueError, match="is not the .keras model"):
        refuse_other_keras([str(sensor_artifacts.fp32)], "other.keras")


def test_latency_camera_refuses_training_options_beside_given_artifacts(tmp_path, capsys):
    """Options for the model the script trains were ignored without a word when the models
    were given, and a negative --steps trained a U-Net for no step (a review)."""
    from vigil.benchmarks.latency_camera import main

    given = []
    for name in ("m.keras", "i.onnx", "f.onnx"):
        (tmp_path / name).write_bytes(b"")
        given.append(str(tmp_path / name))
    with pytest.raises(SystemExit) as stopped:
        main(["--keras", given[0], "--int8", given[1], "--fp32", given[2], "--levels", "3,5",
              "--bank", "8192"])
    assert stopped.value.code == 2
    assert "--levels, --bank apply to the model this benchmark trains" in capsys.readouterr().err
    for flag, value in (("--steps", "-5"), ("--bank", "0"), ("--components", "-1")):
        with pytest.raises(SystemExit):
            main([flag, value])
        assert f"argument {flag}: expected a whole number" in capsys.readouterr().err


def test_bench_names_data_of_the_other_kind_as_score_does(tmp_path, capsys):
    """An image model given a CSV folder was told its input 'gave no decodable frame' (a review)."""
    from image_fixtures import write_tiny_image_artifact

    from vigil import cli

    model = write_tiny_image_artifact(tmp_path / "tiny.onnx")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.csv").write_text("a,b\n1,2\n")
    assert cli.main(["bench", str(model), "--input", str(tmp_path / "data")]) == 2
    assert "is an image model and" in capsys.readouterr().err


def test_baselines_without_a_runtime_model_are_refused_before_anything_is_timed(monkeypatch):
    """``bench([], BenchOptions(against=...))`` timed the machine, imported TensorFlow and loaded
    the Keras model, then failed with a TypeError on ``None``: its ratios need a runtime model."""
    from vigil.benchmarks import bench as bench_module

    def timed(*args, **kwargs):
        raise AssertionError("timing began before the models were checked")

    monkeypatch.setattr(bench_module, "measured_roof", timed)
    with pytest.raises(ValueError, match=r"baselines of 'model.keras' .* give one or more "
                                         r"MODEL.onnx files, got none"):
        bench_module.bench([], bench_module.BenchOptions(against="model.keras"))
    with pytest.raises(ValueError, match="got none"):
        bench_module.baselines("model.keras", [], bench_module.BenchOptions())


def test_bench_input_says_which_frames_it_left_out_and_times_preparing_once(tiny_image_artifact,
                                                                              tmp_path):
    """Review u1: a folder's unreadable files were dropped unsaid ("7 frames from img/edge" of
    9), and the input's own preparing time (0.648 ms) disagreed with prepare_ms_p50 (0.529)."""
    import cv2
    import numpy as np

    from vigil.benchmarks.bench import inputs_for
    from vigil.runtime import load

    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    (folder / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    items, described = inputs_for(load(tiny_image_artifact), str(folder))
    assert len(items) == 3
    assert "3 frames from" in described and "1 that could not be read left out" in described
    assert "prepare_ms_p50 is its cost per frame" in described and " ms" not in described
