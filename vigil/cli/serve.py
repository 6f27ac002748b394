"""`vigil serve`: an artifact behind a real model server, Ray Serve, speaking the KServe v2 REST
protocol (the one Triton speaks), so Triton's own clients (``tritonclient.http``) and any other
v2 client can call it.

The model is our runtime, preprocessing and score reduction included: a sensor model takes
``window`` FP32 ``[n, window, features]`` and returns ``score`` FP32 ``[n]``, ``anomaly`` BOOL
``[n]`` (score above the threshold; each window on its own, so no alarm smoothing) and
``feature_errors`` FP32 ``[n, features]``; an image model takes ``image`` UINT8
``[n, height, width, channels]`` frames of any size (as OpenCV decodes them) and returns ``score``,
``anomaly`` and ``anomaly_map`` FP32 ``[n, h, w]`` at the model's resolution. Inputs may come as
JSON ``data`` or in the binary-data extension tritonclient uses by default.

Routes: ``GET /v2/health/live``, ``/v2/health/ready``, ``/v2/models/NAME``,
``/v2/models/NAME/ready``; ``POST /v2/models/NAME/infer``.
"""

# No `from __future__ import annotations` here: FastAPI reads the route handlers' annotations
# (``Request``, imported inside ``build_app``) as objects.
import asyncio
import contextlib
from collections import Counter
import json
import logging
import math
import os
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np

from vigil.runtime.core.spec import FLOAT32_MAX, ArtifactError
from vigil.runtime.core.thresholds import over_threshold

DATATYPES = {"FP32": np.float32, "FP64": np.float64, "UINT8": np.uint8, "INT64": np.int64,
             "INT32": np.int32, "BOOL": np.bool_}
BINARY_HEADER = "inference-header-content-length"
MODEL_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # one segment of the routes' paths
MAX_BODY_MB = 256  # a larger request is refused (413) before it is read whole (--max-request-mb)
MAX_QUEUED = 4  # requests a replica holds beyond the one it scores; more get 503 (--max-queued)
# requests a replica takes beside the admitted ones, so that health and metadata probes (and the
# requests it turns away) are answered while inference requests wait for its one scoring slot
PROBE_ROOM = 64
BODY_READ_TIMEOUT_S = 120.0  # a request's body must arrive within this (408 otherwise)
BODY_IDLE_TIMEOUT_S = 10.0  # and no more than this may pass between two of its pieces,
BODY_MIN_RATE = 1 << 10  # and past that long, come at this many bytes/s on average at least,
                         # fast enough, where its length is declared, to end within the limit
MODEL_VERSION = "1"  # the one version served (Triton's routes may name it)


class Admission:
    """A replica's inference requests: each body is received first (at most ``queued + 1`` at
    once; more are turned away), then one request is scored at a time, ``queued`` more may wait,
    and one beyond them is turned away (503; a turned-away body is read and dropped, never
    held). So the bodies a replica holds are bounded (``2 * (queued + 1)`` of at most
    --max-request-mb), uploads that stall hold no scoring slot (five stalled clients held every
    slot for 120 s when bodies were read after admission), and health probes never wait behind
    them. One per replica, used on its event loop."""

    def __init__(self, queued: int) -> None:
        self.queued = queued
        self.held = 0  # requests admitted: the one scored and those waiting
        self.uploading = 0  # bodies being received
        self.scoring = asyncio.Semaphore(1)  # held while a request is scored

    def start_upload(self) -> bool:
        """Receive a request's body (True), or say that enough are being received (False)."""
        if self.uploading > self.queued:
            return False
        self.uploading += 1
        return True

    def end_upload(self) -> None:
        self.uploading -= 1

    def enter(self) -> bool:
        """Admit a request (True), or say that the replica is full (False)."""
        if self.held > self.queued:
            return False
        self.held += 1
        return True

    def leave(self) -> None:
        self.held -= 1


class ProtocolError(ValueError):
    """A request that does not follow the protocol or does not fit the model (HTTP 400)."""


class TooMuchWork(ProtocolError):
    """A request small in bytes whose work is not: more frames than the body limit holds at the
    model's input size (HTTP 413)."""


# bytes of a JSON answer per anomaly-map value (a float and its separator; a review's 20,000
# 32 x 32 maps were answered with 451 MB, 22 bytes a value, and took 2.8 GB of the replica)
JSON_BYTES_PER_MAP_VALUE = 22


