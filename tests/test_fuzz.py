"""Property-based fuzzing of what the runtime reads from outside: CSV rows, artifact metadata and
files, images and frames. Every input must end in a result or a clear error (ValueError, TypeError
or ArtifactError), never another exception or a hang.

Runs are deterministic in CI (derandomized, a fixed number of examples). To fuzz for longer with
fresh random inputs: ``VIGIL_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import io
import json
import re
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vigil import runtime
from vigil.runtime import ArtifactError
from vigil.runtime.core.artifact import parse_metadata
from vigil.runtime.core.external_data import external_tensors
from vigil.runtime.camera.scoring import score_frames
from vigil.runtime.camera.frames import to_model_input
from vigil.runtime.sensor.scoring import score_lines
from vigil.runtime.camera.sources import Frame, SourceStats, try_read_image
from vigil.runtime.core.spec import spec_from_dict, spec_to_dict
from vigil.runtime.sensor.tables import iter_rows, time_key

onnx = pytest.importorskip("onnx")

LONG = int(os.environ.get("VIGIL_FUZZ_EXAMPLES", "0"))


def fuzz(examples: int):
    """Settings of one property: ``examples`` in CI, or VIGIL_FUZZ_EXAMPLES random ones."""
    return settings(max_examples=LONG or examples, derandomize=not LONG, deadline=None,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def tiny_sensor(tmp_path_factory):
    from sensor_fixtures import write_tiny_sensor_artifact

    return write_tiny_sensor_artifact(tmp_path_factory.mktemp("fuzz-sensor") / "sensor.onnx")


@pytest.fixture(scope="module")
def sensor(tiny_sensor):
    return runtime.load(tiny_sensor)


@pytest.fixture(scope="module")
def image_detector(tiny_image_artifact):
    return runtime.load(tiny_image_artifact)


# --- CSV rows -----------------------------------------------------------------------------------

NASTY_CELLS = ["", " ", "nan", "NaN", "inf", "-Infinity", "1e309", "-1e-400", "1_000", "0x10",
               "null", "?", "N/A", '"1.5"', '"', '""', '"a,b"', "١٢", "１２", "1.0\r", "\x00",
               "12:00", "2024-02-30T25:61:00", "9999-12-31T23:59:59+14:00", "0001-01-01"]
cells = st.one_of(
    st.sampled_from(NASTY_CELLS),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10**30, max_value=10**30).map(str),
    st.text(alphabet=st.sampled_from(list(',;\t"0123456789.eE-+naifNAI \r')), max_size=12),
    st.text(max_size=8),
)
lines = st.lists(cells, min_size=0, max_size=7).map(",".join)


@fuzz(300)
@given(header=st.lists(st.one_of(st.sampled_from(["timestamp", "a", "b", "c", "anomaly", ""]),
                                 st.text(max_size=6)), min_size=1, max_size=6),
       rows=st.lists(lines, max_size=12))
def test_row_parser_gives_rows_or_a_header_error(header, rows):
    try:
        for parser, row in iter_rows([",".join(header), *rows], {}, "fuzz.csv"):
            if row is None:
                continue
            assert row.values.shape == (len(parser.features),)
            if row.problem is None:
                assert np.isfinite(row.values).all()
            else:
                assert isinstance(row.problem, str) and row.problem
    except ValueError as error:
        assert str(error).startswith("fuzz.csv")  # a header problem, naming the source


@fuzz(200)
@given(text=st.one_of(st.sampled_from(NASTY_CELLS), st.text(max_size=40),
                      st.datetimes().map(lambda d: d.isoformat()),
                      st.floats().map(repr)))
def test_time_key_is_comparable_or_none(text):
    key = time_key(text)
    assert key is None or (key[0] in (0, 1) and math.isfinite(key[1]))


SENSOR_HEADER = ["timestamp", "a", "b", "c"]


@fuzz(150)
@given(rows=st.lists(st.tuples(st.one_of(st.integers(0, 50).map(str), st.sampled_from(NASTY_CELLS)),
                               st.lists(st.one_of(st.floats(-3, 3).map(repr), cells),
                                        min_size=0, max_size=5)),
                     max_size=40),
       live=st.booleans())
def test_every_sensor_row_is_scored_skipped_or_warm_up(sensor, rows, live):
    text = [",".join(SENSOR_HEADER)] + [",".join([stamp, *values]) for stamp, values in rows]
    results = []
    scorer = score_lines(sensor, text, "fuzz", lambda result, name: results.append(result),
                         live=live)
    n = scorer.rows_in
    assert n == sum(1 for line in text[1:] if line.strip())
    indices = [r.index for r in results]
    assert indices == sorted(set(indices)) and all(0 <= i < n for i in indices)
    scored = [r for r in results if r.skipped is None]
    assert len(scored) == scorer.windows_scored
    assert len(results) - len(scored) == scorer.rows_skipped
    assert all(math.isfinite(r.score) for r in scored)
    assert scorer.rows_out_of_order <= n
    # A row without a line is one of the first window-1 rows since the start or a restart:
    # never right after a scored window, never more than window-1 in a row.
    disposition = {r.index: ("S" if r.skipped else "W") for r in results}
    silent, previous = 0, None
    for i in range(n):
        state = disposition.get(i, "M")
        if state == "M":
            assert previous != "W", f"row {i} was dropped silently"
            silent += 1
            assert silent <= sensor.spec.window - 1
        else:
            silent = 0
        previous = state
    for result in results:  # every line is valid JSON
        json.loads(json.dumps(result.to_json()))


@fuzz(150)
@given(chunks=st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(
    [b"\xe9", b"\xff\xfe", b"\xef\xbb\xbf", b"\x00", b"\r", b"\n", b"\r\n", b"1,0.1,0.2,0.3\n",
     b"7" * 300])), max_size=30), cut=st.booleans())
def test_any_bytes_after_the_header_end_as_rows_never_as_an_error(sensor, chunks, cut):
    """Bytes that are not UTF-8, NULs, endless lines, a stream cut mid-line: each ends only its
    row; the run reads to the end and every row is scored, filled, skipped or warm-up."""
    from vigil.runtime.sensor.tables import read_lines

    data = ("timestamp," + ",".join(sensor.features) + "\n").encode() + b"".join(chunks)
    if not cut and not data.endswith(b"\n"):
        data += b"\n"
    results = []
    scorer = score_lines(sensor, read_lines(io.BytesIO(data), max_bytes=256), "fuzz",
                         lambda result, name: results.append(result), live=cut)
    lines = re.split(rb"\r\n|\r|\n", data)[1:]  # LF, CRLF and a lone CR end a line
    rows = sum(1 for line in lines if line.strip(b" \t\x0b\x0c\x1c\x1d\x1e\x85"))
    assert scorer.rows_in <= rows + 1
    scored = [r for r in results if r.skipped is None]
    assert len(scored) == scorer.windows_scored
    assert len(results) - len(scored) == scorer.rows_skipped
    for result in results:
        json.loads(json.dumps(result.to_json(), allow_nan=False))


# --- artifact metadata --------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-10**40, max_value=10**40),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=20)


def valid_metadata() -> list[dict]:
    from image_fixtures import tiny_image_spec
    from sensor_fixtures import tiny_sensor_spec

    return [spec_to_dict(tiny_sensor_spec()), spec_to_dict(tiny_image_spec())]


def paths_of(data, prefix=()):
    """Every key path in a nested dict (lists are leaves)."""
    for key, value in data.items():
        yield (*prefix, key)
        if isinstance(value, dict):
            yield from paths_of(value, (*prefix, key))


@st.composite
def mutated_metadata(draw):
    data = json.loads(json.dumps(draw(st.sampled_from(valid_metadata()))))
    for _ in range(draw(st.integers(1, 3))):
        paths = sorted(paths_of(data))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        target = data
        for key in path[:-1]:
            target = target[key]
        if draw(st.booleans()):
            target[path[-1]] = draw(json_values)
        else:
            del target[path[-1]]
    return data


@fuzz(300)
@given(data=st.one_of(json_values, mutated_metadata()))
def test_metadata_dicts_give_a_spec_or_an_artifact_error(data):
    try:
        spec = spec_from_dict(data)
    except ArtifactError as error:
        assert str(error).startswith("metadata")
    else:
        assert spec_from_dict(spec_to_dict(spec)) == spec


@fuzz(200)
@given(text=st.one_of(
    st.text(max_size=60),
    mutated_metadata().map(json.dumps),
    st.tuples(mutated_metadata().map(json.dumps), st.integers(0, 400), st.text(max_size=3))
      .map(lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:]),
    st.integers(1, 6000).map(lambda n: '{"schema_version": ' + "9" * n + "}"),
))
def test_metadata_text_gives_a_spec_or_an_artifact_error(text):
    try:
        parse_metadata({"vigil": text})
    except ArtifactError:
        pass


# --- artifact files -----------------------------------------------------------------------------

@fuzz(25)
@given(data=st.one_of(mutated_metadata().map(json.dumps), st.text(max_size=30)))
def test_artifact_files_with_hostile_metadata_load_or_are_refused(tiny_sensor, tmp_path_factory,
                                                                  data):
    model = onnx.load(str(tiny_sensor))
    model.metadata_props[0].value = data
    path = tmp_path_factory.mktemp("meta") / "model.onnx"
    path.write_bytes(model.SerializeToString())
    try:
        detector = runtime.load(path)
    except ArtifactError as error:
        assert str(path) in str(error)
    else:
        assert detector.spec.kind in ("sensor", "image")


@fuzz(40)
@given(cut=st.integers(0, 10**6), flips=st.lists(st.tuples(st.integers(0, 10**6),
                                                            st.integers(0, 255)), max_size=4))
def test_damaged_artifact_files_load_or_are_refused(tiny_sensor, tmp_path_factory, cut, flips):
    data = bytearray(tiny_sensor.read_bytes())
    for position, value in flips:
        data[position % len(data)] = value
    data = bytes(data[: cut % (len(data) + 1)]) if cut % 3 == 0 else bytes(data)
    assume(data)
    path = tmp_path_factory.mktemp("damaged") / "model.onnx"
    path.write_bytes(data)
    try:
        runtime.load(path)
    except ArtifactError as error:
        assert str(path) in str(error)


@fuzz(300)
@given(data=st.binary(max_size=300))
def test_protobuf_walk_gives_tensors_or_a_value_error(data):
    try:
        found = external_tensors(data)
    except ValueError:
        return
    assert all(isinstance(t.name, str) and isinstance(t.location, str) for t in found)


# --- images and frames --------------------------------------------------------------------------

HEADERS = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"II*\x00", b"RIFF\x00\x00\x00\x00WEBP",
           b"P5\n4 4\n255\n", b"P6\n2 2\n255\n"]


@fuzz(150)
@given(header=st.sampled_from(HEADERS), body=st.binary(max_size=400),
       suffix=st.sampled_from([".png", ".jpg", ".bmp", ".tif", ".webp", ".pgm", ".ppm", ".txt"]))
def test_random_bytes_as_image_files_decode_or_say_why(tmp_path_factory, header, body, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"image{suffix}"
    path.write_bytes(header + body)
    image, error = try_read_image(path)
    if error is None:
        assert image.dtype == np.uint8 and image.ndim in (2, 3)
    else:
        assert image is None and isinstance(error, str) and error


DTYPES = [np.uint8, np.int8, np.uint16, np.int32, np.float32, np.float64, np.bool_, np.complex64]


@st.composite
def frames(draw):
    shape = draw(st.one_of(
        st.lists(st.integers(0, 40), min_size=0, max_size=4).map(tuple),
        st.sampled_from([(2, 2000), (2000, 2, 3), (1, 1, 3), (40, 40, 4), (40, 40, 1), (3, 3, 2)]),
    ))
    dtype = draw(st.sampled_from(DTYPES))
    array = np.asarray(np.random.default_rng(draw(st.integers(0, 2**32 - 1))).integers(
        0, 256, size=shape)).astype(dtype)
    view = draw(st.sampled_from(["plain", "reversed", "strided", "fortran", "readonly"]))
    if view == "reversed" and array.ndim:
        array = array[::-1]
    elif view == "strided" and array.ndim >= 2:
        array = array[::2, ::2]
    elif view == "fortran":
        array = np.asfortranarray(array)
    elif view == "readonly":
        array.flags.writeable = False
    return array


@fuzz(300)
@given(frame=st.one_of(frames(), st.sampled_from([None, [], [[1, 2], [3, 4]], "frame", 3.5])))
def test_random_frames_convert_or_raise_a_clear_error(image_detector, frame):
    try:
        prepared = to_model_input(frame, image_detector.spec)
    except (ValueError, TypeError) as error:
        assert "frame" in str(error)
        return
    assert prepared.shape == image_detector.input_shape and prepared.dtype == np.uint8
    score = image_detector.score(frame)
    assert score.shape == (1,) and math.isfinite(score[0])


class ListSource:
    """Items given as arrays (or None with an error), as a live source would deliver them."""

    live, fps, name = True, None, "fuzz"

    def __init__(self, items) -> None:
        self.items = items
        self.stats = SourceStats()

    def __iter__(self):
        for index, item in enumerate(self.items):
            self.stats.read += 1
            error = "the device returned nothing" if item is None else None
            yield Frame(index, self.name, item, error, 0.0)

    def close(self) -> None:
        pass


@fuzz(40)
@given(items=st.lists(st.one_of(frames(), st.none()), max_size=8))
def test_every_random_frame_is_scored_or_skipped(image_detector, items):
    out = io.StringIO()
    summary = score_frames(image_detector, ListSource(items), out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["frame"] for r in records] == list(range(len(items)))
    assert all((r["score"] is None) == ("skipped" in r) for r in records)
    assert summary.scored + summary.skipped == summary.frames_in == len(items)
