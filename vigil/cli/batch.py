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

import itertools
import json
import logging
import math
import os
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator, Sequence, TypeVar

from vigil.runtime.core.spec import ArtifactError
from vigil.runtime.core import interrupts
from vigil.runtime.core.detector import Detector
from vigil.runtime.core.output import OutputError
from vigil.runtime.core.progress import Progress, silent
from vigil.runtime.core.results import DECISION_KEYS, position_key
from vigil.runtime.sensor.detector import SensorDetector

IMAGES_PER_ITEM = 64
SPOOL_BYTES = 16 << 20  # an item's lines beyond this wait in a temporary file ($TMPDIR), not memory
RAY_CHUNK_CHARS = 8 << 20  # on Ray, a worker hands an item's lines on in parts of about this size

DetectorKind = TypeVar("DetectorKind", bound=Detector)

log = logging.getLogger("vigil")


@dataclass(frozen=True)
class WorkItem:
    """One independent piece of scoring: ``kind`` is ``csv``, ``video`` or ``images``."""

    kind: str
    paths: tuple[str, ...]
    name: str              # the source name the local run would print
    first_index: int = 0   # images: the first frame's number in its folder
    given: str = ""        # the input that brought it
    skip: str | None = None  # why a folder's file is skipped (found before the run), as `vigil
                             # score` skips it: no line, the reason in the summary


def _item_label(item: WorkItem) -> str:
    """An item as its messages name it: a part of an image folder with its frames' numbers (a
    folder is scored in parts of ``IMAGES_PER_ITEM``), any other item by its source name."""
    if item.kind == "images" and len(item.paths) and Path(item.name).is_dir():
        last = item.first_index + len(item.paths) - 1
        return f"{item.name} (frames {item.first_index}-{last})"
    return item.name


def work_items(model_kind: str, inputs: Sequence[str]) -> list[WorkItem]:
    """The work items of ``inputs`` for a ``sensor`` or ``image`` model, in input order. A
    folder's videos are items of their own; its other files are one run of frames, numbered as
    `vigil score` numbers a folder of images. An input that does not exist or holds nothing to
    score, or one that repeats another's files, is a ValueError naming it."""
    from vigil.runtime.camera.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, folder_files
    from vigil.runtime.sensor.tables import csv_files

    items: list[WorkItem] = []
    given: dict[str, tuple[str, str]] = {}  # a file's resolved path -> (the input, its name)
    seen_inputs: set[str] = set()
    for spec in inputs:
        path = Path(spec)
        if not path.exists():
            raise ValueError(f"input {spec!r} does not exist; `vigil batch` takes CSV files or "
                             "folders (sensor models), image folders, images or videos (image "
                             "models)")
        if model_kind == "sensor":
            files = [str(p) for p in csv_files(spec, "inputs")]
        elif path.is_dir():
            files = [str(p) for p in folder_files(path, (
                f"them all as inputs ({str(path).rstrip('/')}/*/ unquoted: the shell lists "
                f"them; `vigil batch` takes no glob of its own)"), argument="inputs")]
        else:
            files = [spec]
        for file in files:
            earlier, earlier_file = given.setdefault(os.path.realpath(file), (spec, file))
            if earlier_file == file and earlier == spec:
                continue
            where = (f"input {spec!r} holds {file!r} and {earlier_file!r}, the same file (a link "
                     "to it)" if earlier == spec and path.is_dir() else
                     f"input {spec!r} repeats {file!r}, which input {earlier!r} already holds")
            raise ValueError(f"{where}; give each file once (its lines would be written twice, "
                             "with nothing to tell them apart)")
        if spec in seen_inputs:
            raise ValueError(f"input {spec!r} is given twice; give each input once (its lines "
                             "would be written twice, with nothing to tell them apart)")
        seen_inputs.add(spec)
        if model_kind == "sensor":
            items += [WorkItem("csv", (file,), file, given=spec) for file in files]
        elif path.is_dir():
            videos = [f for f in files if Path(f).suffix.lower() in VIDEO_EXTENSIONS]
            # beside recordings, other files (notes, indexes) are no frames; in a folder of
            # images they are, each reported unusable, as `vigil score` reports them
            frames = [f for f in files if Path(f).suffix.lower() not in VIDEO_EXTENSIONS
                      and (not videos or Path(f).suffix.lower() in IMAGE_EXTENSIONS)]
            left = [Path(f).name for f in files if f not in frames and f not in videos]
            if left:
                log.warning("%s: %d file(s) beside its videos are neither videos nor images and "
                            "are not scored (%s%s); a recording with another suffix is scored "
                            "when given as an input itself", spec, len(left),
                            ", ".join(left[:5]), ", ..." if len(left) > 5 else "")
            items += [WorkItem("images", tuple(frames[i:i + IMAGES_PER_ITEM]), spec, i, spec)
                      for i in range(0, len(frames), IMAGES_PER_ITEM)]
            items += [WorkItem("video", (video,), video, given=spec) for video in videos]
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            items.append(WorkItem("images", (spec,), spec, given=spec))
        else:
            items.append(WorkItem("video", (spec,), spec, given=spec))
    return items