def check_work(detector, tensors: dict[str, np.ndarray], max_body: int,
               names: list[str] | None = None) -> None:
    """TooMuchWork where an image request holds more frames than ``max_body`` bytes would at
    the model's input size, or, where the answer holds ``anomaly_map`` (``names`` None: every
    output), than the answer's maps would fill in ``max_body`` bytes of JSON: every frame is
    scaled to the input size and answered with a map of it, so a review's 36 KB of 2 x 2 frames
    took 161 s and 5.5 GB of the replica's memory, and 80 KB of 32 x 32 frames 451 MB of answer
    and 2.8 GB."""
    image = tensors.get("image")
    if detector.spec.kind != "image" or image is None or image.ndim != 4:
        return
    height, width, channels = detector.input_shape
    per_frame = height * width * channels
    mapped = names is None or "anomaly_map" in names
    if mapped:
        per_frame = max(per_frame, height * width * JSON_BYTES_PER_MAP_VALUE)
    most = max(1, max_body // per_frame)
    if image.shape[0] > most:
        counted = (f"is answered with its {height} x {width} anomaly map, about "
                   f"{JSON_BYTES_PER_MAP_VALUE} bytes a value as JSON, which counts against "
                   f"--max-request-mb" if mapped else
                   f"is scaled to the model's {height} x {width} and counts as its "
                   f"{per_frame} bytes against --max-request-mb")
        raise TooMuchWork(f"input 'image' holds {image.shape[0]} frames; this server takes at "
                          f"most {most} a request (each {counted}): send fewer frames per "
                          f"request" + (", or ask for the outputs 'score' and 'anomaly' alone"
                                        if mapped else ""))


def model_metadata(detector, name: str) -> dict:
    """The v2 model metadata of a detector."""
    kind = detector.spec.kind
    if kind == "sensor":
        window, features = detector.input_shape
        inputs = [{"name": "window", "datatype": "FP32", "shape": [-1, window, features]}]
        outputs = [{"name": "score", "datatype": "FP32", "shape": [-1]},
                   {"name": "anomaly", "datatype": "BOOL", "shape": [-1]},
                   {"name": "feature_errors", "datatype": "FP32", "shape": [-1, features]}]
    else:
        height, width, _ = detector.input_shape
        inputs = [{"name": "image", "datatype": "UINT8", "shape": [-1, -1, -1, -1]}]
        outputs = [{"name": "score", "datatype": "FP32", "shape": [-1]},
                   {"name": "anomaly", "datatype": "BOOL", "shape": [-1]},
                   {"name": "anomaly_map", "datatype": "FP32", "shape": [-1, height, width]}]
    return {"name": name, "versions": [MODEL_VERSION], "platform": "vigil_onnxruntime",
            "inputs": inputs, "outputs": outputs,
            "parameters": {"threshold": detector.threshold, "kind": kind,
                           "model_sha256": detector.sha256,
                           **({"channel_order": "BGR (as OpenCV decodes), or 1 gray channel"}
                              if kind != "sensor" else {})}}


def header_length(value: str | None, body_size: int) -> int | None:
    """The binary-data extension's JSON header length, from its HTTP header (None: all JSON)."""
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        length = -1
    if not 0 <= length <= body_size:
        raise ProtocolError(f"header {BINARY_HEADER} must be the JSON part's length in bytes, "
                            f"0 to {body_size}; received {value!r}")
    return length


def parse_request(body: bytes, header_length: int | None) -> dict[str, np.ndarray]:
    """The named input tensors of a v2 infer request (JSON, or JSON + binary data); a request
    that does not fit the protocol is a ProtocolError saying what is wrong, never another error."""
    return parse_request_and_header(body, header_length)[1]


def parse_request_and_header(body: bytes, header_length: int | None
                             ) -> tuple[dict, dict[str, np.ndarray]]:
    """(the request's JSON object, its input tensors), the JSON read once."""
    try:
        header = json.loads(body[:header_length] if header_length is not None else body,
                            object_pairs_hook=_unique_keys)
    except ProtocolError:
        raise
    except (ValueError, UnicodeDecodeError) as error:
        if "int_max_str_digits" in str(error):  # Python's own advice: none a client can take
            raise ProtocolError("the request body holds a number of more than 4,300 digits; "
                                "send each value as the tensor's datatype holds it") from None
        raise ProtocolError(f"the request body is not JSON: {error}") from None
    except RecursionError:  # brackets nested thousands deep: no request of ours looks so
        raise ProtocolError("the request body's JSON is nested too deep to read; expected the "
                            "v2 protocol's inputs (a tensor's `data` flat or nested by its "
                            "shape)") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise ProtocolError("the request must be a JSON object with an `inputs` list")
    offset = header_length or 0
    # only a body that spells true or false can hold a boolean: numbers need no walk for one
    literals = any(word in (body[:header_length] if header_length is not None else body)
                   for word in (b"true", b"false"))
    tensors = {}
    for tensor in header["inputs"]:
        if not isinstance(tensor, dict):
            raise ProtocolError(f"each input must be a JSON object; received {tensor!r:.80}")
        name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
        if (not isinstance(name, str) or not isinstance(datatype, str)
                or not isinstance(shape, list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                           for d in shape)):
            raise ProtocolError("each input needs `name` (a string), `shape` (a list of "
                                "non-negative integers) and `datatype` (a string); received "
                                f"{ {k: tensor.get(k) for k in ('name', 'shape', 'datatype')} }")
        if datatype not in DATATYPES:
            raise ProtocolError(f"input {name!r}: datatype {datatype!r} is not one of "
                                f"{sorted(DATATYPES)}")
        if name in tensors:
            raise ProtocolError(f"input {name!r} is given twice")
        parameters = tensor.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ProtocolError(f"input {name!r}: `parameters` must be an object")
        size = parameters.get("binary_data_size")
        dtype = np.dtype(DATATYPES[datatype])
        if size is not None and header_length is None:
            raise ProtocolError(f"input {name!r}: binary_data_size is given, but the request has "
                                "no Inference-Header-Content-Length header to say where the "
                                "JSON ends and the binary data begins")
        if size is not None:
            if (not isinstance(size, int) or isinstance(size, bool) or size < 0
                    or offset + size > len(body)
                    or size % dtype.itemsize):
                raise ProtocolError(f"input {name!r}: binary_data_size {size!r} must be a "
                                    f"multiple of {dtype.itemsize} bytes within the "
                                    f"{len(body) - offset} bytes left in the body")
            array = np.frombuffer(body[offset:offset + size], dtype=dtype)
            offset += size
        elif "data" in tensor:
            array = _values(tensor["data"], dtype, name, literals)
        else:
            raise ProtocolError(f"input {name!r} has neither `data` nor binary data")
        if array.size != math.prod(shape):  # Python's integers: a huge shape cannot wrap to 0
            raise ProtocolError(f"input {name!r}: {array.size} values do not fill shape {shape}")
        tensors[name] = array.reshape(shape)
    if header_length is not None and offset != len(body):
        raise ProtocolError(f"the body holds {len(body) - offset} bytes after the inputs' binary "
                            f"data (binary_data_size of each input, after the "
                            f"{header_length}-byte JSON header); expected none")
    request_id = header.get("id", "")
    if not isinstance(request_id, str) or not _encodable(request_id):
        raise ProtocolError(f"`id` must be text (it is echoed in the response); received "
                            f"{request_id!r:.80}")
    return header, tensors


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are each given once; ProtocolError naming a repeated one (JSON
    readers keep one of them, which one differs: a request holding `inputs` twice was scored by
    its last, where another server reads its first)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        twice = next(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
        raise ProtocolError(f"the request's JSON gives the key {twice[:40]!r} more than once in "
                            f"one object; give each key once")
    return obj


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800"): no response could carry it
        return False
    return True


def _values(data, dtype: np.dtype, name: str, literals: bool = True) -> np.ndarray:
    """JSON ``data`` as an array of ``dtype``: numbers that fit it, nothing else (JSON's true
    and false only for BOOL, and only they; ``literals``: whether the request's JSON spells
    either, without which no value is one)."""
    booleans = dtype.kind == "b"
    if (booleans or literals) and any((type(v) is bool) != booleans for v in _leaves(data)):
        raise ProtocolError(f"input {name!r}: `data` must hold "
                            + ("only true and false for datatype BOOL" if booleans else
                               f"numbers for datatype {_datatype_name(dtype)}, not true or false")
                            + f"; received {str(data)[:80]}")
    try:
        values = np.asarray(data)  # text among the numbers makes it text, not a number read
        if values.dtype.kind == "O" and all(  # integers beyond 64 bits: numbers all the same
                isinstance(v, (int, float)) for v in _leaves(data)):
            values = np.frompyfunc(_wide_float, 1, 1)(values).astype(np.float64)
        if values.dtype.kind not in "fiub":
            raise TypeError(values.dtype)
        values = values.astype(np.float64 if dtype.kind != "b" else np.bool_, copy=False)
    except (ValueError, TypeError):
        raise ProtocolError(f"input {name!r}: `data` must be a (flat or nested, rectangular) list "
                            f"of numbers; received {str(data)[:80]}") from None
    if values.dtype.kind == "f" and dtype.kind in "iu":
        finite = values[np.isfinite(values)]
        info = np.iinfo(dtype)
        if (finite.size < values.size or (finite != np.round(finite)).any()
                or (finite.size and (finite.min() < info.min or finite.max() > info.max))):
            raise ProtocolError(f"input {name!r}: `data` must be whole numbers in "
                                f"[{info.min}, {info.max}] for {dtype.name}")
    return values.astype(dtype)


def _wide_float(value) -> float:
    """A JSON number as a float; an integer beyond float's range as an infinity of its sign
    (a reading that far out, which alarms as one near float32's limit does)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _leaves(data):
    """The values of a (nested) JSON list, depth first; the value itself if it is not one."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            yield item


def _datatype_name(dtype: np.dtype) -> str:
    return next(name for name, t in DATATYPES.items() if np.dtype(t) == dtype)


def run_inference(detector, tensors: dict[str, np.ndarray],
                  wanted: set[str] | None = None) -> list[dict]:
    """The v2 output tensors of a detector for the request's inputs (those named in ``wanted``,
    where given: a map not asked for is never written out)."""
    if detector.spec.kind == "sensor":
        if set(tensors) != {"window"}:
            raise ProtocolError(f"a sensor model takes one input, `window` FP32 [n, "
                                f"{', '.join(map(str, detector.input_shape))}]; received "
                                f"{sorted(tensors)}")
        if tensors["window"].dtype == np.bool_:
            raise ProtocolError("input 'window' must hold readings (FP32; FP64 and integers are "
                                "converted to FP32); received datatype BOOL")
        window = tensors["window"]
        if window.dtype == np.float64:  # a finite reading beyond float32 at its limit (it then
            window = np.where(np.isfinite(window),  # alarms, as `vigil score` reads a CSV's)
                              np.clip(window, -FLOAT32_MAX, FLOAT32_MAX), window)
        try:
            scores, errors = detector.score_with_features(window.astype(np.float32))
        except ArtifactError:
            raise  # the model's fault, not the request's
        except (ValueError, TypeError) as error:  # the library's message names its argument, x
            raise ProtocolError(f"input 'window' (the Python API's x): {error}") from None
        extra = ("feature_errors", errors)
    else:
        if set(tensors) != {"image"}:
            raise ProtocolError(f"an image model takes one input, `image` UINT8 [n, height, "
                                f"width, channels]; received {sorted(tensors)}")
        if tensors["image"].ndim != 4:
            raise ProtocolError(f"input 'image' must be [n, height, width, channels] (a gray "
                                f"frame has 1 channel); received shape "
                                f"{list(tensors['image'].shape)}")
        try:
            results = [detector.infer(frame) for frame in tensors["image"]]
        except ArtifactError:
            raise  # the model's fault, not the request's
        except (ValueError, TypeError) as error:  # the library's message names its argument
            raise ProtocolError(f"input 'image' (each of its frames): {error}") from None
        scores = np.concatenate([s for s, _ in results]) if results else np.empty(0)
        extra = ("anomaly_map", np.concatenate([m for _, m in results]) if results
                 else np.empty((0, *detector.input_shape[:2])))
    outputs = [("score", np.asarray(scores, np.float32)),
               ("anomaly", over_threshold(scores, detector.threshold)),
               (extra[0], np.asarray(extra[1], np.float32))]
    # JSON has no infinity: a score beyond float32 (readings far outside training's) is sent as
    # the largest float32, as `vigil score` writes the largest double; NaN as null
    return [{"name": name, "datatype": "BOOL" if value.dtype == np.bool_ else "FP32",
             "shape": list(value.shape), "data": _finite(value.ravel().tolist())}
            for name, value in outputs if wanted is None or name in wanted]


def unlike_training(detector, tensors: dict[str, np.ndarray]) -> dict:
    """The answer's ``parameters`` for frames unlike the training ones (gray for a colour model,
    another shape, far smaller, RGB given for BGR), as `vigil score` names them on its lines:
    ``unlike_training``, the checks' names joined by commas, and ``warning_NAME``, why each
    shifts the scores (v2 parameters are strings, numbers or booleans); empty where none is, and
    for sensor models. The server's log says each once; a client would otherwise never hear."""
    from vigil.runtime.camera.frames import ARRAY_CHECK_NAMES

    frames = tensors.get("image")
    if detector.spec.kind != "image" or frames is None or frames.ndim != 4:
        return {}
    seen: dict[str, str] = {}  # each kind as the first frame found so says it
    for frame in frames:  # a client's arrays: their channel order is looked at too
        for name, why in detector.unlike_training(frame).items():
            seen.setdefault(name, why)
    if not seen:
        return {}
    found = {n: seen[n] for n in ARRAY_CHECK_NAMES.values() if n in seen}  # in the checks' order
    return {"unlike_training": ",".join(found), **{f"warning_{n}": m for n, m in found.items()}}


def output_names(detector) -> list[str]:
    """The v2 outputs a detector answers with, in ``run_inference``'s order."""
    return ["score", "anomaly",
            "feature_errors" if detector.spec.kind == "sensor" else "anomaly_map"]


def requested_outputs(detector, requested) -> list[str] | None:
    """The request's ``outputs`` (v2: a list of ``{"name": ...}``) as names in the order asked,
    each checked against the model's; None (all of them) when the request names none."""
    if requested is None:
        return None
    known = output_names(detector)
    if not isinstance(requested, list) or not all(
            isinstance(r, dict) and isinstance(r.get("name"), str) for r in requested):
        raise ProtocolError(f"`outputs` must be a list of objects with a `name`; received "
                            f"{str(requested)[:80]}")
    names = [r["name"] for r in requested]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ProtocolError(f"unknown output(s) {_few(unknown)}; this model gives {known}")
    twice = sorted(name for name, count in Counter(names).items() if count > 1)
    if twice:
        raise ProtocolError(f"output(s) {twice} asked for more than once; name each once")
    return names


def select_outputs(outputs: list[dict], names: list[str] | None) -> list[dict]:
    """``outputs`` in the order ``names`` asks (``requested_outputs``); all when None."""
    if names is None:
        return outputs
    by_name = {o["name"]: o for o in outputs}
    return [by_name[name] for name in names]


def _few(names: list[str]) -> str:
    """At most 5 names, each cut to 40 characters: a request's own text, sent back."""
    shown = [name[:40] + ("..." if len(name) > 40 else "") for name in names[:5]]
    return str(shown) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _finite(values: list) -> list:
    return [None if isinstance(v, float) and v != v else
            (max(-FLOAT32_MAX, min(FLOAT32_MAX, v)) if isinstance(v, float) else v) for v in values]


def build_app(model: str, name: str, replicas: int, threads: int | None,
              max_body_mb: float = MAX_BODY_MB, max_queued: int = MAX_QUEUED,
              expect_sha256: str | None = None):
    """The Ray Serve application: FastAPI routes of the v2 protocol on one detector a replica
    (each replica refusing a model file other than ``expect_sha256``, where given)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from ray import serve
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException

    from vigil import __version__

    max_body = int(max_body_mb * (1 << 20))
    # the v2 routes alone: FastAPI's own pages (/docs, which loads its script from a CDN, and
    # /openapi.json) are no part of the protocol (review r3)
    api = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    # every error in the protocol's form, {"error": ...}: Triton's clients read no other
    @api.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": f"{request.method} {request.url.path}: {error.detail}"},
                            status_code=error.status_code)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"{request.method} {request.url.path}: "
                                      f"{error.errors()}"[:500]}, status_code=400)

    @serve.ingress(api)
    class VigilModel:
        def __init__(self) -> None:
            from vigil.runtime import load

            self.detector = load(model, threads=threads, expect_sha256=expect_sha256)
            self.admission = Admission(max_queued)

        def _known(self, model_name: str, version: str) -> JSONResponse | None:
            if model_name != name:
                return JSONResponse({"error": f"unknown model {model_name!r}; this server "
                                              f"serves {name!r}"}, status_code=404)
            if version != MODEL_VERSION:
                return JSONResponse({"error": f"model {name!r} has no version {version!r}; this "
                                              f"server serves version {MODEL_VERSION}"},
                                    status_code=404)
            return None

        @api.get("/v2")
        def server_metadata(self) -> dict:
            return {"name": "vigil", "version": __version__, "extensions": ["binary_tensor_data"]}

        @api.get("/v2/health/live")
        def live(self) -> dict:
            return {"live": True}

        @api.get("/v2/health/ready")
        def ready(self) -> dict:
            return {"ready": True}

        @api.get("/v2/models/{model_name}")
        @api.get("/v2/models/{model_name}/versions/{version}")
        def metadata(self, model_name: str, version: str = MODEL_VERSION):
            return self._known(model_name, version) or model_metadata(self.detector, name)

        @api.get("/v2/models/{model_name}/ready")
        @api.get("/v2/models/{model_name}/versions/{version}/ready")
        def model_ready(self, model_name: str, version: str = MODEL_VERSION):
            return self._known(model_name, version) or {"name": name, "ready": True}

        @api.post("/v2/models/{model_name}/infer")
        @api.post("/v2/models/{model_name}/versions/{version}/infer")
        async def infer(self, model_name: str, request: Request, version: str = MODEL_VERSION):
            unknown = self._known(model_name, version)
            if unknown is not None:
                return unknown
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_body:  # busy or not: never accepted
                return _too_large(f"is {int(declared)} bytes, over this server's {max_body} "
                                  f"bytes")
            if not self.admission.start_upload():  # the body is never held: bounded memory
                # counted now: by the time this body is drained, the others may have arrived (a
                # review saw "receiving 0 request bodies already")
                uploading = self.admission.uploading
                # read and dropped, so that the client hears the 503 rather than a reset
                _, _, outcome = await _read_body(request, max_body, keep=False)
                if outcome == "too large":
                    return _too_large(f"is over {max_body} bytes")
                return _busy(f"was receiving {uploading} request bodies already when this one "
                             f"came")
            try:
                body, size, outcome = await _read_body(request, max_body, keep=True)
            finally:
                self.admission.end_upload()
            if outcome == "too large":  # refused before the rest is read
                return _too_large(f"is over {max_body} bytes")
            if outcome == "timeout":  # a stalled upload
                return JSONResponse({"error": f"the request body did not arrive within "
                                              f"{BODY_READ_TIMEOUT_S:g} s, paused over "
                                              f"{BODY_IDLE_TIMEOUT_S:g} s, or came too slowly "
                                              f"to (under {BODY_MIN_RATE >> 10} KiB/s after "
                                              f"its first {BODY_IDLE_TIMEOUT_S:g} s) "
                                              f"({size} bytes read); "
                                              f"send it faster, or fewer windows or frames per "
                                              f"request"}, status_code=408)
            if not self.admission.enter():
                del body
                return _busy(f"scores one request at a time and holds at most "
                             f"{self.admission.queued} waiting")
            try:
                return await self._admitted(request, body)
            finally:
                self.admission.leave()

        async def _admitted(self, request: Request, body: bytes):
            try:
                async with self.admission.scoring:  # one scored at a time, the rest wait here
                    # off the event loop: health probes are answered while a request is scored;
                    # shielded, so that a client who hangs up does not free the slot while its
                    # request is still being scored on a thread
                    work = asyncio.ensure_future(run_in_threadpool(
                        self._answer, body, request.headers.get(BINARY_HEADER)))
                    del body
                    try:
                        header, outputs, unlike = await asyncio.shield(work)
                    except asyncio.CancelledError:
                        while not work.done():
                            with contextlib.suppress(asyncio.CancelledError):
                                await asyncio.shield(work)
                        raise
            except TooMuchWork as error:
                return JSONResponse({"error": str(error)}, status_code=413)
            except ProtocolError as error:
                return JSONResponse({"error": str(error)}, status_code=400)
            except ArtifactError as error:  # the served model is at fault: a server error
                return JSONResponse({"error": str(error)}, status_code=500)
            answer = {"model_name": name, "model_version": MODEL_VERSION,
                      "id": header.get("id", ""), "outputs": outputs}
            if unlike:  # v2 answers may carry parameters
                answer["parameters"] = unlike
            return answer

        def _answer(self, body: bytes,
                    binary_header: str | None) -> tuple[dict, list[dict], dict]:
            length = header_length(binary_header, len(body))
            header, tensors = parse_request_and_header(body, length)
            del body
            names = requested_outputs(self.detector, header.get("outputs"))
            check_work(self.detector, tensors, max_body, names)
            outputs = run_inference(self.detector, tensors, set(names) if names else None)
            return header, select_outputs(outputs, names), unlike_training(self.detector, tensors)

    # the decorator applied as a call, the Deployment it returns named: a type checker reads a
    # decorated class as the class itself. Room at each replica for every admitted request and
    # for probes beside them.
    deployment = serve.deployment(num_replicas=replicas, ray_actor_options={"num_cpus": 1},
                                  max_ongoing_requests=max_queued + 1 + PROBE_ROOM)(VigilModel)
    return deployment.bind()


def _too_slow(size: int, declared: int | None, elapsed: float) -> bool:
    """Whether a body still arriving, ``size`` bytes after ``elapsed`` s, is a trickle that
    would hold its upload place: past ``BODY_IDLE_TIMEOUT_S``, slower than ``BODY_MIN_RATE``, or
    (its length declared) too slow to end within ``BODY_READ_TIMEOUT_S`` (a steady 15 KB/s
    uplink's 170 kB body is not: it ends in 11 s)."""
    if elapsed <= BODY_IDLE_TIMEOUT_S:
        return False
    rate = size / elapsed
    if rate < BODY_MIN_RATE:
        return True
    return declared is not None and elapsed + (declared - size) / rate > BODY_READ_TIMEOUT_S


async def _read_body(request, max_body: int, keep: bool) -> tuple[bytes, int, str]:
    """(the body, or b"" when not ``keep``; the bytes read; ``whole``, ``too large`` where
    reading stopped past ``max_body``, or ``timeout`` past ``BODY_READ_TIMEOUT_S`` in all or
    ``BODY_IDLE_TIMEOUT_S`` between two pieces). A chunked body has no Content-Length, so its
    size is counted as it arrives."""
    chunks, size = [], 0
    pieces = request.stream().__aiter__()
    started = time.monotonic()
    length = request.headers.get("content-length", "")
    declared = int(length) if length.isdigit() else None
    try:
        async with asyncio.timeout(BODY_READ_TIMEOUT_S):
            while True:
                try:
                    chunk = await asyncio.wait_for(pieces.__anext__(), BODY_IDLE_TIMEOUT_S)
                except StopAsyncIteration:
                    break
                size += len(chunk)
                if size > max_body:
                    return b"", size, "too large"
                if keep:
                    chunks.append(chunk)
                # a trickle (a byte every few seconds) would hold an upload place to the end
                if chunk and (declared is None or size < declared) and _too_slow(
                        size, declared, time.monotonic() - started):
                    return b"", size, "timeout"
    except TimeoutError:
        return b"", size, "timeout"
    return b"".join(chunks), size, "whole"


def _busy(what: str):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": f"this replica {what}; retry shortly, or serve with more "
                                  f"--replicas (or a larger --max-queued)"},
                        status_code=503, headers={"Retry-After": "1"})


def _too_large(what: str):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": f"the request body {what}; send fewer windows or frames per "
                                  f"request"}, status_code=413)


