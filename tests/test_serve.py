"""`vigil serve`: a real model server (Ray Serve) on 127.0.0.1, called with Triton's own KServe v2
client; its scores are the runtime's, and it stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from vigil import runtime

from conftest import require
from listeners import listening, off_loopback, owners  # noqa: E402

require("ray.serve")
triton = require("tritonclient.http")
triton_utils = require("tritonclient.utils")

from vigil.cli.serve import ProtocolError, parse_request, run_inference  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


EXPOSED_BEFORE_SERVE: set = set()  # sockets off loopback before the server started


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    model = write_tiny_sensor_artifact(tmp_path_factory.mktemp("serve") / "pump.onnx")
    port = _free_port()
    EXPOSED_BEFORE_SERVE.update(off_loopback(listening()))
    pin = runtime.load(model).sha256  # each replica checks the file it loads against it
    process = subprocess.Popen([str(Path(sys.executable).with_name("vigil")), "serve",
                                str(model), "--port", str(port), "--max-request-mb", "1",
                                "--expect-sha256", pin],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"vigil serve exited {process.returncode}: {process.stderr.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("vigil serve did not become ready within 180 s")
    yield model, port, process
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)


def test_a_model_other_than_the_pinned_one_is_refused_before_a_server_starts(tmp_path, capsys):
    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact
    from vigil.cli import commands as cli

    model = write_tiny_sensor_artifact(tmp_path / "pump.onnx")
    assert cli.main(["serve", str(model), "--port", str(_free_port()),
                     "--expect-sha256", "0" * 64]) == cli.EXIT_ARTIFACT
    assert f"expected {'0' * 64}" in capsys.readouterr().err


def test_ray_behind_the_server_listens_on_loopback_only(server):
    """Ray's own services (GCS, raylet, workers, agents) run code for whoever reaches them: with
    the default --host they listen on 127.0.0.1. The one exception is Ray Serve's: each replica's
    gRPC server for calls between deployments, bound to every interface by Ray Serve itself
    (it runs only our scoring; README, "A model server")."""
    _, port, _ = server
    held = owners()
    assert ("127.0.0.1", port) in held
    exposed = off_loopback(set(held)) - EXPOSED_BEFORE_SERVE
    assert {held[socket] for socket in exposed} <= {"ray::ServeRepli"}, exposed


def test_scores_over_the_protocol_equal_the_runtime(server):
    model, port, _ = server
    detector = runtime.load(model)
    client = triton.InferenceServerClient(f"127.0.0.1:{port}")
    assert client.is_server_live() and client.is_model_ready("pump")
    metadata = client.get_model_metadata("pump")
    assert [t["name"] for t in metadata["inputs"]] == ["window"]
    windows = np.random.default_rng(0).normal(size=(6, *detector.input_shape)).astype(np.float32)
    windows[-1] += 40.0  # far from normal: above the threshold
    request = triton.InferInput("window", windows.shape, "FP32")
    request.set_data_from_numpy(windows)  # tritonclient's binary-data extension
    result = client.infer("pump", [request])
    expected, errors = detector.score_with_features(windows)
    np.testing.assert_array_equal(result.as_numpy("score"), expected.astype(np.float32))
    np.testing.assert_array_equal(result.as_numpy("anomaly"), expected > detector.threshold)
    assert result.as_numpy("anomaly")[-1]
    np.testing.assert_allclose(result.as_numpy("feature_errors"), errors, rtol=1e-6)

    plain = json.dumps({"inputs": [{"name": "window", "shape": list(windows[:2].shape),
                                    "datatype": "FP32", "data": windows[:2].ravel().tolist()}]})
    answer = urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/models/pump/infer", plain.encode(),
        {"Content-Type": "application/json"}), timeout=30)
    outputs = {o["name"]: o for o in json.loads(answer.read())["outputs"]}
    np.testing.assert_allclose(outputs["score"]["data"], expected[:2], rtol=1e-6)
    asked = json.dumps({**json.loads(plain), "outputs": [{"name": "anomaly"}, {"name": "score"}]})
    answer = urllib.request.urlopen(urllib.request.Request(  # only the outputs asked for
        f"http://127.0.0.1:{port}/v2/models/pump/infer", asked.encode(),
        {"Content-Type": "application/json"}), timeout=30)
    assert [o["name"] for o in json.loads(answer.read())["outputs"]] == ["anomaly", "score"]


def test_triton_clients_that_name_the_version_or_read_server_metadata_work(server):
    model, port, _ = server
    detector = runtime.load(model)
    client = triton.InferenceServerClient(f"127.0.0.1:{port}")
    assert client.get_server_metadata()["name"] == "vigil"
    assert client.is_model_ready("pump", "1") and not client.is_model_ready("pump", "2")
    assert client.get_model_metadata("pump", "1")["versions"] == ["1"]
    windows = np.zeros((2, *detector.input_shape), np.float32)
    request = triton.InferInput("window", windows.shape, "FP32")
    request.set_data_from_numpy(windows)
    result = client.infer("pump", [request], model_version="1")
    np.testing.assert_array_equal(result.as_numpy("score"),
                                  detector.score(windows).astype(np.float32))
    with pytest.raises(triton_utils.InferenceServerException, match="has no version '2'"):
        client.infer("pump", [request], model_version="2")
    for path, status in (("/v2/nothing/here", 404), ("/v2/health/live", 405)):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", b"{}",
                                         {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as failed:  # the protocol's error form
            urllib.request.urlopen(request, timeout=30)
        assert failed.value.code == status and "error" in json.loads(failed.value.read())
    for path in ("/docs", "/redoc", "/openapi.json"):  # FastAPI's pages are no v2 route (r3)
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30)
        assert failed.value.code == 404


@pytest.mark.parametrize("path, body, status, says", [
    ("/v2/models/pump/infer", {"inputs": [{"name": "window", "shape": [1, 2, 3],
                                           "datatype": "FP32", "data": [0] * 6}]}, 400,
     "input 'window' (the Python API's x): `x` must have shape"),
    ("/v2/models/other/infer", {"inputs": []}, 404, "unknown model 'other'"),
    ("/v2/models/pump/infer", {"inputs": [{"name": "window", "shape": [1, 4, 3],
                                           "datatype": "FP32", "data": [0] * 12}],
                               "outputs": [{"name": "map"}]}, 400, "unknown output(s) ['map']"),
    ("/v2/models/pump/infer", {"inputs": [{"name": "window", "shape": [1, 4, 3],
                                           "datatype": "FP32", "data": [0] * 12}],
                               "outputs": [{"name": "score"}, {"name": "score"}]}, 400,
     "output(s) ['score'] asked for more than once"),
])
def test_bad_requests_get_an_error_naming_the_problem(server, path, body, status, says):
    _, port, _ = server
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(request, timeout=30)
    assert failed.value.code == status and says in failed.value.read().decode()


def test_a_chunked_body_over_the_limit_is_refused_before_it_is_read_whole(server):
    """Without a Content-Length the limit (here --max-request-mb 1) holds all the same: 413,
    answered while the client is still sending (a server that read the whole body first would
    answer only after the last of 256 MB)."""
    import select

    _, port, _ = server
    chunk = b"0," * 32_768  # 64 kB
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(b"POST /v2/models/pump/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Content-Type: application/json\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < 256 << 20 and not answer:
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                if select.select([connection], [], [], 0)[0]:
                    answer = connection.recv(4096)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer waits in the socket
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < int(
                re.search(rb"content-length: (\d+)", answer, re.I).group(1)):
            more = connection.recv(4096)  # the rest of the answer: its body may come apart
            if not more:
                break
            answer += more
    assert answer.startswith(b"HTTP/1.1 413") and b"over 1048576 bytes" in answer
    assert sent < 128 << 20  # answered long before the whole body (buffers between hold some)


def test_sigterm_stops_the_server_cleanly(server):
    _, port, process = server
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/live", timeout=2)


def test_image_inference_and_protocol_errors_in_process(tiny_image_artifact):
    detector = runtime.load(tiny_image_artifact)
    frames = np.random.default_rng(1).integers(0, 255, (2, 40, 50, 1), np.uint8)  # any size
    outputs = {o["name"]: o for o in run_inference(detector, {"image": frames})}
    expected = np.concatenate([detector.infer(f)[0] for f in frames])
    np.testing.assert_allclose(outputs["score"]["data"], expected, rtol=1e-6)
    assert outputs["anomaly_map"]["shape"] == [2, *detector.input_shape[:2]]
    with pytest.raises(ProtocolError, match="takes one input, `image`"):
        run_inference(detector, {"window": frames})
    # frames unlike training are named in the answer, as on `vigil score`'s lines: the server's
    # log said it once, and a client heard nothing (a review)
    from vigil.cli.serve import unlike_training

    assert unlike_training(detector, {"image": frames}) == {}  # gray frames, a gray model
    colour = np.random.default_rng(2).integers(0, 255, (2, 40, 50, 3), np.uint8)
    colour[1] = colour[1, ..., :1]  # the second frame gray: one colour frame is enough
    unlike = unlike_training(detector, {"image": colour})
    assert set(unlike) == {"unlike_training", "warning_colour"}  # v2 parameters: strings
    assert unlike["unlike_training"] == "colour"
    assert unlike["warning_colour"].startswith("frames are in colour but the model was trained on "
                                               "gray frames")
    # a map not asked for is not written out; requested outputs are checked before any work
    from vigil.cli.serve import TooMuchWork, check_work, requested_outputs

    only = run_inference(detector, {"image": frames}, {"score"})
    assert [o["name"] for o in only] == ["score"] and only[0]["data"] == outputs["score"]["data"]
    assert requested_outputs(detector, [{"name": "anomaly_map"}, {"name": "score"}]) == [
        "anomaly_map", "score"]
    with pytest.raises(ProtocolError, match=r"asked for more than once"):
        requested_outputs(detector, [{"name": "score"}] * 60_000)  # was quadratic: 52 s
    with pytest.raises(ProtocolError, match=r"unknown output\(s\) \['xxxxxxxx.*and 2 more; this "
                                            r"model gives \['score', 'anomaly', 'anomaly_map'\]"):
        requested_outputs(detector, [{"name": "x" * 100}] * 7)
    # tiny frames count at the model's input size against the body limit, and where their
    # maps are answered, at their maps' size as JSON (r3: 80 KB of frames, 451 MB of answer)
    from vigil.cli.serve import JSON_BYTES_PER_MAP_VALUE

    height, width, channels = detector.input_shape
    check_work(detector, {"image": np.zeros((4, 2, 2, 1), np.uint8)},
               4 * height * width * channels, ["score"])
    with pytest.raises(TooMuchWork, match="holds 5 frames; this server takes at most 4 a "
                                          "request .*counts as its"):
        check_work(detector, {"image": np.zeros((5, 2, 2, 1), np.uint8)},
                   4 * height * width * channels, ["score", "anomaly"])
    mapped = 4 * height * width * JSON_BYTES_PER_MAP_VALUE
    for names in (None, ["anomaly_map"]):
        check_work(detector, {"image": np.zeros((4, 2, 2, 1), np.uint8)}, mapped, names)
        with pytest.raises(TooMuchWork, match="takes at most 4 a request .*anomaly map.*ask "
                                              "for the outputs 'score' and 'anomaly' alone"):
            check_work(detector, {"image": np.zeros((5, 2, 2, 1), np.uint8)}, mapped, names)
    with pytest.raises(ProtocolError, match="do not fill shape"):
        parse_request(json.dumps({"inputs": [{"name": "image", "shape": [2, 2],
                                              "datatype": "UINT8", "data": [1]}]}).encode(), None)
    # a key given twice (its last was scored) and a number Python will not read are named
    one = '{"name": "image", "shape": [1], "datatype": "UINT8", "data": [1]}'
    with pytest.raises(ProtocolError, match="gives the key 'inputs' more than once"):
        parse_request(f'{{"inputs": [], "inputs": [{one}]}}'.encode(), None)
    with pytest.raises(ProtocolError, match="a number of more than 4,300 digits"):
        huge = one.replace('"data": [1]', '"data": [' + "1" * 5000 + "]")
        parse_request(f'{{"inputs": [{huge}]}}'.encode(), None)


def test_text_among_numbers_a_boolean_size_and_an_id_no_response_can_carry_are_refused():
    with pytest.raises(ProtocolError, match="list of numbers"):
        parse_request(json.dumps({"inputs": [{"name": "w", "shape": [2], "datatype": "FP32",
                                              "data": [1.5, "12.5"]}]}).encode(), None)
    body = json.dumps({"inputs": [{"name": "w", "shape": [1], "datatype": "FP32",
                                   "parameters": {"binary_data_size": True}}]}).encode()
    with pytest.raises(ProtocolError, match="binary_data_size True"):
        parse_request(body + b"\0" * 4, len(body))
    with pytest.raises(ProtocolError, match="`id` must be text"):
        parse_request(b'{"inputs": [], "id": "x\\ud800"}', None)
    with pytest.raises(ProtocolError, match="`id` must be text"):
        parse_request(b'{"inputs": [], "id": 7}', None)
    # an integer beyond 64 bits is still a number (a reading far out, which alarms)
    big = parse_request(b'{"inputs": [{"name": "w", "shape": [2], "datatype": "FP64", '
                        b'"data": [100000000000000000000, 1.5]}]}', None)["w"]
    assert big.tolist() == [1e20, 1.5]
    huge = parse_request(b'{"inputs": [{"name": "w", "shape": [2], "datatype": "FP64", '
                         b'"data": [1' + b"0" * 400 + b', -1' + b"0" * 400 + b']}]}', None)["w"]
    assert huge.tolist() == [np.inf, -np.inf]  # beyond float's range: no 500


@pytest.mark.parametrize("tensor, says", [
    ({"name": "window", "shape": [1], "datatype": "FP32", "data": ["a"]}, "list of numbers"),
    ({"name": "window", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3]]},
     "rectangular"),
    ({"name": "window", "shape": [1], "datatype": "FP32", "data": {"a": 1}}, "list of numbers"),
    ({"name": ["w"], "shape": [1], "datatype": "FP32", "data": [1]}, "`name` (a string)"),
    ({"name": "w", "shape": [-1, -1], "datatype": "FP32", "data": [1]}, "non-negative integers"),
    ({"name": "w", "shape": [1.5], "datatype": "FP32", "data": [1]}, "non-negative integers"),
    ({"name": "image", "shape": [2], "datatype": "UINT8", "data": [-1, 300]},
     "whole numbers in [0, 255]"),
    ({"name": "w", "shape": [1], "datatype": "INT64", "data": [0.5]}, "whole numbers"),
    # JSON's true is not the number 1, nor 2 a truth value
    ({"name": "image", "shape": [2], "datatype": "UINT8", "data": [[True], [1]]},
     "numbers for datatype UINT8, not true or false"),
    ({"name": "w", "shape": [2], "datatype": "BOOL", "data": [True, 2]},
     "only true and false for datatype BOOL"),
    ({"name": "w", "shape": [1], "datatype": "FP32", "data": [1], "parameters": [1]},
     "`parameters` must be an object"),
    ({"name": "w", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}},
     "no Inference-Header-Content-Length header"),  # else the JSON's own bytes were the data
    # a shape whose size wraps around in 64 bits (to 0) is still a shape no data fills
    ({"name": "w", "shape": [2 ** 32, 2 ** 32], "datatype": "FP32", "data": []},
     "0 values do not fill shape"),
])
def test_every_malformed_request_is_a_protocol_error(tensor, says):
    with pytest.raises(ProtocolError, match=re.escape(says)):
        parse_request(json.dumps({"inputs": [tensor]}).encode(), None)


def test_binary_data_is_read_exactly_and_deep_nesting_is_a_protocol_error():
    def request(size: int, data: bytes) -> tuple[bytes, int]:
        header = json.dumps({"inputs": [{"name": "w", "shape": [1], "datatype": "FP32",
                                         "parameters": {"binary_data_size": size}}]}).encode()
        return header + data, len(header)

    value = np.float32(2.5).tobytes()
    assert parse_request(*request(4, value))["w"].tolist() == [2.5]
    with pytest.raises(ProtocolError, match="multiple of 4 bytes"):
        parse_request(*request(3, value))
    with pytest.raises(ProtocolError, match="holds 2 bytes after the inputs' binary data"):
        parse_request(*request(4, value + b"xx"))
    with pytest.raises(ProtocolError, match="nested too deep"):
        parse_request(b"[" * 100_000 + b"]" * 100_000, None)


def test_non_finite_scores_go_out_as_json_and_a_frame_needs_its_batch_axis(tmp_path,
                                                                           tiny_image_artifact):
    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.cli.serve import header_length

    tiny_sensor_path = write_tiny_sensor_artifact(tmp_path / "pump.onnx")
    with pytest.raises(ProtocolError, match="0 to 10; received 'abc'"):
        header_length("abc", 10)
    detector = runtime.load(tiny_sensor_path)
    window = np.full((1, *detector.input_shape), 3e38, np.float32)
    outputs = run_inference(detector, {"window": window})
    json.dumps(outputs, allow_nan=False)  # strict JSON, even where the score overflows
    with pytest.raises(ProtocolError, match="'window' must hold readings .*received datatype BOOL"):
        run_inference(detector, {"window": np.ones((1, *detector.input_shape), np.bool_)})
    integers = run_inference(detector, {"window": np.ones((1, *detector.input_shape), np.int64)})
    assert integers[0]["data"] == run_inference(
        detector, {"window": np.ones((1, *detector.input_shape), np.float32)})[0]["data"]
    image = runtime.load(tiny_image_artifact)
    with pytest.raises(ProtocolError, match=r"\[n, height, width, channels\]"):
        run_inference(image, {"image": np.zeros((40, 50, 1), np.uint8)})
    # a frame the library refuses: the message names the tensor, then the library's argument
    with pytest.raises(ProtocolError, match=r"input 'image' \(each of its frames\): `frame` must "
                                            r"have shape .*received \(40, 50, 5\)"):
        run_inference(image, {"image": np.zeros((1, 40, 50, 5), np.uint8)})
    with pytest.raises(ProtocolError, match=r"input 'image' .* must be uint8"):
        run_inference(image, {"image": np.zeros((1, 40, 50, 1), np.float64)})


def test_a_vigil_folder_in_the_working_directory_is_named_before_ray_starts(tmp_path,
                                                                            monkeypatch):
    from vigil.cli.serve import _shadowing_folder

    monkeypatch.chdir(tmp_path)
    assert _shadowing_folder() is None
    (tmp_path / "vigil").mkdir()  # e.g. a clone of this repository beside the shell's folder
    assert _shadowing_folder() == tmp_path / "vigil"


def test_start_up_mistakes_are_named_before_ray_starts(tmp_path, capsys, monkeypatch):
    from sensor_fixtures import write_tiny_sensor_artifact

    from vigil.cli import commands as cli

    model = write_tiny_sensor_artifact(tmp_path / "pump.onnx")
    started = []
    monkeypatch.setattr("ray.init", lambda *a, **k: started.append(a))
    with pytest.raises(SystemExit) as stopped:  # argparse's own check, as every command's
        cli.main(["serve", str(model), "--threads", "0"])
    assert stopped.value.code == 2
    assert "--threads: expected an integer >= 1 and <= 1024" in capsys.readouterr().err
    assert cli.main(["serve", str(model), "--name", "pump/1"]) == 2
    assert "--name must be letters, digits" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["serve", str(model), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"--port {port}: cannot listen there" in err and "give another --port" in err
    assert not started
    from vigil.cli.serve import _check_port_free

    server = socket.socket()  # a port left in TIME_WAIT by a server (Ray Serve's proxy, which
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # reuses addresses) that
    server.bind(("127.0.0.1", 0))                                 # stopped first
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()
    server.close()
    client.close()
    _check_port_free("127.0.0.1", port)  # free to a server that reuses the address, as Ray's


def test_a_replica_scores_one_request_holds_a_few_and_turns_the_rest_away_at_once():
    """Requests queued without bound (probes waited 25 s behind them, 7.5 GB held): a replica
    now admits one scored and `queued` waiting, and answers the next 503 before its body."""
    import asyncio

    from vigil.cli.serve import Admission

    async def run() -> list:
        admission = Admission(queued=2)
        order: list = []

        async def request(number: int) -> str:
            if not admission.enter():
                return f"{number}: 503"
            try:
                async with admission.scoring:
                    order.append(number)
                    await asyncio.sleep(0.01)
                return f"{number}: 200"
            finally:
                admission.leave()

        answers = await asyncio.gather(*(request(n) for n in range(5)))
        assert admission.held == 0 and order == [0, 1, 2]  # one at a time, in their order
        assert admission.enter()  # room again once they are answered
        return answers

    assert asyncio.run(run()) == ["0: 200", "1: 200", "2: 200", "3: 503", "4: 503"]


def _replica(model: Path, max_queued: int):
    """The deployment's class from build_app, made without Ray (its ingress wrapper's __init__
    needs Ray): what VigilModel.__init__ sets, and a Starlette request maker."""
    from starlette.requests import Request

    from vigil.cli.serve import Admission, build_app

    app = build_app(str(model), "pump", 1, 1, max_body_mb=1, max_queued=max_queued)
    cls = app._bound_deployment.func_or_class
    replica = object.__new__(cls)
    replica.detector = runtime.load(model)
    replica.admission = Admission(max_queued)

    def request(total: int, declared: bool = True) -> Request:
        sent = [0]

        async def receive() -> dict:
            piece = min(64 << 10, total - sent[0])
            sent[0] += piece
            return {"type": "http.request", "body": b"x" * piece, "more_body": sent[0] < total}

        headers = [(b"content-length", str(total).encode())] if declared else []
        return Request({"type": "http", "method": "POST", "path": "/v2/models/pump/infer",
                        "headers": headers, "query_string": b""}, receive)

    return cls, replica, request


def test_a_client_that_hangs_up_keeps_its_slot_until_its_scoring_ends_and_too_large_is_413(
        tmp_path):
    """A disconnect cancelled the handler, which freed the slot while its body was still scored
    on a thread (7 at once under --max-queued 0); a body over the limit got a retryable 503
    from a busy replica, after up to the limit was read."""
    import asyncio
    import threading

    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact

    cls, replica, request = _replica(write_tiny_sensor_artifact(tmp_path / "pump.onnx"), 0)
    running, most, lock = [0], [0], threading.Lock()

    def slow_answer(body, header):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        return {}, [], {}

    replica._answer = slow_answer

    async def run():
        first = asyncio.create_task(cls.infer(replica, "pump", request(1000)))
        await asyncio.sleep(0.05)
        first.cancel()  # the client went away while its request is scored
        await asyncio.sleep(0.05)
        assert replica.admission.held == 1 and running[0] == 1
        busy = await cls.infer(replica, "pump", request(1000))
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        big = await cls.infer(replica, "pump", request(200 << 20))
        assert big.status_code == 413 and "over this server's" in json.loads(big.body)["error"]
        with pytest.raises(asyncio.CancelledError):
            await first
        assert replica.admission.held == 0 and running[0] == 0 and most[0] == 1

    asyncio.run(run())


def test_stalled_uploads_hold_no_scoring_slot_and_end_after_a_pause(tmp_path, monkeypatch):
    """Five clients that sent a few bytes of their body and stalled got every other request a
    503 for 120 s: bodies are now received before a request takes a slot, and a pause of
    BODY_IDLE_TIMEOUT_S ends an upload (408)."""
    import asyncio

    from starlette.requests import Request

    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact
    from vigil.cli import serve

    monkeypatch.setattr(serve, "BODY_IDLE_TIMEOUT_S", 0.3)
    monkeypatch.setattr(serve, "BODY_READ_TIMEOUT_S", 30.0)
    cls, replica, request = _replica(write_tiny_sensor_artifact(tmp_path / "pump.onnx"), 2)
    replica._answer = lambda body, header: ({}, [], {})

    def stalled() -> Request:
        sent = [False]

        async def receive() -> dict:
            if sent[0]:
                await asyncio.sleep(60)  # the link went quiet
            sent[0] = True
            return {"type": "http.request", "body": b"x" * 12, "more_body": True}

        return Request({"type": "http", "method": "POST", "path": "/v2/models/pump/infer",
                        "headers": [(b"content-length", b"100000")], "query_string": b""},
                       receive)

    async def run():
        stalls = [asyncio.create_task(cls.infer(replica, "pump", stalled())) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert replica.admission.uploading == 2 and replica.admission.held == 0
        answered = await cls.infer(replica, "pump", request(1000))
        assert isinstance(answered, dict)  # scored while the two stall
        third = asyncio.create_task(cls.infer(replica, "pump", stalled()))
        await asyncio.sleep(0.05)
        busy = await cls.infer(replica, "pump", request(1000))  # 3 uploads: the room is full
        assert busy.status_code == 503 and "receiving 3 request bodies" in json.loads(
            busy.body)["error"]
        for answer in await asyncio.gather(*stalls, third):
            assert answer.status_code == 408 and "paused over 0.3 s" in json.loads(
                answer.body)["error"]
        assert replica.admission.uploading == 0 and replica.admission.held == 0

    asyncio.run(run())


def test_a_trickling_upload_is_ended_once_it_falls_below_the_least_rate(tmp_path, monkeypatch):
    """A byte every few seconds kept its upload slot until the 120 s limit (five such clients
    turned every other one away): past its first BODY_IDLE_TIMEOUT_S, a body slower than
    BODY_MIN_RATE on average is ended (408)."""
    import asyncio

    from starlette.requests import Request

    pytest.importorskip("onnx")
    from sensor_fixtures import write_tiny_sensor_artifact
    from vigil.cli import serve

    monkeypatch.setattr(serve, "BODY_IDLE_TIMEOUT_S", 0.3)
    monkeypatch.setattr(serve, "BODY_READ_TIMEOUT_S", 30.0)
    cls, replica, request = _replica(write_tiny_sensor_artifact(tmp_path / "pump.onnx"), 2)

    def trickle() -> Request:
        async def receive() -> dict:
            await asyncio.sleep(0.1)  # within the pause allowed, far below the rate
            return {"type": "http.request", "body": b"x", "more_body": True}

        return Request({"type": "http", "method": "POST", "path": "/v2/models/pump/infer",
                        "headers": [(b"content-length", b"100000")], "query_string": b""},
                       receive)

    async def run():
        started = asyncio.get_running_loop().time()
        answer = await cls.infer(replica, "pump", trickle())
        assert answer.status_code == 408 and "came too slowly" in json.loads(
            answer.body)["error"]
        assert asyncio.get_running_loop().time() - started < 2.0
        assert replica.admission.uploading == 0

    asyncio.run(run())


def test_a_steady_slow_upload_that_ends_in_time_is_read_whole(monkeypatch):
    """A steady 15 KB/s uplink's body was cut after 10 s though it ended in 11, far inside the
    120 s limit: the least rate only ends uploads that would not end in time."""
    import asyncio

    from vigil.cli import serve

    monkeypatch.setattr(serve, "BODY_IDLE_TIMEOUT_S", 0.3)
    monkeypatch.setattr(serve, "BODY_READ_TIMEOUT_S", 30.0)

    class Steady:
        headers = {"content-length": str(20 * 2000)}

        async def stream(self):
            for _ in range(20):
                await asyncio.sleep(0.05)
                yield b"x" * 2000
            yield b""

    body, size, outcome = asyncio.run(serve._read_body(Steady(), 1 << 20, keep=True))
    assert outcome == "whole" and size == len(body) == 40_000


def test_a_model_that_normalizes_by_its_streams_levels_is_not_served(tmp_path):
    from dataclasses import replace

    from sensor_fixtures import tiny_sensor_graph, tiny_sensor_spec
    from vigil.cli.serve import refuse_stream_state
    from vigil.export.package import write_artifact
    from vigil.runtime.core.spec import RunningNormalizationSpec

    spec = replace(tiny_sensor_spec(),
                   running_normalization=RunningNormalizationSpec(memory=80, warmup=15))
    path = write_artifact(tiny_sensor_graph(), spec, tmp_path / "drifting.onnx")
    with pytest.raises(ValueError, match=r"running normalization.*vigil score drifting.onnx "
                                         r"SOURCE"):
        refuse_stream_state(runtime.load(path), str(path))
    plain = write_artifact(tiny_sensor_graph(), tiny_sensor_spec(), tmp_path / "plain.onnx")
    refuse_stream_state(runtime.load(plain), str(plain))  # served as before


def test_an_answer_names_frames_unlike_training_in_string_parameters(tmp_path):
    """The server named a gray-for-colour or colour-for-gray frame only in its log; its answer
    carries it now, as v2 parameters (strings) that tritonclient reads."""
    import asyncio

    from image_fixtures import write_tiny_image_artifact
    from starlette.requests import Request

    InferResult = require("tritonclient.http").InferResult
    cls, replica, _ = _replica(write_tiny_image_artifact(tmp_path / "cam.onnx"), 2)
    frames = np.random.default_rng(0).integers(0, 255, (2, 40, 50, 3), np.uint8)  # colour
    body = json.dumps({"inputs": [{"name": "image", "shape": list(frames.shape),
                                   "datatype": "UINT8", "data": frames.ravel().tolist()}],
                       "outputs": [{"name": "score"}]}).encode()
    request = Request({"type": "http", "method": "POST", "path": "/v2/models/pump/infer",
                       "headers": [], "query_string": b""})
    answer = asyncio.run(replica._admitted(request, body))
    parameters = InferResult.from_response_body(json.dumps(answer).encode()).get_response()[
        "parameters"]
    assert parameters["unlike_training"] == "colour"
    assert parameters["warning_colour"].startswith("frames are in colour but the model was "
                                                   "trained on gray frames")
    gray = frames[..., :1]
    body = json.dumps({"inputs": [{"name": "image", "shape": list(gray.shape),
                                   "datatype": "UINT8", "data": gray.ravel().tolist()}]}).encode()
    assert "parameters" not in asyncio.run(replica._admitted(request, body))