@dataclass(frozen=True)
class Reading:
    """How to read and decide, as `vigil score`'s options of the same names say: ``threshold``
    overrides the artifact's; for sensor CSVs, ``decimal`` is the decimal mark, ``header`` the
    column names of files without a header line, and ``likelihood`` False turns the artifact's
    anomaly likelihood off; ``expect_sha256`` pins the model file (every worker that loads it
    refuses another: a file deployed over it mid-batch stops the batch)."""

    threshold: float | None = None
    decimal: str = "."
    header: tuple[str, ...] | None = None
    likelihood: bool = True
    expect_sha256: str | None = None

    def check(self, model_kind: str) -> None:
        """ValueError naming the options that do not apply to an image model."""
        if model_kind == "sensor":
            return
        given = [flag for flag, used in (("--decimal", self.decimal != "."),
                                          ("--columns", self.header is not None),
                                          ("--no-likelihood", not self.likelihood)) if used]
        if given:
            raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                             "sensor models; the model is an image model")


class Scorer:
    """Scores work items with one detector (a Ray Data worker holds one of these)."""

    part_chars = RAY_CHUNK_CHARS  # on Ray: an item's lines are handed on in parts of this size

    def __init__(self, model: str, threads: int | None = 1,
                 reading: Reading = Reading(), progress: Progress = silent) -> None:
        from vigil.runtime import load

        self.model = model
        self.detector = load(model, threads=threads, expect_sha256=reading.expect_sha256)
        self.reading = reading
        self.progress = progress  # within a long CSV item: its MB read (in this process only)
        if reading.threshold is not None:
            self.detector.threshold = reading.threshold
        if not reading.likelihood and isinstance(self.detector, SensorDetector):
            self.detector.likelihood = False
        self.skips_said: int | None = None  # skipped frames named on stderr, over all items

    def score_into(self, item: WorkItem, out: IO[str], max_frames: int | None = None) -> dict:
        """Write the JSON lines of ``item`` to ``out`` (of its first ``max_frames`` frames, where
        given); its summary. A file that cannot be scored (skipped when the batch was planned,
        or gone or changed since) gives no line and its reason."""
        if item.skip is not None:
            return {"errors": [f"skipped: {item.skip}"], "files_skipped": 1}
        start = out.tell()
        try:
            return self._score(item, out, max_frames)
        except ArtifactError:
            raise  # the model, not the item: no item would score
        except (ValueError, OSError) as error:  # the file went or changed since it was checked
            out.seek(start)
            out.truncate()  # the lines of a file that failed part-way are not kept
            gone = next((p for p in item.paths if not os.path.lexists(p)), None)
            if gone is not None:  # not the reader's words, which name `vigil score`'s arguments
                reason = f"{gone}: removed or moved after the batch was planned"
            else:
                reason = str(error) if isinstance(error, ValueError) else \
                    f"{item.name}: cannot be read ({error.strerror or error})"
            log.error("skipped: %s; the other items go on", reason)
            return {"errors": [f"skipped: {reason}"], "files_skipped": 1}

    def _detector_for(self, item: WorkItem, kind: type[DetectorKind]) -> DetectorKind:
        """The detector, of the kind ``item`` needs; ArtifactError where the model file is of
        the other kind (replaced by another model since the batch was planned, or another file
        at its path on a Ray worker's node)."""
        if isinstance(self.detector, kind):
            return self.detector
        planned, found = (("a sensor", "an image") if kind is SensorDetector
                          else ("an image", "a sensor"))
        raise ArtifactError(f"{item.name} was planned for {planned} model, but {self.model!r} "
                            f"is {found} model here (sha256 {self.detector.sha256[:12]}): keep "
                            "the model file in place during a batch, the same on every node")

    def _score(self, item: WorkItem, out: IO[str], max_frames: int | None = None) -> dict:
        from vigil.runtime.camera.detector import ImageDetector
        from vigil.runtime.camera.scoring import FrameScoringOptions, score_frames
        from vigil.runtime.camera.sources import ImageFiles, VideoFile
        from vigil.runtime.sensor.scoring import score_source

        summary: Any
        window: int | None = None  # a sensor model's, in rows
        if item.kind == "csv":
            header = list(self.reading.header) if self.reading.header else None
            detector = self._detector_for(item, SensorDetector)
            window = detector.spec.window
            summary = score_source(detector, item.paths[0], out, header=header,
                                   decimal=self.reading.decimal, progress=self.progress)
        else:
            source = (ImageFiles([Path(p) for p in item.paths], item.name, item.first_index)
                      if item.kind == "images" else VideoFile(Path(item.paths[0])))
            try:
                if self.skips_said is None:
                    self.skips_said = FrameScoringOptions().skips_said
                summary = score_frames(self._detector_for(item, ImageDetector), source, out,
                                       FrameScoringOptions(max_frames=max_frames,
                                                           skips_said=self.skips_said))
            finally:
                source.close()
            self.skips_said = max(0, self.skips_said - summary.skipped)
        if summary.stopped == "interrupted":
            # the scoring loop ends an item at Ctrl-C with what it had: the item is not whole,
            # so the batch stops here and its lines are not written (--resume scores it again)
            raise KeyboardInterrupt
        if summary.stopped == "output_failed":  # the temporary file that holds its lines
            # (its own message counts lines in that file, which is no output of the user's)
            said = re.search(r"could not be written \((.*?)\): ", summary.last_error or "")
            raise OutputError(f"the lines of {item.name!r} could not be held in a temporary "
                              f"file in {tempfile.gettempdir()!r} ($TMPDIR: "
                              f"{said.group(1) if said else summary.last_error}), which holds an "
                              "item's lines past 16 MB until the item is whole: free space there "
                              "or set TMPDIR to a folder with room for the largest item's lines; "
                              "the batch stopped before that item")
        result = summary.to_json()
        # an item read whole whose every row (or frame) was skipped scored nothing: an error of
        # the batch, as `vigil score` refuses such a file (a decimal comma, columns renamed)
        counted, scored = (("rows", "windows") if item.kind == "csv" else ("frames_in", "scored"))
        label = _item_label(item)
        if (result.get(counted) and not result.get(scored)
                and (window is None or result["rows"] >= window)):
            note = (f"{label}: none of its {result[counted]} "
                    f"{'rows' if item.kind == 'csv' else 'frames'} could be scored (the last "
                    f"reason: {summary.last_error})")
            result["errors"] = [*result.get("errors", []), note]
            log.error("%s", note)
        elif item.kind != "csv" and result.get("skipped"):  # damaged images, undecodable frames
            result["errors"] = [*result.get("errors", []),
                                f"{label}: {result['skipped']} of its {result['frames_in']} "
                                f"frames skipped, each with its line (the last: "
                                f"{summary.last_error})"]
        result["model_sha256"] = self.detector.sha256  # the model its lines came from
        return result

    def __call__(self, batch: dict) -> Iterator[dict]:
        """Ray Data's entry: a batch of JSON-encoded items in; each item's lines out in parts of
        about ``part_chars`` (whole lines), its summary with the last part. The lines wait
        in a temporary file on the worker past ``SPOOL_BYTES``, so a long item's text is never
        held whole in the worker's memory or in one object of Ray's store."""
        for encoded in batch["item"]:
            with _spool() as spool, _kept_warnings() as said:
                summary = self.score_into(WorkItem(**json.loads(encoded)), spool)
                if said:  # the driver says them as the item is written (Ray's logs are off)
                    summary = {**summary, WORKER_WARNINGS: said}
                spool.seek(0)
                part = spool.read(self.part_chars)
                while True:
                    part += spool.readline()  # to the end of the line the part cut into
                    following = spool.read(self.part_chars)
                    yield {"lines": [part], "summary": ["" if following else json.dumps(summary)]}
                    if not following:
                        break
                    part = following