def refuse_stream_state(detector, model: str) -> None:
    """ValueError for a sensor model with running normalization: each reading is mapped by the
    levels its own stream has learned, which windows sent on their own do not carry (a review's
    served scores differed from the device's by a median factor of 6.7, 1,216 of 1,953
    decisions)."""
    spec = detector.spec
    if spec.kind == "sensor" and spec.running_normalization is not None:
        raise ValueError(f"{model} normalizes each reading by the levels its stream has learned "
                         f"(running normalization, --running-normalization in training), which "
                         f"windows sent one request at a time do not carry, so served scores "
                         f"would not be the device's: score the stream with `vigil score "
                         f"{Path(model).name} SOURCE` (or a StreamingScorer in Python), or serve "
                         f"a model trained without --running-normalization")


def _check_port_free(host: str, port: int) -> None:
    """ValueError naming the address unless ``host:port`` can be listened on now (Ray Serve's
    own failure to bind comes as a traceback of its deployment, after Ray has started)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ValueError(f"--host {host!r} is not an address of this machine ({error}); give "
                         "an IP address or a name it resolves, e.g. 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # as Ray Serve's proxy binds: a port in TIME_WAIT after a restart is free to it
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise ValueError(f"--host {host} --port {port}: cannot listen there "
                             f"({error.strerror or error}; another program may use the port): "
                             "give another --port") from None


def _shadowing_folder() -> Path | None:
    """A ``vigil`` folder in the working directory that is not the installed package's (the
    checkout itself is not: an editable install in strict mode links its files from build/, so
    the folder is told by the file its ``__init__.py`` is)."""
    import vigil

    here = Path.cwd() / "vigil"
    if not here.is_dir():
        return None
    installed = {Path(p).resolve() for p in getattr(vigil, "__path__", [])}
    same_file = (getattr(vigil, "__file__", None) is not None
                 and (here / "__init__.py").resolve() == Path(vigil.__file__).resolve())
    return None if here.resolve() in installed or same_file else here


def serve_forever(model: str | Path, name: str | None = None, host: str = "127.0.0.1",
                  port: int = 8000, replicas: int = 1, threads: int | None = 1,
                  ready: threading.Event | None = None, max_body_mb: float = MAX_BODY_MB,
                  max_queued: int = MAX_QUEUED, expect_sha256: str | None = None) -> None:
    """Serve ``model`` until SIGTERM or Ctrl-C, then stop Ray Serve and Ray cleanly; with
    ``expect_sha256``, only that file (each replica that loads it checks it again)."""
    from vigil.cli.local_ray import keep_on_loopback
    from vigil.runtime import load

    keep_on_loopback()  # Ray's own services: never on the network (--host is the HTTP side's)
    try:
        import ray
        from ray import serve
    except ImportError:
        from vigil.runtime.core.report import MissingDependency

        raise MissingDependency("`vigil serve` needs Ray Serve, which is not installed: "
                                "pip install 'vigil-edge[serve]'") from None
    model = str(Path(model).resolve())
    detector = load(model, expect_sha256=expect_sha256)  # a bad artifact fails here, before
    # a server starts
    refuse_stream_state(detector, model)
    name = name or Path(model).stem
    if not MODEL_NAME.fullmatch(name):
        raise ValueError(f"--name must be letters, digits, '_', '-' and '.' (it is a part of "
                         f"the URL, /v2/models/NAME); received {name!r}"
                         + ("" if name != Path(model).stem else
                            ", the model file's name: give --name"))
    _check_port_free(host, port)
    shadow = _shadowing_folder()
    if shadow is not None:
        raise ValueError(f"the current folder holds {str(shadow)!r}, which Ray's workers would "
                         f"import in place of the installed vigil package (they start in this "
                         f"folder); run `vigil serve` from another folder (cd elsewhere first)")
    for logger in ("ray", "ray.serve", "ray.data"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    stop = threading.Event()
    ray.init(num_cpus=max(2, replicas + 1), include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    # after ray.init, which installs handlers of its own: SIGTERM and Ctrl-C stop serving cleanly
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        serve.start(http_options={"host": host, "port": port}, logging_config={
            "log_level": "ERROR", "enable_access_log": False})
        app = build_app(model, name, replicas, threads, max_body_mb, max_queued, expect_sha256)
        serve.run(app, name=name, route_prefix="/")
        logging.getLogger("vigil").info("serving %s (%s model, threshold %.6g) at "
                                        "http://%s:%d/v2/models/%s", model, detector.spec.kind,
                                        detector.threshold, host, port, name)
        # Ray Serve binds each replica's gRPC server (calls between deployments, which score) to
        # every interface whatever --host says: said at each start, not only in the README
        logging.getLogger("vigil").warning(
            "Ray Serve's replica gRPC server%s listen%s on every network interface (Ray's "
            "choice, not --host's); on a network you do not trust, let the firewall pass only "
            "port %d", "s" if replicas > 1 else "", "" if replicas > 1 else "s", port)
        print(json.dumps({"serving": name, "url": f"http://{host}:{port}/v2/models/{name}",
                          "protocol": "KServe v2 REST"}), flush=True)
        if ready is not None:
            ready.set()
        stop.wait()
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
