"""The sensor-window detector: scores, per-feature errors and smoothed alarms of windows."""

from __future__ import annotations

import keyword
import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from numbers import Real
from typing import Any

import numpy as np

from ..core.artifact import Artifact
from ..core.detector import Detector
from ..core.spec import FLOAT32_MAX, ArtifactError, SensorSpec
from .alarms import AlarmDecider
from .tables import matched_ignoring_case
from .windows import sliding_windows, window_ends

log = logging.getLogger("vigil")

MAX_BATCH = 512  # windows per session run; a score never depends on how windows are batched
# readings per session run at most (512 windows of 64 rows of 38 columns): a model of very long
# windows runs fewer at once (a review's window of 100,000 rows took 9 GB at 512)
MAX_BATCH_VALUES = 512 * 64 * 38
CHECK_VALUES = 1 << 20  # readings checked for non-finite values at a time (1 MB of flags)


class SensorDetector(Detector):
    """Scores windows of sensor readings with a Vigil artifact.

    ``score(x)`` returns one float per window (higher is more anomalous); ``predict(x)`` compares
    it with ``threshold``, which may be changed without re-exporting the model.
    """

    def __init__(self, artifact: Artifact) -> None:
        super().__init__(artifact, MAX_BATCH)
        spec = artifact.spec
        if not isinstance(spec, SensorSpec):
            raise TypeError(f"`artifact` must be a sensor artifact; {str(artifact.path)!r} is "
                            f"an image artifact: vigil.load('MODEL.onnx') returns the detector "
                            f"of its kind")
        readings = spec.window * len(spec.features)  # long windows: fewer at once
        self._max_batch = min(self._max_batch, max(1, MAX_BATCH_VALUES // readings))
        self._exported = spec  # as the artifact says (``spec`` may turn the likelihood off)
        self.spec: SensorSpec = spec
        self._outputs = [self.spec.score_output, self.spec.feature_output]

    def __repr__(self) -> str:
        spec = self.spec
        return (f"SensorDetector({str(self.path)!r}, window={spec.window}, features="
                f"{list(spec.features)}, threshold={self._threshold:.6g}, precision="
                f"{spec.precision!r}{', adaptive threshold' if spec.adaptive else ''}"
                f"{', anomaly likelihood' if spec.likelihood else ''}, "
                f"providers={self.providers})")

    @property
    def likelihood(self) -> bool:
        """Whether the anomaly likelihood decides beside the threshold (where the artifact has
        one); False turns it off for this detector (``--no-likelihood``), True gives it back."""
        return self.spec.likelihood is not None

    @likelihood.setter
    def likelihood(self, enabled: bool) -> None:
        if not isinstance(enabled, (bool, np.bool_)):
            raise TypeError(f"`likelihood` must be True or False; received "
                            f"{type(enabled).__name__} {enabled!r}")
        if enabled and self._exported.likelihood is None:
            raise ValueError(f"`likelihood` cannot be turned on: {str(self.path)!r} was exported "
                             "without one (vigil train sensor without --no-likelihood gives it)")
        self.spec = replace(self.spec, likelihood=self._exported.likelihood if enabled else None)

    def _settings(self) -> dict:
        settings = super()._settings()
        if self._exported.likelihood is not None and not self.likelihood:
            settings["likelihood"] = False  # turned off since loading: kept when pickled
        return settings

    @property
    def input_shape(self) -> tuple[int, int]:
        """(window, features) of one window."""
        return self.spec.input_shape

    @property
    def features(self) -> tuple[str, ...]:
        return self.spec.features

    def read_options(self, decimal: str = ".", label_column: str | None = None) -> dict:
        """How a CSV is read for this model (``tables.iter_rows``' options): its features by
        name, its time column, no time required; one place, so that a file checked before
        scoring is read as scoring and evaluation read it."""
        return dict(features=self.features, time_column=self.spec.time_column or "auto",
                    label_column=label_column, require_time=False, decimal=decimal)

    def score(self, x: np.ndarray) -> np.ndarray:
        """Scores of one window (window, features) or a batch (n, window, features)."""
        return self.score_with_features(x)[0]

    def score_with_features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores (n,), per-feature errors (n, features)) for one window or a batch."""
        batch = self._check_windows(x)
        score_parts, error_parts = [], []
        for start in range(0, len(batch), self._max_batch):
            # Copied a batch at a time: a long signal's windows are a view of its rows.
            chunk = np.ascontiguousarray(batch[start:start + self._max_batch], dtype=np.float32)
            score, error = self._session.run(self._outputs, {self.spec.input_name: chunk})
            if score.size != len(chunk) or error.size != len(chunk) * len(self.features):
                raise ArtifactError(f"model file {str(self.path)!r} returned {score.size} scores "
                                    f"and {error.size} feature errors for {len(chunk)} windows; "
                                    f"expected one score and {len(self.features)} errors each "
                                    f"(its graph was changed after export)")
            score_parts.append(score.reshape(-1))
            error_parts.append(error.reshape(len(chunk), -1))
        if not score_parts:
            return np.empty(0), np.empty((0, len(self.features)))
        scores = np.concatenate(score_parts).astype(np.float64)
        errors = np.concatenate(error_parts).astype(np.float64)
        # the input is finite (checked), so a NaN is arithmetic that overflowed float32 inside
        # the graph (inf - inf): readings that far out are as anomalous as a score can say
        return (np.where(np.isnan(scores), np.inf, scores),
                np.where(np.isnan(errors), np.inf, errors))

    def score_signal(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score every window of a signal (rows, features).

        Returns (end row of each window, scores, per-feature errors). With running normalization
        in the artifact, the windows are scored in order as ``vigil score`` scores them (each row
        mapped by what the rows before it taught; ``score`` and ``predict`` score windows as
        given, without it), so ``decisions`` of these scores are the CLI's.
        """
        given = _numbers(self._by_name(values, "values"), "values", "rows, features")
        with np.errstate(over="ignore", invalid="ignore"):  # a reading beyond float32 is named below
            values = np.asarray(given, dtype=np.float32)
        window, stride = self.spec.window, self.spec.stride
        if values.ndim != 2 or values.shape[1] != len(self.features):
            raise ValueError(f"`values` must have shape (rows, {len(self.features)}) to match the "
                             f"model's features; received {values.shape}")
        finite = np.isfinite(values)
        if not finite.all():
            row, column = np.argwhere(~finite)[0]
            given = np.asarray(given)  # the reading as given (1e39, not the cast's inf)
            cell = given[row, column] if given.shape == values.shape else values[row, column]
            raise ValueError(f"`values` must be finite in float32 (|x| <= 3.4e38); row {row}, "
                             f"feature {self.features[column]!r} is {cell} (fill "
                             f"missing readings first, or push the rows through StreamingScorer, "
                             f"which fills short gaps and restarts the window after long ones)")
        ends = window_ends(len(values), window, stride)
        windows = sliding_windows(values, window, stride)
        if self.spec.running_normalization is not None:
            self._check_windows(windows)  # finite, as the windows' own path requires
            return ends, *self._streamed(values, len(ends))
        scores, errors = self.score_with_features(windows)
        return ends, scores, errors

    def _streamed(self, values: np.ndarray, windows: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, per-feature errors) of a signal's windows scored in order, as `vigil score`
        scores them: running normalization maps each row by what the stream taught it before,
        and learns nothing while an alarm (at ``threshold``) is on."""
        from .streaming import StreamingScorer

        scorer = StreamingScorer(self, top_k=len(self.features))
        scorer.watching = False  # scores returned whole: no stream to warn of as it runs
        results = scorer._push_rows((row, i, None, None) for i, row in enumerate(values))
        position = {name: i for i, name in enumerate(self.features)}
        scores = np.empty(windows)
        errors = np.empty((windows, len(self.features)))
        for k, result in enumerate(results):
            scores[k] = result.score if not result.score_overflow else np.inf
            for name, error in result.top_features:
                errors[k, position[name]] = error
        return scores, errors

    def alarms(self, scores: np.ndarray, decider: AlarmDecider | None = None) -> np.ndarray:
        """Alarms of consecutive windows' scores, in time order: the threshold (adaptive when the
        artifact says so) and the alarm smoothing (``consecutive``/``hold``), or the anomaly
        likelihood when the artifact has it. Each call decides one whole stream from its start;
        to decide a stream in parts (scores of one request at a time), pass the same
        ``decider = detector.alarm_decider()`` to every call: it carries the stream's state."""
        return self.decisions(scores, decider)[1]

    def decisions(self, scores: np.ndarray, decider: AlarmDecider | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(threshold used, alarm, episode start) for each of consecutive windows' scores, in
        time order; an episode starts where an alarm begins more than ``rearm`` windows after
        the last one ended. Without ``decider`` the scores are a whole stream (see ``alarms``)."""
        if decider is not None and not isinstance(decider, AlarmDecider):
            raise TypeError(f"`decider` must be what detector.alarm_decider() returns; received "
                            f"{type(decider).__name__}")
        if decider is not None and decider.made_for not in (None, self._decider_key()):
            sha256, rule = decider.made_for
            why = (f"another model's (sha256 {sha256[:12]}, this one {self.sha256[:12]})"
                   if sha256 != self.sha256 else
                   "made under another alarm rule (the likelihood turned on or off since)")
            raise ValueError(f"`decider` is {why}: its learned threshold and likelihood belong "
                             f"to that model's stream; use this detector's own, "
                             f"detector.alarm_decider(), one per stream")
        return (decider or self.alarm_decider()).run(_score_sequence(scores), self._threshold)

    def alarm_decider(self) -> AlarmDecider:
        """A fresh decider for one stream of this detector (it keeps the stream's alarm and
        threshold state): one per stream, never shared between streams or models."""
        decider = AlarmDecider(self.spec.consecutive, self.spec.hold, self.spec.adaptive,
                               self.spec.rearm, self.spec.likelihood)
        decider.made_for = self._decider_key()
        return decider

    def _decider_key(self) -> tuple:
        spec = self.spec
        return self.sha256, (spec.consecutive, spec.hold, spec.adaptive, spec.rearm,
                             spec.likelihood)

    def _by_name(self, x, argument: str = "x"):
        """A table with named columns (a pandas DataFrame: one window, or a signal's rows) read
        by the names, as the CLI reads a CSV's header, not by position; other inputs as they
        are, but a masked array, whose mask would be ignored."""
        _refuse_masked(x, argument)
        if isinstance(x, (str, bytes, os.PathLike)):
            raise TypeError(f"`{argument}` must be the readings (an array, or a DataFrame with "
                            f"the features' names), not a file's path; received {x!r}: read the "
                            f"file first (detector.score_signal(pandas.read_csv(path))), or score "
                            f"it as the device does: vigil score MODEL.onnx {x!s}")
        rows = _rows_names(x)
        if rows is not None:
            # a window as named rows (pandas' itertuples, a structured array's records): by the
            # names, as a dict's or a Series' row is pushed; by position they scored as other
            # readings (review u2: every window alarmed)
            skip, at = self._row_positions(rows, argument)
            return [list(row)[skip:] if at is None else [row[skip + i] for i in at] for row in x]
        if isinstance(x, (list, tuple)) and any(_table_names(w) is not None
                                                or _rows_names(w) is not None for w in x):
            # a batch built as [frame.iloc[i:i + window] for i in ...]: each window by its names
            return [np.asarray(self._by_name(w, f"{argument}[{k}]")) for k, w in enumerate(x)]
        columns = getattr(x, "columns", None)
        if columns is not None and hasattr(x, "iloc"):  # pandas
            column_names = [str(c) for c in columns]
            # else by position, as an array
            if column_names != [str(i) for i in range(len(column_names))]:
                x = x.iloc[:, self._positions(column_names, argument, "columns")]
            return _frame_values(x, argument)
        names = _table_names(x)
        if names is None:
            return x
        if _default_names(names):  # polars' column_0..., NumPy's f0...: unnamed, by position
            return np.stack([_column_values(x, name, argument) for name in names], axis=-1)
        # another table with named columns (polars, pyarrow, a NumPy structured array): by
        # the names too; np.asarray would read its columns by position, whatever their names
        chosen = [names[i] for i in self._positions([str(n) for n in names], argument,
                                                    "columns")]
        return np.stack([_column_values(x, name, argument) for name in chosen], axis=-1)

    def row_by_name(self, row: object, argument: str = "values") -> object:
        """One row as the model's features in order: a mapping (a dict) or a pandas Series with
        named entries read by the names; a plain sequence or array as it is (in the model's
        feature order)."""
        _refuse_masked(row, argument)
        if isinstance(row, Mapping):
            names = [str(k) for k in row]
            values = list(row.values())
            return [values[i] for i in self._positions(names, argument, "keys")]
        fields = _row_names(row)
        if fields is not None:  # a namedtuple (pandas' itertuples) or a structured record
            named: Any = row
            skip, at = self._row_positions(fields, argument)
            return list(named)[skip:] if at is None else [named[skip + i] for i in at]
        index = getattr(row, "index", None)
        if index is None or not hasattr(row, "iloc") or getattr(row, "ndim", 1) != 1:
            return row
        names = [str(k) for k in index]
        if names == [str(i) for i in range(len(names))]:
            return row  # unnamed entries (Series(array)): by position, as an array
        return row.iloc[self._positions(names, argument, "entries")]

    def _row_positions(self, fields: list[str], argument: str) -> tuple[int, list[int] | None]:
        """How to read a named row's values: (values to pass over first, 1 for the ``Index``
        that ``itertuples()`` gives first; where each feature stands among the rest, or None to
        read them by position). pandas renames a column whose name is no Python identifier,
        a keyword or a repeated name (``Volume Flow RateRMS``, ``class``) to ``_N``, N its
        place in the tuple: the other names are read by name, and a renamed column stands for
        the one feature the row lacks by name, where that feature's name is one pandas renames
        (a review's SKAB rows were skipped, then read by position whatever their order);
        otherwise the row is refused, naming the columns."""
        skip = 1 if fields[:1] == ["Index"] else 0
        rest = [f.strip() for f in fields[skip:]]
        renamed = [k for k, f in enumerate(rest) if f == f"_{k + skip}"]
        if _default_names(rest) or len(renamed) == len(rest):
            return skip, None  # unnamed columns: by position, as a plain array
        if not renamed:
            return skip, self._positions(rest, argument, "fields")
        named = {f: k for k, f in enumerate(rest) if k not in renamed}
        missing = [f for f in self.features if f not in named]
        if len(missing) == 1 and len(renamed) == 1 and _renamed_by_pandas(missing[0]):
            named[missing[0]] = renamed[0]
            if not getattr(self, "_renamed_said", False):
                self._renamed_said = True
                log.warning("%s: `%s` is a row of pandas' itertuples(), which renamed the "
                            "column %r to %s: read as %r, the one feature the row lacks by name "
                            "(said once per detector)", self.path.name, argument, missing[0],
                            rest[renamed[0]], missing[0])
            return skip, [named[f] for f in self.features]
        raise ValueError(
            f"`{argument}` is a row of pandas' itertuples() whose columns "
            f"{[rest[k] for k in renamed]} pandas renamed (names that are no Python identifiers, "
            f"keywords or repeated), so they cannot be told apart as the model's {missing}; "
            f"score the DataFrame itself (detector.score_signal(df)), or push its rows as dicts "
            f"(df.to_dict('records'))")

    def _positions(self, names: list[str], argument: str, what: str) -> list[int]:
        """Where each feature stands among ``names``, spaces around a name ignored (as the CLI
        reads a CSV header); a feature named twice is refused, as in a CSV's header."""
        names = [name.strip() for name in names]
        missing = [f for f in self.features if f not in names]
        # named in another letter case (a logger of another version): read, and said once, as
        # the CLI reads such a CSV header
        matched = matched_ignoring_case(missing, names, set(self.features)) if missing else {}
        if matched:
            if not getattr(self, "_case_said", False):
                self._case_said = True
                log.warning("%s: `%s` feature(s) %s read from %s %s, named in another letter "
                            "case (said once per detector)", self.path.name, argument,
                            list(matched), what, list(matched.values()))
            names = [next((f for f, n in matched.items() if n == name), name) for name in names]
            missing = []
        if missing:
            raise ValueError(f"`{argument}` has {what} {names}, without the model's {missing}; "
                             f"expected {what} named {list(self.features)} (in any order), or a "
                             f"plain array with the features in that order")
        repeated = sorted({f for f in self.features if names.count(f) > 1})
        if repeated:
            raise ValueError(f"`{argument}` names {repeated} more than once among its {what}; "
                             f"expected each of the model's features once (drop or rename the "
                             f"copies, e.g. df.loc[:, ~df.columns.duplicated()])")
        return [names.index(f) for f in self.features]

    def _check_windows(self, x: np.ndarray) -> np.ndarray:
        x = self._by_name(x)
        try:
            array = np.asarray(x)
        except ValueError as error:  # a ragged list
            raise ValueError(f"`x` must be an array (n, window, features) or (window, features) "
                             f"of numbers; received a list numpy cannot shape ({error})") from None
        expected = self.input_shape
        if array.size == 0 and array.ndim <= 1:  # [] or np.array([]): an empty batch
            return np.empty((0, *expected), np.float32)
        array = _numbers(array, "x", "n, window, features")
        if array.ndim == 2:
            array = array[None]
        if array.ndim != 3 or array.shape[1:] != expected:
            rows = ("; for a signal of rows, score every window of it with "
                    "detector.score_signal(rows)" if array.ndim == 3 and array.shape[0] == 1
                    and array.shape[2] == expected[1] else "")
            raise ValueError(
                f"`x` must have shape {expected} or (n, {expected[0]}, {expected[1]}) to match the "
                f"model (window {expected[0]}, features {list(self.features)}); "
                f"received {np.shape(x)}{rows}"
            )
        chunk = max(1, CHECK_VALUES // (expected[0] * expected[1]))
        for start in range(0, len(array), chunk):  # in chunks: no copy of every window
            part = array[start:start + chunk]
            finite = np.isfinite(part)
            if part.dtype.kind == "f" and part.dtype.itemsize > 4:  # the model runs in float32
                finite &= np.abs(part) <= FLOAT32_MAX
            if not finite.all():
                bad = np.argwhere(~finite)[0]
                raise ValueError(
                    f"`x` must be finite in float32 (|x| <= 3.4e38); window {start + bad[0]}, "
                    f"step {bad[1]}, feature {self.features[bad[2]]!r} is {part[tuple(bad)]}"
                )
        return array


def _score_sequence(scores) -> np.ndarray:
    """``scores`` as a 1-D float64 array; TypeError or ValueError naming it otherwise (an
    overflowing score, +inf, is a score: it alarms)."""
    try:
        array = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"`scores` must be a sequence of numbers, the windows' scores in time "
                        f"order (detector.score(windows)); received {type(scores).__name__} "
                        f"({error})") from None
    if array.ndim != 1:
        raise ValueError(f"`scores` must be one-dimensional, a score per window in time order; "
                         f"received shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError(f"`scores` must not hold NaN; received one at position "
                         f"{int(np.flatnonzero(np.isnan(array))[0])}")
    return array


def _refuse_masked(x, argument: str) -> None:
    """TypeError for a numpy masked array: scoring reads its data, so the readings it masks
    would be scored as if they were good."""
    if np.ma.isMaskedArray(x):
        raise TypeError(f"`{argument}` is a masked array: its mask would be ignored and the "
                        f"masked readings scored; fill them first (`{argument}.filled(value)`) "
                        f"or leave those rows out")


def _table_names(x) -> list | None:
    """The column names of a table that is not pandas' (a polars DataFrame, a pyarrow Table or
    RecordBatch, a NumPy structured array), or None for anything else, pandas included."""
    if hasattr(x, "iloc"):
        return list(x.columns) if getattr(x, "columns", None) is not None else None
    dtype = getattr(x, "dtype", None)
    if isinstance(x, np.ndarray) and dtype is not None and dtype.names:
        return list(dtype.names)
    for attribute in ("column_names", "columns"):  # pyarrow's, then polars'
        names = getattr(x, attribute, None)
        if isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names):
            return list(names)
    return None


def _renamed_by_pandas(name: str) -> bool:
    """Whether pandas' ``itertuples()`` renames a column of this name (to ``_N``)."""
    return not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_")


def _row_names(row) -> list[str] | None:
    """The field names of one named row: a namedtuple (pandas' ``itertuples``) or a NumPy
    structured record (``np.void``, ``np.record``); None for anything else."""
    fields = getattr(row, "_fields", None)
    if isinstance(row, tuple) and isinstance(fields, tuple) and all(isinstance(f, str)
                                                                    for f in fields):
        return list(fields)
    if isinstance(row, np.void) and row.dtype.names:
        return list(row.dtype.names)
    return None


def _rows_names(x) -> list[str] | None:
    """The field names of a sequence of named rows that all share them, or None."""
    if not isinstance(x, (list, tuple)) or not x or _row_names(x) is not None:
        return None
    names = _row_names(x[0])
    if names is None or any(_row_names(row) != names for row in x[1:]):
        return None
    return names


def _default_names(names: list) -> bool:
    """Whether ``names`` are a library's own for unnamed columns (polars' ``column_0``, NumPy's
    and pyarrow's ``f0``, pandas' ``0``), which say nothing of the features: read by position,
    as a plain array is."""
    return any(list(names) == [f"{prefix}{i}" for i in range(len(names))]
               for prefix in ("column_", "f", "", "_"))  # "_": itertuples' unnamed columns


def _column_values(table, name: str, argument: str) -> np.ndarray:
    """One named column of a non-pandas table as float64, its missing cells as NaN; ValueError
    naming a column that holds no numbers."""
    column = table.column(name) if hasattr(table, "column") else table[name]
    if hasattr(column, "to_pylist"):  # pyarrow: nulls as None
        column = column.to_pylist()
    elif hasattr(column, "to_list"):  # polars: nulls as None
        column = column.to_list()
    try:  # None (a null) becomes NaN, named later as a missing reading
        return np.asarray(column, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`{argument}` column {name!r} must hold numbers ({error})") from None


def _frame_values(frame, argument: str) -> np.ndarray:
    """A DataFrame's readings as float64, its missing cells (NaN, None, ``pd.NA`` of nullable and
    Arrow-backed columns) as NaN, so that the finite check names them; ValueError naming a
    column that holds no numbers."""
    for name in frame.columns:
        kind = getattr(frame[name].dtype, "kind", "O")
        if kind == "b" or (kind == "O" and any(isinstance(cell, (bool, np.bool_))
                                               for cell in frame[name])):
            # (an array of booleans is refused, and a CSV's True cell is no number)
            raise TypeError(f"`{argument}` column {str(name)!r} holds booleans, which are not "
                            f"read as readings (True would score as 1.0); convert it first if "
                            f"it is one, e.g. df[{str(name)!r}].astype(float)")
        if kind not in "fiu":
            try:
                frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
            except (TypeError, ValueError) as error:
                raise ValueError(f"`{argument}` column {str(name)!r} must hold numbers; received "
                                 f"dtype {frame[name].dtype} ({error})") from None
    return frame.to_numpy(dtype=np.float64, na_value=np.nan)


def _numbers(values, name: str, shape: str) -> np.ndarray:
    """``values`` as an array of numbers: ints, unsigned or floats as they are; an object array
    of real numbers (Python, NumPy or ``Decimal`` ones: a DataFrame's nullable or mixed columns,
    a database driver's rows) as float64, its ``None`` and ``pd.NA`` as NaN (named later as
    missing). TypeError otherwise, naming the first cell that is no number: booleans, complex
    numbers and text were cast (True scored as 1.0, a complex number as its real part) or failed
    in numpy's words."""
    array = np.asarray(values)
    if array.dtype.kind in "fiu":
        return array
    if array.dtype.kind == "O":
        flat = array.reshape(-1)
        bad = next((k for k, cell in enumerate(flat) if not _real_or_missing(cell)), None)
        if bad is None:
            return np.array([np.nan if _missing(c) else float(c) for c in flat],
                            dtype=np.float64).reshape(array.shape)
        where = f"; at {list(map(int, np.unravel_index(bad, array.shape)))} it holds {flat[bad]!r}"
    elif array.dtype.kind in "US" and array.size:
        where = f"; at {[0] * array.ndim} it holds {array.reshape(-1)[0]!r}"
    else:
        where = ""
    raise TypeError(f"`{name}` must be numbers ({shape}); received dtype {array.dtype}{where} "
                    f"(booleans, complex numbers and text are not read as readings: convert "
                    f"them first, e.g. with .astype(float))")


def _missing(cell) -> bool:
    return cell is None or type(cell).__name__ == "NAType"  # pandas' NA, without importing it


def _real_or_missing(cell) -> bool:
    if isinstance(cell, (bool, np.bool_)):
        return False
    return _missing(cell) or isinstance(cell, (Real, Decimal))