WORKER_WARNINGS = "worker_warnings"  # a Ray item's summary: what vigil warned of on the worker
MAX_WORKER_WARNINGS = 20  # an item's first warnings kept


@contextmanager
def _kept_warnings() -> Iterator[list[tuple[int, str]]]:
    """(level, message) of vigil's warnings (and errors) while the block runs, up to
    ``MAX_WORKER_WARNINGS``: on a Ray worker they would go to Ray's logs, which are off (a time
    gap, an alarm that lasts: said in a local batch, lost on Ray)."""
    said: list[tuple[int, str]] = []

    class Keeper(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if len(said) < MAX_WORKER_WARNINGS:
                said.append((record.levelno, record.getMessage()))

    keeper = Keeper(logging.WARNING)
    logger = logging.getLogger("vigil")
    logger.addHandler(keeper)
    try:
        yield said
    finally:
        logger.removeHandler(keeper)


def _bound_scorer(model: str, threads: int | None, reading: Reading) -> type:
    """A ``Scorer`` class with its arguments built in: Ray Data then needs no constructor
    arguments (which it would keep in the object store, and warn about on every worker)."""
    class BoundScorer(Scorer):
        part_chars = RAY_CHUNK_CHARS  # as the driver has it (this class travels by value)

        def __init__(self) -> None:
            super().__init__(model, threads, reading)

    return BoundScorer


def score_locally(model: Path, items: Sequence[WorkItem], threads: int | None,
                  reading: Reading, progress: Progress = silent
                  ) -> Iterator[tuple[Iterable[str], dict]]:
    """The single-process path: every item in turn, in this process. An item's lines are
    handed on once it is whole; past ``SPOOL_BYTES`` they wait in a temporary file, so that a
    year of readings in one CSV does not wait in memory. ``progress`` hears of a long CSV
    item's MB read while it is scored."""
    scorer = Scorer(str(model), threads, reading, progress)
    for item in items:
        with _spool() as spool:
            summary = scorer.score_into(item, spool)
            spool.seek(0)
            yield (line.rstrip("\n") for line in spool), summary


def _spool() -> IO[str]:
    """Text that stays in memory up to ``SPOOL_BYTES``, then moves to a file in $TMPDIR."""
    return tempfile.SpooledTemporaryFile(SPOOL_BYTES, mode="w+", encoding="utf-8",
                                         newline="\n")


@contextmanager
def _our_data_context(context) -> Iterator[None]:
    """Ray Data's settings for our dataset, set on the process-wide ``context`` only while the
    dataset is made (it keeps its own copy), then put back as the caller had them."""
    before = (context.execution_options.preserve_order, context.enable_progress_bars,
              context.target_max_block_size)
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    context.target_max_block_size = 2 * RAY_CHUNK_CHARS  # a worker's parts go on as made
    try:
        yield
    finally:
        (context.execution_options.preserve_order, context.enable_progress_bars,
         context.target_max_block_size) = before


@contextmanager
def _our_signal_handlers():
    """Keep this process's SIGTERM and SIGINT handlers (the run's stop requests) over a
    ``ray.init``, which installs its own: under it, SIGTERM ended a run with exit 15 and a
    stack dump, without the summary and the --resume advice."""
    import signal

    names = ("SIGTERM", "SIGINT")
    before = {n: signal.getsignal(getattr(signal, n)) for n in names}
    try:
        yield
    except SystemExit as stop:  # Ray's handler, for a signal that came while Ray started
        if stop.code in (signal.SIGTERM, signal.SIGINT):
            raise KeyboardInterrupt(signal.Signals(stop.code).name) from None
        raise
    finally:
        for name, handler in before.items():
            if handler is not None:
                signal.signal(getattr(signal, name), handler)


RAY_CONNECT_TIMEOUT_S = 5.0


def _refuse_silent_address(address: str) -> None:
    """ValueError for a ``HOST:PORT`` (or ``ray://HOST:PORT``) where nothing accepts a
    connection: joining one, Ray retries for ever inside its C++ core, deaf to Ctrl-C."""
    import socket

    addresses = ("check the address (ray://HEAD:10001 for a client, HEAD:6379 on a cluster node, "
                 "or auto there)")
    scheme = address.split("://", 1)[0].lower() if "://" in address else None
    if scheme in ("http", "https"):
        raise ValueError(f"--ray {address}: expected HOST:PORT, ray://HOST:PORT or auto, not a "
                         f"{scheme}:// address (a Ray dashboard's web address is no cluster "
                         f"address); {addresses}")
    if scheme not in (None, "ray"):
        return  # module://... and the like: a client builder Ray reads itself
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray reads itself
    try:
        with socket.create_connection((host.strip("[]"), int(port)),
                                      RAY_CONNECT_TIMEOUT_S) as connection:
            answer = _grpc_answer(connection)
    except OSError as error:
        raise ValueError(f"--ray {address}: nothing accepts a connection there "
                         f"({error.strerror or error}); start a cluster (`ray start --head` on "
                         f"its head node), {addresses}, or give --ray alone "
                         f"for a local Ray") from None
    if answer is not None:
        raise ValueError(f"--ray {address}: what listens there is not Ray: it does not speak "
                         f"gRPC ({answer}), and Ray would wait for it for minutes, deaf to "
                         f"Ctrl-C; a dashboard (port 8265) or a web server is no cluster "
                         f"address: {addresses}")


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


NOT_TLS = ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "UNEXPECTED_EOF_WHILE_READING")


def _speaks_tls(address: tuple) -> bool:
    """Whether the server at ``address`` answers a TLS handshake (its certificate unchecked:
    only whether TLS is spoken there is asked)."""
    import socket
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection(address, RAY_CONNECT_TIMEOUT_S) as raw:
            with context.wrap_socket(raw):
                return True
    except ssl.SSLError as error:  # a TLS alert (a client certificate wanted, say) is TLS; a
        return error.reason not in NOT_TLS  # reply that is no TLS record, or none, is not
    except OSError:
        return False


def _grpc_answer(connection) -> str | None:
    """None when the server on ``connection`` answers an HTTP/2 client preface as a gRPC server
    (Ray's GCS and its client server) does, with a SETTINGS frame; else what it did instead."""
    import socket

    connection.settimeout(RAY_CONNECT_TIMEOUT_S)
    try:
        connection.sendall(HTTP2_PREFACE)
        first = connection.recv(9)
    except socket.timeout:
        return f"no answer in {RAY_CONNECT_TIMEOUT_S:g} s"
    except OSError as error:
        return f"the connection failed: {error.strerror or error}"
    if len(first) >= 4 and first[3] == 4:  # a frame header whose type is SETTINGS
        return None
    if not first:  # a TLS server (a cluster run with RAY_USE_TLS=1) closes on plain text
        return None if _speaks_tls(connection.getpeername()[:2]) else "it closed the connection"
    text = first.decode("latin-1")
    return f"it answered {text!r}" if text.isprintable() else f"it answered bytes {first!r}"


def score_on_ray(model: Path, items: Sequence[WorkItem], address: str | None,
                 workers: int | None, threads: int | None,
                 reading: Reading) -> Iterator[tuple[Iterable[str], dict]]:
    """Every item on Ray Data (a local Ray when ``address`` is None), in input order. Each item's
    parts are gathered here as ``score_locally`` gathers its lines, and handed on once the item
    is whole."""
    if address is None:
        from vigil.cli.local_ray import keep_on_loopback

        keep_on_loopback()  # a local Ray's services: on 127.0.0.1, never on the network
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
            with _our_signal_handlers():
                ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
        else:
            _refuse_silent_address(address)
            try:
                with _our_signal_handlers():
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ConnectionError, TimeoutError, RuntimeError) as error:
                why = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise ValueError(f"--ray {address}: no Ray cluster could be joined there "
                                 f"({why}); "
                                 "start one (`ray start --head` on its head node), check the "
                                 "address (ray://HEAD:10001, or auto on a cluster node), or "
                                 "give --ray alone for a local Ray") from None
    try:
        pool = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        with _our_data_context(ray.data.DataContext.get_current()):  # the dataset keeps a copy
            dataset = ray.data.from_items([{"item": json.dumps(asdict(i))} for i in items],
                                          override_num_blocks=max(1, len(items)))
        scored = dataset.map_batches(
            _bound_scorer(str(model.resolve()), threads, reading), batch_size=1, concurrency=min(pool, max(1, len(items))), num_cpus=1)
        rows = iter(scored.iter_rows())
        while True:
            with _spool() as spool:
                while True:  # the parts of one item, up to the one that carries its summary
                    try:
                        with interrupts.waiting():  # Ctrl-C stops the wait for the workers
                            row = next(rows)
                    except StopIteration:
                        return
                    except Exception as error:  # a worker's exception, wrapped by Ray
                        cause = getattr(error, "cause", None)
                        if isinstance(cause, ValueError):  # a bad input found by the worker
                            raise ValueError(f"on Ray: {cause}") from None
                        raise
                    spool.write(row["lines"])
                    if row["summary"]:
                        break
                spool.seek(0)
                summary = json.loads(row["summary"])
                for level, message in summary.pop(WORKER_WARNINGS, ()):
                    log.log(level, "%s", message)
                yield (line.rstrip("\n") for line in spool), summary
    finally:
        if started_here:
            ray.shutdown()


def plan_batch(model: str | Path, inputs: Sequence[str], reading: Reading = Reading(),
               check: Callable[[str, str], None] | None = None,
               detector=None) -> list[WorkItem]:
    """The work items of ``inputs`` for ``model`` (checked: before any output is opened);
    ``check(kind, input)`` may refuse an input for the model's kind first. ``detector``: the
    model already loaded, if the caller has it."""
    from vigil.runtime import load
    from vigil.runtime.sensor.scoring import check_header, check_source

    detector = detector if detector is not None else load(model)
    reading.check(detector.spec.kind)
    # a stop request ends the planning between inputs and between files (a folder of thousands
    # takes long), never within one's check: that may be OpenCV's code (runtime.core.interrupts)
    if check is not None:
        for given in inputs:
            interrupts.check()
            check(detector.spec.kind, given)
    items = work_items(detector.spec.kind, inputs)
    if not items:
        raise ValueError(f"the inputs {list(inputs)} hold nothing to score")
    if detector.spec.kind == "sensor":
        header = list(reading.header) if reading.header else None
        for given in inputs:  # a file, or at least one file of a folder, with a usable row
            interrupts.check()
            check_source(detector, given, header, reading.decimal)

        def check_item(item: WorkItem) -> None:
            check_header(detector, item.paths[0], header, reading.decimal, rows=False)
    else:
        def check_item(item: WorkItem) -> None:
            if item.kind == "video":
                _check_video(item.paths[0])
    # every file is checked before the output is made: an input that is a file itself is
    # refused, a folder's file skipped (named now, and in the summary) as `vigil score` skips it
    checked = []
    for item in items:
        interrupts.check()
        try:
            check_item(item)
        except ValueError as error:
            if item.name == item.given:
                raise
            log.warning("skipped: %s; the other files go on", error)
            item = replace(item, skip=str(error))
        checked.append(item)
    for given in inputs:
        skipped = [i.skip for i in checked if i.given == given and i.skip is not None]
        if skipped and len(skipped) == sum(i.given == given for i in checked):
            raise ValueError(f"{given}: none of its {len(skipped)} files could be scored; the "
                             f"first: {skipped[0]}")
    frames: dict[str, list[str]] = {}
    for item in checked:
        if item.kind == "images":
            frames.setdefault(item.name, []).extend(item.paths)
    for name, paths in frames.items():  # a folder none of whose images decodes is refused
        from vigil.runtime.camera.sources import check_images

        interrupts.check()
        check_images([Path(p) for p in paths], name)
    return checked


def _check_video(path: str) -> None:
    """SourceError (a ValueError) naming ``path`` unless OpenCV opens it as a video and one of
    its frames decodes (as `vigil score` refuses such a video before its output is made)."""
    from vigil.runtime.camera.sources import VideoFile

    video = VideoFile(Path(path))
    try:
        video.check()
    finally:
        video.close()


@dataclass(frozen=True)
class ResumePoint:
    """Where ``--resume`` continues: ``items_done`` items are in the output whole, in its first
    ``keep_bytes`` bytes (``lines_kept`` lines); the item after them is scored again, from its
    first line (its lines, perhaps cut short by the interruption, are ``lines_cut``)."""

    items_done: int
    keep_bytes: int
    lines_kept: int
    lines_cut: int
    skipped_kept: int = 0  # of the lines kept, those of skipped rows or frames (for --strict)


def resume_point(jsonl: str | Path, items: Sequence[WorkItem],
                 window: int | None = None, header: bool = True) -> ResumePoint:
    """Where an interrupted batch into ``jsonl`` continues with ``items``. Items are written in
    their order, one after another, so every item before the last one with lines in the file is
    complete; that last one is scored again. ValueError naming the line when the file holds a
    line of no item, or lines out of the items' order (another run's inputs or another order),
    and naming the item when one the file passes over could have written lines (an input added
    since): only a CSV of fewer than ``window`` data rows (a sensor model's window; ``header``:
    the files have a header line) writes none."""
    owner: dict[str, list[int]] = {}  # a source's name -> the items that produce it, in order
    spelled: dict[str, str] = {}  # a source's name -> as this run writes it
    for number, item in enumerate(items):
        for name in (item.paths if item.kind == "images" else (item.name,)):
            owner.setdefault(_path_key(name), []).append(number)
            spelled.setdefault(_path_key(name), str(Path(name)))  # as its lines name it
    current, start, lines_before, lines = -1, 0, 0, 0
    skipped, skipped_before = 0, 0  # lines of skipped rows or frames: all, before the last item
    seen: dict[int, list[str]] = {}  # an item -> the sources of its lines, in order
    for begins, record in _results(jsonl):
        source = record.get("source")
        key = _path_key(str(source))  # once a line: a results file may hold millions
        candidates = [n for n in owner.get(key, []) if n >= current]
        if not candidates:
            where = ("comes before an item written after it" if owner.get(key)
                     else "is not among the inputs")
            raise ValueError(
                f"--resume: line {lines + 1} of {str(jsonl)!r} is from source {source!r}, which "
                f"{where}; --resume continues the run that wrote the file, with the same model "
                "and the same inputs in the same order (give them as before, or start again with "
                "--overwrite)")
        if str(Path(str(source))) != spelled[key]:
            raise ValueError(
                f"--resume: line {lines + 1} of {str(jsonl)!r} names its source {source!r}, and "
                f"this run names the same file {spelled[key]!r}: one file "
                f"would hold both spellings; give the inputs as the run that wrote it did "
                f"(relative or absolute, as then), or start again with --overwrite")
        if candidates[0] != current:
            for passed in items[current + 1:candidates[0]]:
                if not _writes_nothing(passed, window, header):
                    _refuse_changed_since(passed, jsonl)  # it wrote nothing then
                    raise ValueError(
                        f"--resume: {passed.name!r} has no line in {str(jsonl)!r}, but items "
                        f"after it do: it was not among the inputs of the run that wrote the "
                        "file (added since?), or the inputs were given in another order; "
                        "resume with the inputs as they were, in the same order, or start "
                        "again with --overwrite")
            current, start, lines_before, skipped_before = candidates[0], begins, lines, skipped
        seen.setdefault(current, []).append(key)
        lines += 1
        skipped += record.get("skipped") is not None
    if current < 0:
        return ResumePoint(0, 0, 0, 0)
    for number in range(current):  # a folder's images: one line each, as the folder is now
        item = items[number]
        if item.kind == "images" and seen.get(number, []) != [_path_key(p) for p in item.paths]:
            written = set(seen.get(number, []))
            missing = next((p for p in item.paths if _path_key(p) not in written), item.paths[0])
            raise ValueError(
                f"--resume: {missing!r} has no line in {str(jsonl)!r} (or the folder's images are "
                "not those of the run that wrote the file), but images after it do: it was "
                "added since, and the frames after it would be numbered anew; resume with the "
                "inputs as they were, or start again with --overwrite")
        _refuse_changed_since(item, jsonl)
    return ResumePoint(current, start, lines_before, lines - lines_before, skipped_before)


def refuse_appending_again(jsonl: str | Path, items: Sequence[WorkItem]) -> None:
    """ValueError where ``--append`` would write lines for a source that ``jsonl`` already has
    lines of: the file would hold that source twice, with nothing to tell the runs apart."""
    ours: dict[str, str] = {}
    for item in items:
        for name in (item.paths if item.kind == "images" else (item.name,)):
            ours.setdefault(_path_key(name), name)
    sources = {record.get("source") for _, record in _results(jsonl)}
    repeated = sorted(ours[key] for key in {_path_key(str(s)) for s in sources if s is not None}
                      if key in ours)
    if repeated:
        more = f" and {len(repeated) - 1} more" if len(repeated) > 1 else ""
        raise ValueError(
            f"--append: {str(jsonl)!r} already holds lines of {repeated[0]!r}{more}, which this "
            "run would score again: its lines would be in the file twice; give only the inputs "
            "not yet scored, --resume to continue the interrupted batch that wrote the file, or "
            "--overwrite to replace it")


def _refuse_changed_since(item: WorkItem, jsonl: str | Path) -> None:
    """ValueError when a file of ``item``, which the results file holds whole, was changed
    after the results file was last written: its lines are another content's (rows appended to
    a log since, say), and resuming would keep them stale."""
    written_at = Path(jsonl).stat().st_mtime
    for path in item.paths:
        try:
            changed_at = Path(path).stat().st_mtime
        except OSError:
            continue  # gone: the run reports it in its turn
        if changed_at > written_at:
            raise ValueError(
                f"--resume: {path!r} was changed after {str(jsonl)!r} was last written, so its "
                "lines there may be another content's (rows added since?); --resume continues "
                "the run that wrote the file, with the inputs as they were: restore it, or "
                "start again with --overwrite")


CHECKED_LINES = 1100  # past the warm-ups of the adaptive threshold (1,000) and the likelihood


def check_same_model(jsonl: str | Path, items: Sequence[WorkItem], scorer: Scorer,
                     lines: int = CHECKED_LINES) -> None:
    """ValueError unless ``scorer``'s model gives the scores and alarm decisions the file's
    first scored lines hold (up to ``lines`` of one source, scored again alone): --resume must
    not add one model's results, or one set of alarm options', to another's. A CSV's rows are
    scored again from the lines up to them; an image alone; a video's first frames by decoding
    it up to them (at most ``VIDEO_PROBE_FRAMES``). Frame lines carry the threshold they were
    decided by (those written before they did are compared by their decisions alone)."""
    owner = {_path_key(name): item for item in items
             for name in (item.paths if item.kind == "images" else (item.name,))}
    written: dict[int, dict] = {}  # the first scored lines of one source: row or frame -> line
    source, key = None, "index"
    for _, record in _results(jsonl):
        if not isinstance(record.get("score"), (int, float)):
            continue
        if source is None:
            source = str(record.get("source"))
            key = position_key(record) or "index"
        elif str(record.get("source")) != source or len(written) >= lines:
            break
        written[int(record.get(key, 0))] = record
    item = owner.get(_path_key(str(source)))
    if item is not None and item.kind == "video":
        written = {k: v for k, v in written.items() if k < VIDEO_PROBE_FRAMES}
    if not written or item is None:
        return
    with tempfile.TemporaryDirectory() as folder, _spool() as spool:
        if item.kind == "video":  # its first frames, decoded again up to the last compared
            probe_item, max_frames = item, max(written) + 1
        elif item.kind == "csv":
            probe_path = Path(folder) / Path(item.paths[0]).name
            with open(item.paths[0], "rb") as given, open(probe_path, "wb") as probe:
                # the header and the rows up to the last compared (blank lines are no rows)
                rows = 0
                for row in given:
                    probe.write(row)
                    rows += bool(row.strip())
                    if rows >= max(written) + 2:
                        break
            probe_item, max_frames = WorkItem("csv", (str(probe_path),), str(probe_path)), None
        else:
            frame = min(written)
            probe_item = WorkItem("images", (str(source),), str(source), first_index=frame)
            written, max_frames = {frame: written[frame]}, None
        scorer.score_into(probe_item, spool, max_frames)
        spool.seek(0)
        again = {int(line[key]): line for line in map(json.loads, spool)
                 if line.get(key) in written}
    for number, line in written.items():
        score, rescored = float(line["score"]), again.get(number, {}).get("score")
        if not (isinstance(rescored, (int, float)) and _same_number(rescored, score)):
            rescored_text = "no score" if rescored is None else f"{rescored:.7g}"
            raise ValueError(
                f"--resume: {str(jsonl)!r} holds score {score:.7g} for {source}, {key} {number}, "
                f"and this model, scoring it again, gives {rescored_text}: the file was written "
                "by another model (or the input changed since); --resume continues the run that "
                "wrote the file, with the same model and the same inputs (give that model, or "
                "start again with --overwrite)")
        differs = _decision_difference(line, again[number])
        if differs:
            options = ("its threshold (--threshold) is" if key == "frame" else  # image lines
                       "its alarm options (--threshold, --no-likelihood) are")
            raise ValueError(
                f"--resume: {str(jsonl)!r} holds {differs[0]} for {source}, {key} {number}, and "
                f"this run decides {differs[1]}: {options} not those of the run that wrote the "
                "file; --resume continues that run: give them as before, or start again with "
                "--overwrite")


VIDEO_PROBE_FRAMES = 64  # a video's first frames, decoded again to check a --resume


def _decision_difference(written: dict, again: dict) -> tuple[str, str] | None:
    """(what the file says, what this run says) of the first alarm decision of a line that
    differs (its value, or whether the line has it), or None."""
    for name in DECISION_KEYS:
        if name == "threshold" and position_key(written) == "frame" and name not in written:
            continue  # a frame line written before frame lines carried their threshold
        before, now = written.get(name), again.get(name)
        same = (_same_number(before, now) if isinstance(before, float) and isinstance(now, float)
                else before == now)
        if not same:
            return (f"{name} {json.dumps(before)}" if name in written else f"no {name}",
                    f"{name} {json.dumps(now)}" if name in again else f"no {name}")
    return None


def _same_number(a: float, b: float) -> bool:
    """Equal to the rounding of a batch scored in other parts (float32 products blocked
    otherwise), far below what tells two models or two thresholds apart."""
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7)


def _item_bytes(item: WorkItem) -> int:
    """What an item holds to read, in bytes (0 for a file gone since it was planned)."""
    total = 0
    for path in item.paths:
        try:
            total += os.path.getsize(path)
        except OSError:
            pass
    return total


def kept_problems(items: Sequence[WorkItem], window: int | None,
                  header: bool) -> tuple[int, list[str]]:
    """(files skipped, problems) of items a resumed batch does not score again: what their run
    counted for --strict (a resumed run that counted only its own items exited 0 where the whole
    run exits 5, a review found)."""
    skipped, problems = 0, []
    for item in items:
        if item.skip is not None:
            skipped += 1
            problems.append(f"skipped: {item.skip}")
        elif _writes_nothing(item, window, header):
            problems.append(f"{item.name}: fewer data rows than the model's window of {window}: "
                            "no window could be scored")
    return skipped, problems


def _writes_nothing(item: WorkItem, window: int | None, header: bool) -> bool:
    """Whether scoring ``item`` writes no line: a file skipped when the batch was planned, or a
    CSV with fewer data rows than the window (blank lines are no rows)."""
    if item.skip is not None:
        return True
    if item.kind != "csv" or window is None:
        return False
    with open(item.paths[0], "rb") as handle:
        lines = sum(1 for _ in itertools.islice((line for line in handle if line.strip()),
                                                window + 1))
    return lines - (1 if header else 0) < window


def _results(jsonl: str | Path) -> Iterator[tuple[int, dict]]:
    """``read_results`` of an existing file (nothing for a missing one), read errors named."""
    from vigil.runtime.core.output import read_results

    if not Path(jsonl).is_file():
        return
    try:
        for result in read_results(jsonl):  # (it may hold millions of lines)
            interrupts.check()  # a stop request, between lines: pure Python here
            yield result
    except OSError as error:
        raise ValueError(f"{str(jsonl)!r} cannot be read ({error.strerror or error}); "
                         "it must be the results file of the run to continue") from None


def _path_key(name: str) -> str:
    """A source name compared as a path: the same file however its path is spelled."""
    return os.path.normcase(os.path.abspath(name))


# The counts of `vigil score`'s summary that a batch adds up over its items: sensor rows filled
# (a gap or an unreadable cell) or out of order, and the alarms; frames read, scored, anomalous
SUMMED_COUNTS = ("rows", "windows", "rows_filled", "rows_out_of_order", "time_gaps",
                 "times_unchecked", "rows_unseen_inputs", "unchanged_runs", "alarms",
                 "alarm_episodes", "frames_in", "scored", "anomalies")


def run_batch(model: str | Path, items: Sequence[WorkItem], out, use_ray: bool = False,
              ray_address: str | None = None, workers: int | None = None,
              threads: int | None = 1, reading: Reading = Reading(),
              progress: Progress = silent) -> dict:
    """Score ``items`` (``plan_batch``) with ``model`` and write their lines to ``out`` (a
    ``JsonLines``); returns the run's summary (items, lines, seconds, throughput, errors).
    ``progress`` hears of each item written."""
    model = Path(model)
    started = time.perf_counter()
    results = (score_on_ray(model, items, ray_address, workers, threads, reading) if use_ray
               else score_locally(model, items, threads, reading, progress))
    lines_written, skipped, files_skipped = 0, 0, 0
    errors: list[str] = []
    counts: dict[str, int] = {}  # SUMMED_COUNTS over the items that have them
    models: list[str] = []  # the sha256 of each model that scored an item, in the order met
    # progress by the items' bytes: by their count, one 500,000-row file weighed as much as a
    # 2,000-row one and the time left was 3x too long (a review)
    sizes = [_item_bytes(item) for item in items]
    unit, name = (1 << 20, "MB") if sum(sizes) >= 100 << 20 else (1 << 10, "kB")
    stage, read, whole = f"batch: {name} of {len(items)} items scored", 0, sum(sizes)
    total = max(1, whole // unit)
    progress(stage, 0, total)
    for item, size, (lines, summary) in zip(items, sizes, results):
        interrupts.check()  # a stop request between items: this item's lines are not written
        try:
            for line in lines:
                out.write_line(line, mark=item.name)  # written by the same code in the worker
                lines_written += 1
        except OutputError as error:
            raise OutputError(f"{out.name!r} could not be written "
                              f"({error.reason or error}); the batch stopped at "
                              f"{item.name!r}: {out.lines_written} lines were written, the "
                              "items before it whole") from None
        skipped += summary.get("rows_skipped", summary.get("skipped", 0)) or 0
        files_skipped += summary.get("files_skipped", 0)
        errors += summary.get("errors", [])
        if summary.get("model_sha256") and summary["model_sha256"] not in models:
            models.append(summary["model_sha256"])
            if len(models) == 2:  # replaced under a running batch: its lines mix two models
                log.warning("%s changed while the batch ran: from %s on, items were scored by "
                            "another model (sha256 %s, the first %s); keep the file in place "
                            "during a batch, and score those items again with the model meant",
                            model, item.name, models[1][:12], models[0][:12])
        for key in SUMMED_COUNTS:  # what `vigil score` says of each source, over them all
            if isinstance(summary.get(key), int):
                counts[key] = counts.get(key, 0) + summary[key]
        read += size
        progress(stage, read // unit if read < whole else total, total)
    out.flush()
    seconds = time.perf_counter() - started
    return {"engine": ("ray " + (ray_address or "local")) if use_ray else "single process",
            "items": len(items), "lines": lines_written, "skipped": skipped,
            "files_skipped": files_skipped, "errors": errors, **counts,
            "model_sha256": models, "seconds": round(seconds, 3),
            "lines_per_s": round(lines_written / seconds, 1) if seconds > 0 else None}
