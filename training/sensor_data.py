"""Preparing sensor CSVs for training: cleaning, chronological split, normalization, windows."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from vigil.runtime.core.artifact import sha256_of
from vigil.runtime.sensor.labels import nab_labels, nab_root, read_labels, relative_path
from vigil.runtime.sensor.tables import (DEFAULT_EXCLUDED_COLUMNS, DEFAULT_LABEL_COLUMN,
                                         MissingColumns, Table, csv_files, detect_separator,
                                         fill_gaps, read_table, split_cells, time_key)
from vigil.runtime.sensor.windows import sliding_windows

log = logging.getLogger("vigil")


@dataclass(frozen=True)
class SensorData:
    """Windows ready for training, in raw units (normalization is part of the model)."""

    features: tuple[str, ...]
    train: np.ndarray            # (n, window, features) normal windows
    validation: np.ndarray       # (m, window, features) all validation windows
    validation_labels: np.ndarray  # (m,) True where the window ends on a labeled anomaly
    validation_clean: np.ndarray   # (m,) True where no row of the window is labeled: normal
    mean: np.ndarray
    std: np.ndarray
    files: tuple[dict, ...]      # name, sha256, rows, labeled_rows of every file used
    time_column: str | None
    label_column: str | None
    train_rows: np.ndarray       # normal training rows, for normalization and calibration
    # Per feature: the scale of the heavy-tail compression (``heavy_tail_scales``; 0: none), and
    # the mean and std the model standardizes the compressed values with (``mean`` and ``std``
    # where nothing is compressed; those two stay the readings' own, in their units, for the
    # artifact's spec).
    compression: np.ndarray
    model_mean: np.ndarray
    model_std: np.ndarray
    roles: tuple[str, ...] = ()  # per feature: "scored", or why it is an input only
    time_step: dict | None = None  # ``time_step``'s record: the artifact's ``TimeStepSpec``
    labels: dict | None = None  # where the labels came from (``labels_record``)
    # per scored feature, its longest run of one unchanged reading in the normal training rows
    # (``steady_runs``): the runtime flags a reading frozen far longer (a stuck sensor)
    steady_runs: dict | None = None


SCORED = "scored"
# With `compress_heavy_tails`, a scored column whose normal training rows are all >= 0 and skewed
# above this is compressed when that at least halves the skew (HEAVY_TAIL_GAIN): counts, bytes and
# request rates, where one burst otherwise dwarfs everything the model learned. The two figures
# come from the rule's first trial, on NAB (docs/quality.md, "Heavy-tailed columns compressed").
HEAVY_TAIL_SKEW = 2.0
HEAVY_TAIL_GAIN = 2.0
NEAR_CONSTANT_SHARE = 0.99   # one value in at least this share of the normal training rows
CATEGORICAL_LEVELS = 10      # at most this many distinct whole-number values: a status/command
# A column of few whole-number levels that moves as a quantity is a count (connections, a queue,
# a whole-degree temperature), scored: at least 3 levels, and most of its changes single steps or
# changes on many rows. A status or command column holds a level and jumps (review s58 sD: a
# Poisson count of mean 3 was input-only, its jump to 40 never alarmed; no column of SKAB, SMD,
# ECG or NAB changes role under this rule).
COUNT_LEVELS = 3
COUNT_UNIT_STEP_SHARE = 0.8  # of its changes are +-1
COUNT_CHANGE_SHARE = 0.2     # or it changes on at least this share of rows


def feature_roles(rows: np.ndarray, mean: np.ndarray,
                  fallback: bool = True) -> tuple[str, ...]:
    """Whether each feature's error is scored, or why the feature is an input only.

    A column that is constant, nearly constant, binary or categorical (a few whole-number levels
    that it holds and jumps between: status and command columns; one that moves as a count is
    scored) in normal operation carries no signal worth forecasting: when it changes in use its
    error would swamp the score. Such columns stay inputs of the network and
    are left out of the score. If that would leave nothing to score, every feature is scored
    (unless ``fallback`` is False: the caller applies it, after the roles the user gave).
    """
    roles = []
    for column, level in zip(np.asarray(rows, dtype=np.float64).T, mean):
        values, counts = np.unique(column, return_counts=True)
        if len(values) == 1 or column.std() <= 1e-8 * max(1.0, abs(level)):
            roles.append("constant")
        elif counts.max() >= NEAR_CONSTANT_SHARE * len(column):
            roles.append("near-constant")
        elif len(values) == 2:
            roles.append("binary")
        elif (len(values) <= CATEGORICAL_LEVELS and np.all(values == np.round(values))
              and not _moves_as_a_count(column, len(values))):
            roles.append("categorical")
        else:
            roles.append(SCORED)
    if fallback and SCORED not in roles:
        return tuple(SCORED for _ in roles)
    return tuple(roles)


GIVEN = "given"  # the role of a column given with --inputs-only


def check_given_names(table: Table, options: DataOptions) -> None:
    """ValueError naming the option where ``--scored`` or ``--inputs-only`` names no feature
    column (the time or label column said as such), or one column is given to both; checked as
    soon as the files are read."""
    features = table.features
    for flag, names in (("--scored", options.scored), ("--inputs-only", options.inputs_only)):
        if isinstance(names, str):
            raise ValueError(f"{flag} (`{flag.strip('-').replace('-', '_')}`) must be a tuple of "
                             f"column names; received the string {names!r} (write ({names!r},))")
        for name in names:
            if name in features:
                continue
            what = ("the time column" if name == table.time_column else "the label column"
                    if name == table.label_column else "no feature column")
            raise ValueError(f"{flag} names {name!r}, which is {what}; the features are "
                             f"{', '.join(features)}")
    both = sorted(set(options.scored) & set(options.inputs_only))
    if both:
        raise ValueError(f"{both[0]!r} is given to both --scored and --inputs-only; give each "
                         "column to one of them")


def given_roles(roles: Sequence[str], features: Sequence[str],
                options: DataOptions) -> tuple[str, ...]:
    """``roles`` (``feature_roles``, without its fallback where roles are given) with the
    columns of ``options.scored`` scored and those of ``options.inputs_only`` inputs only:
    ``GIVEN``, or the rule's own role where it made the column an input already (a constant
    column stays held at its level, a status keeps its levels checked). A column constant in
    training cannot be scored (its error has no scale). Where nothing is left to score, every
    column is, as ``feature_roles``' fallback has it, but the inputs given and the constant
    ones; none left is refused, naming the fix."""
    constant = [name for name, role in zip(features, roles)
                if role == "constant" and name in options.scored]
    if constant:
        raise ValueError(f"--scored names {constant[0]!r}, which is constant in the normal "
                         "training rows: its error has no scale to be scored by; leave it out "
                         "of --scored (a change of it is flagged in unseen_inputs)")
    given = tuple(SCORED if name in options.scored
                  else (role if role != SCORED else GIVEN) if name in options.inputs_only
                  else role for name, role in zip(features, roles))
    if SCORED in given:
        return given
    # the rule left nothing to score: every column is scored (its fallback), but those given
    # as inputs only and the constant ones
    given = tuple(role if name in options.inputs_only or role == "constant" else SCORED
                  for name, role in zip(features, given))
    if SCORED not in given:
        raise ValueError(f"no column is left to score (the features are {', '.join(features)}: "
                         f"--inputs-only gives the others, which are constant): leave a column "
                         f"out of --inputs-only")
    return given


def _moves_as_a_count(column: np.ndarray, levels: int) -> bool:
    """Whether a whole-number column of few levels moves as a quantity does (``COUNT_*``): a
    count is scored, a status or command column is an input only."""
    steps = np.diff(column)
    changes = steps[steps != 0]
    if levels < COUNT_LEVELS or not len(changes):
        return False
    return bool(np.mean(np.abs(changes) == 1) >= COUNT_UNIT_STEP_SHARE
                or len(changes) >= COUNT_CHANGE_SHARE * len(steps))


def skewness(column: np.ndarray) -> float:
    """The column's sample skewness (0 for a constant column)."""
    column = np.asarray(column, dtype=np.float64)
    std = column.std()
    if std <= 0:
        return 0.0
    return float(np.mean(((column - column.mean()) / std) ** 3))


def heavy_tail_scales(rows: np.ndarray, roles: Sequence[str]) -> np.ndarray:
    """Per feature, the scale ``m`` of ``compress``: the median of the positive training values of
    a scored, non-negative column skewed above ``HEAVY_TAIL_SKEW`` whose compressed values are at
    most half as skewed; 0 (left as it is) for every other column. Chosen from the normal
    training rows alone."""
    rows = np.asarray(rows, dtype=np.float64)
    scales = np.zeros(rows.shape[1])
    for i, (column, role) in enumerate(zip(rows.T, roles)):
        if role != SCORED or len(column) < 2 or column.min() < 0:
            continue
        skew = skewness(column)
        if skew <= HEAVY_TAIL_SKEW:
            continue
        scale = float(np.median(column[column > 0]))
        if abs(skewness(np.log1p(column / scale))) * HEAVY_TAIL_GAIN <= skew:
            scales[i] = scale
    return scales


def compress(values: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """``sign(x) log(1 + |x| / m)`` in the features whose scale ``m`` > 0; the others as they are
    (the same as the model's ``Standardize`` layer computes)."""
    values = np.asarray(values)
    squeezed = np.sign(values) * np.log1p(np.abs(values) / np.where(scales > 0, scales, 1.0))
    return np.where(scales > 0, squeezed, values).astype(values.dtype, copy=False)


def standardization(rows: np.ndarray, relative_std_floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Each feature's mean and std over ``rows``; the std at least ``relative_std_floor`` of the
    mean's magnitude, and 1 for a constant feature."""
    mean = rows.mean(axis=0)
    std = rows.std(axis=0)
    std = np.maximum(std, relative_std_floor * np.abs(mean))
    std = np.where(std > 1e-8 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return mean, std


def training_spread(rows: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Each feature's std over ``rows`` before ``standardization``'s floor (``std`` where the
    feature is constant): the spread running normalization maps readings back onto."""
    spread = rows.std(axis=0)
    return np.where(spread > 1e-8 * np.maximum(1.0, np.abs(rows.mean(axis=0))), spread, std)


@dataclass(frozen=True)
class DataOptions:
    window: int = 48
    stride: int = 1
    validation_fraction: float = 0.25
    max_gap: int = 3
    label_column: str | None = "anomaly"
    time_column: str | None = "auto"
    features: tuple[str, ...] | None = None
    excluded: tuple[str, ...] = DEFAULT_EXCLUDED_COLUMNS
    # Each feature's std is at least this fraction of its mean level: a slowly drifting sensor
    # (a temperature) seen over a short normal period otherwise looks far too quiet.
    relative_std_floor: float = 0.01
    # ``heavy_tail_scales``; off by default: on NAB and SMD it moved the leading figures by less
    # than the seed spread and lowered SMD's AUROC (docs/quality.md, "Heavy-tailed columns
    # compressed")
    compress_heavy_tails: bool = False
    labels: str | None = None  # a labels file of windows/points per data file (or NAB's)
    decimal: str = "."  # "," for CSVs with decimal commas (and ; or tab between columns)
    # columns whose role the user gives, over what ``feature_roles`` decides from the data
    scored: tuple[str, ...] = ()       # scored whatever their values
    inputs_only: tuple[str, ...] = ()  # inputs of the network only, never scored ("given")


def one_path(data: str | Path | Sequence[Path]) -> Path | None:
    """``data`` as the one file or folder it names, or None where it is a sequence of files."""
    return Path(data) if isinstance(data, (str, os.PathLike)) else None


def load_tables(data: str | Path | Sequence[Path], options: DataOptions) -> list[Table]:
    """Read and clean every CSV; all must share the feature columns of the first.

    Labels come from the label column or, when ``options.labels`` names a labels file (or
    ``data`` is a NAB root), from its windows alone: the label column is then not read (as
    ``vigil eval`` does not), only kept out of the features.
    """
    labels = read_labels(options.labels) if options.labels else None
    root: Path | None = None
    if isinstance(data, (str, os.PathLike)):  # one file or folder
        data_path = Path(data)
        if labels is None and (nab := nab_labels(data_path)):
            data_path, labels = nab
        root = data_path if data_path.is_dir() else None
        files = csv_files(data_path)
    else:
        files = list(data)
    if labels is not None:  # a file the labels do not name is found before any is read
        labels.check_files(files, root)
    tables: list[Table] = []
    features = options.features
    for path in files:
        try:
            table = read_table(path, features=features, time_column=options.time_column,
                               label_column=options.label_column, excluded=options.excluded,
                               decimal=options.decimal, strict_labels=labels is None)
        except MissingColumns:
            if options.features is not None or not tables:
                raise
            # the features are the first file's: say so, not "the model needs" (a review)
            own = read_table(path, time_column=options.time_column,
                             label_column=options.label_column, excluded=options.excluded,
                             decimal=options.decimal, strict_labels=False).features
            first = tables[0].features  # the features, as none were named
            lacking = [c for c in first if c not in own]
            raise ValueError(f"{path} lacks the columns {lacking} of {tables[0].source}, the "
                             f"first file (it has {list(own)}, the first {list(first)}): the "
                             f"files of one training run must share their columns; train one "
                             f"model per set of columns (a folder each), or name columns every "
                             f"file has with --features") from None
        if options.features is None and tables:
            first = tables[0].features  # the features, as none were named
            skip = {*first, table.time_column, table.label_column, *options.excluded, ""}
            extra = [c for c in table.header if c not in skip]
            if extra:
                raise ValueError(f"{table.source}: columns {extra} are not in "
                                 f"{tables[0].source}'s; every file needs the same feature "
                                 f"columns (or name the features with --features "
                                 f"{','.join(first)})")
        if options.features is None:
            _warn_unnamed_columns(path, table)
            _warn_counter_columns(table)
        features = features or table.features
        _check_time_order(table)
        values = fill_gaps(table.values, options.max_gap, table.source, table.features)
        flags = table.labels
        if labels is not None:
            flags = labels.rows(table.times, path, root)
            if table.labels is not None and (table.labels & ~flags).any():
                log.warning("%s: its column %r marks %d row(s) the labels %s do not; with "
                            "--labels that column is not read, so they are trained on as normal "
                            "(label them in the labels file, or train without --labels)",
                            table.source, table.label_column, int((table.labels & ~flags).sum()),
                            labels.source)
        tables.append(Table(table.source, table.features, values, table.times, flags,
                            table.time_column, table.label_column, table.header))
    return tables


COUNTER_ROWS = 10_000  # a column's first rows looked at for a row counter


def _warn_counter_columns(table: Table) -> None:
    """Warn of a feature column that rises by the same step on every row (SMD's ``t``): a row
    number or a time, read as a reading, teaches the model its training range, and a device's
    later rows, beyond it, alarm on it alone (every window of SMD's next rows did)."""
    values = table.values[:COUNTER_ROWS]
    if len(values) < 10:
        return
    steps = np.diff(values.astype(np.float64), axis=0)
    for j, feature in enumerate(table.features):
        step = float(np.median(steps[:, j]))
        # equal steps, to float32's rounding of the readings (a 10 Hz logger's 0.1 s)
        if not (np.isfinite(step) and step != 0
                and np.allclose(steps[:, j], step, rtol=1e-3, atol=0)):
            continue
        if step > 0:
            log.warning("%s: column %r rises by %g on every row, as a row number or a time "
                        "does; read as a reading, later rows beyond its training range alarm on "
                        "it alone: give it as the time column (--time-column %s), or leave it "
                        "out (--features)", table.source, feature, step, feature)
        else:
            log.warning("%s: column %r falls by %g on every row, as a countdown does; read as a "
                        "reading, later rows beyond its training range alarm on it alone: leave "
                        "it out (--features)", table.source, feature, -step)


def _warn_unnamed_columns(path: Path, table: Table, lines: int = 200) -> None:
    """Warn about columns with no name in the header that hold readings in the first ``lines``
    data lines: they are not read as features (a trailing separator's empty column is fine)."""
    unnamed = [i for i, name in enumerate(table.header) if not name]
    if not unnamed:
        return
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        header = handle.readline()
        separator = detect_separator(header)
        holding: set[int] = set()
        for _, line in zip(range(lines), handle):
            cells = split_cells(line.rstrip("\r\n"), separator)
            holding.update(i for i in unnamed if i < len(cells) and cells[i].strip())
    if holding:
        numbers = ", ".join(str(i + 1) for i in sorted(holding))
        log.warning("%s: column(s) %s have no name in the header but hold values; they are not "
                    "read as features (a spreadsheet's index column is fine to leave out; "
                    "otherwise name them in the header line)", table.source, numbers)




# more than one neighbouring step in this many going back in time is no clock set back (a
# daylight-saving change steps back once a year) but rows out of order: refused
UNSORTED_SHARE = 10


def _check_time_order(table: Table) -> None:
    """ValueError naming the file when its rows run back in time (a newest-first export:
    windows and the chronological split would read time reversed) or are out of order throughout
    (more than one step in ``UNSORTED_SHARE``: shuffled, or files joined out of order); a warning
    when a few are (a clock set back an hour, as a daylight-saving change does to local times).
    Compares every pair of neighbouring rows."""
    times = table.times
    if times is None or len(times) < 3:
        return
    keys = [time_key(t) if t else None for t in times]
    unread = [i for i, (t, k) in enumerate(zip(times, keys)) if t and k is None]
    if unread:  # as `vigil score` warns of the same file
        log.warning("%s: %d of the %d times in column %r are neither numbers nor ISO 8601 (the "
                    "first: data row %d, %r): their order and gaps are not checked, so a file "
                    "sorted newest first or with gaps trains as it stands; write them in ISO 8601 "
                    "(2024-03-31 21:19:00, an optional zone such as +01:00)",
                    table.source, len(unread), len(times), table.time_column, unread[0] + 1,
                    times[unread[0]][:40])
    kind = np.array([-1 if k is None else k[0] for k in keys])
    value = np.array([np.nan if k is None else k[1] for k in keys], dtype=np.float64)
    # rows of the same time (several readings a second) say nothing of order
    pairs = (kind[:-1] >= 0) & (kind[:-1] == kind[1:]) & (value[:-1] != value[1:])
    compared = int(pairs.sum())
    steps_back = np.flatnonzero(pairs & (value[1:] < value[:-1]))
    backward = len(steps_back)
    if not backward:
        return
    first = int(steps_back[0])
    if backward * 10 > compared * 9:  # (nearly) every step: written newest first
        raise ValueError(
            f"{table.source}: its rows run back in time (column {table.time_column!r} falls "
            f"between {backward} of {compared} neighbouring rows compared, from data row "
            f"{first + 1}: {times[first]!r} then {times[first + 1]!r}): windows and "
            "the chronological split need the oldest row first; sort the file oldest first "
            "(e.g. keep the header line and reverse the rest, ending the last line first: "
            "{ head -n 1 F; tail -n +2 F | sed '$a\\' | tac; } > oldest-first.csv)")
    if backward * UNSORTED_SHARE > compared:  # no clock step: rows out of order throughout
        numeric = "n" if kind[first] == 0 else ""
        raise ValueError(
            f"{table.source}: its rows are not in time order (column {table.time_column!r} falls "
            f"between {backward} of {compared} neighbouring rows compared, the first after data "
            f"row {first + 1}): windows would join readings from anywhere in the record; sort "
            f"the file by time first (times in its first column: "
            f"{{ head -n 1 F; tail -n +2 F | sort -t, -k1,1{numeric}; }} > sorted.csv)")
    log.warning("%s: %d of %d neighbouring rows compared step back in time in column %r (the "
                "first after data row %d); windows take rows in file order, so sort the file "
                "oldest first if they are misplaced", table.source, backward, compared,
                table.time_column, first + 1)


# A reading at least this large, far from the rest of its column, is taken for a sentinel code
# ("no value": 1e20, float32's limit) rather than a reading. Spread alone cannot tell one: on
# the real sets, NAB's network traffic spikes lie 2e5 robust spreads from their median, and a
# nearly binary SMD column 1e5 (every file of SKAB, NAB and SMD and the ten ECG records read
# whole were scanned on 2026-12-05; none fires).
SENTINEL_MAGNITUDE = 1e15
SENTINEL_SPREADS = 1e3
# codes that loggers and exports write for "no value": taken for sentinels as well when they lie
# as far from the rest of the column (none fires on the real sets, training parts or whole
# files, scanned on 2026-12-05)
SENTINEL_CODES = (-9999.0, -99999.0, -999999.0, 9999.0, 99999.0, 999999.0, -32768.0, 32767.0,
                  65535.0)


def sentinel_readings(rows: np.ndarray, features: Sequence[str]) -> list[str]:
    """One line per feature whose normal training rows hold readings of a sentinel's size, or a
    common sentinel code (-9999, 65535, ...), far from the rest (they set its mean and spread, so
    the model hardly sees the feature)."""
    found = []
    for j, name in enumerate(features):
        column = rows[:, j].astype(np.float64)
        column = column[np.isfinite(column)]
        huge = (np.abs(column) >= SENTINEL_MAGNITUDE) | np.isin(column, SENTINEL_CODES)
        if not huge.any() or huge.all():
            continue
        rest = column[~huge]
        median = float(np.median(rest))
        spread = max(1.4826 * float(np.median(np.abs(rest - median))), float(np.std(rest)), 1e-12)
        far = huge & (np.abs(column - median) > SENTINEL_SPREADS * spread)
        if far.any():
            worst = column[far][np.argmax(np.abs(column[far] - median))]
            found.append(f"{name!r}: {int(far.sum())} of {len(column)} readings of {worst:g} or "
                         f"the like, where the others lie within {rest.min():g} .. {rest.max():g}")
    return found


# A column whose spread is set by a few readings (at most one in SPREAD_FEW_SHARE of its normal
# training rows, the farthest from its median): its standard deviation with them over the one
# without them. A review typed one SKAB temperature 75.3 as 7500: the spread rose 270-fold and a
# +25 degree fault scored below the threshold. Scanned on the training parts of every file of
# SKAB (280 columns: at most 1.0), NAB (55: at most 2.3), SMD (58: 47.7 and 24.8, two bursts to 1.0
# in machine-1-2's unlabeled train half, at most 4.5 otherwise) and the ten ECG records (20: at
# most 1.1) on 2026-12-07: above 30 it is said for one column of the four sets' 413.
SPREAD_FEW_SHARE = 0.001
SPREAD_FEW_FACTOR = 30.0


def spread_setting_readings(rows: np.ndarray, features: Sequence[str]) -> list[str]:
    """One line per feature whose normal training spread is set by a few readings far from the
    rest (a mistyped value, a fault in the training part): the model then hardly sees the
    column's normal changes, nor a fault smaller than those readings."""
    found = []
    for j, name in enumerate(features):
        column = rows[:, j].astype(np.float64)
        column = column[np.isfinite(column)]
        if len(column) < 20:
            continue
        few = max(1, int(SPREAD_FEW_SHARE * len(column)))
        distance = np.abs(column - np.median(column))
        order = np.argsort(distance, kind="stable")
        rest = column[order[:-few]]
        if np.unique(rest).size <= 2 or not rest.std() > 0:  # binary or constant: said elsewhere
            continue
        factor = column.std() / rest.std()
        if factor > SPREAD_FEW_FACTOR:
            worst = column[order[-1]]
            # those far beyond the rest (3 of its spreads): one typo in 10,000 rows is one, not
            # the 10 left out of the spread
            far = distance > distance[order[:-few]].max() + 3 * rest.std()
            if not far.any():
                far = distance >= distance[order[-1]]
            others = column[~far]  # the readings named are these far ones; the others all else
            found.append(f"{name!r}: {int(far.sum())} of {len(column)} reading(s), as far as "
                         f"{worst:g}, set its spread ({column.std():.4g}; {others.std():.4g} "
                         f"without them, {column.std() / others.std():.0f}x less), where the "
                         f"others lie within {others.min():g} .. {others.max():g}")
    return found


HELD_OUT_CELLS_NAMED = 3


def training_rows(table: Table, validation_fraction: float) -> int:
    """How many of a file's first rows are its training part (the rest is held out)."""
    return int(round(len(table) * (1 - validation_fraction)))


TIME_STEP_PAIRS = 100_000  # neighbouring training rows per file whose time step is measured
MIN_TIME_STEPS = 10        # fewer measured steps say nothing of the record's rhythm
# A step is a gap when longer than max_gap + GAP_SLACK typical steps (as many rows missing as a
# gap of cells that would be filled, plus half a step of clock jitter) and than GAP_FACTOR times
# the GAP_QUANTILE of the training steps: a logger that skips often skips in training too, and
# that is its normal. Chosen on NAB (each file's probationary 15 % as training) and SKAB (its
# first 25 %), with windows of 48: the 99th percentile alone flagged 1.28 % of NAB's windows
# (144 gaps; over 10 % of the windows in 8 files), this rule 0.49 % (38 gaps, 2 files); SKAB's 11
# gaps of 54-247 s at 1 Hz are flagged by both (docs/quality.md, "Gaps in time").
GAP_QUANTILE = 0.999
GAP_FACTOR = 1.5
GAP_SLACK = 1.5


def time_step(tables: Sequence[Table], splits: Sequence[int], max_gap: int) -> dict | None:
    """The training rows' typical time step and the step beyond which the runtime flags a gap
    in the record (``TimeStepSpec``), or None where the training rows have no readable, rising
    timestamps. Steps of 0 (several rows a time) and back in time are not counted."""
    steps: dict[int, list[float]] = {0: [], 1: []}  # by key kind: numbers, ISO 8601
    still = 0  # neighbouring rows of one time
    for table, split in zip(tables, splits):
        times = table.times
        if times is None or split < 2:
            continue
        pairs = np.unique(np.linspace(0, split - 2, min(TIME_STEP_PAIRS, split - 1)).astype(int))
        for i in pairs:
            a, b = time_key(times[i]), time_key(times[i + 1])
            if a is not None and b is not None and a[0] == b[0] and b[1] > a[1]:
                steps[a[0]].append(b[1] - a[1])
            still += a is not None and a == b
    kind = max(steps, key=lambda k: len(steps[k]))
    found = np.asarray(steps[kind])
    if len(found) < MIN_TIME_STEPS:
        if still >= MIN_TIME_STEPS:  # readable times that never advance: a frozen clock
            log.warning("the training rows' times do not advance (%d neighbouring rows share "
                        "their time, %d step forward): is the logger's clock stuck? The model "
                        "records no time step, so scoring checks no gap or order in time; fix "
                        "the time column, or name another (--time-column)", still, len(found))
        return None
    typical = float(np.median(found))
    limit = max((max_gap + GAP_SLACK) * typical,
                GAP_FACTOR * float(np.quantile(found, GAP_QUANTILE)))
    return {"numeric": kind == 0, "typical": typical, "limit": limit}


def steady_runs(tables: Sequence[Table], splits: Sequence[int],
                features: Sequence[str]) -> dict[str, int]:
    """For each of ``features``, the longest run of one unchanged reading in the files' training
    parts (their first ``splits`` rows), labeled and missing rows breaking a run; the runtime
    flags a reading that stays unchanged far longer than this (``STEADY_FACTOR`` in its
    ``streaming``), which a frozen sensor does at a level the score finds normal."""
    if not tables:
        return {}
    columns = [tables[0].features.index(f) for f in features]
    longest = np.ones(len(columns), dtype=np.int64)
    for table, split in zip(tables, splits):
        # as the runtime compares them: float32 (finer steps collapse there)
        values = table.values[:split, columns].astype(np.float32)
        if table.labels is not None:
            values[np.asarray(table.labels[:split], dtype=bool)] = np.nan  # NaN equals nothing
        if len(values) < 2:
            continue
        changed = values[1:] != values[:-1]  # (rows - 1, columns)
        for k in range(len(columns)):
            ends = np.flatnonzero(changed[:, k])
            bounds = np.concatenate([[-1], ends, [len(changed)]])
            longest[k] = max(longest[k], int(np.diff(bounds).max()))
    return {f: int(n) for f, n in zip(features, longest)}


def _check_held_out_readings(tables: Sequence[Table], train_rows: np.ndarray,
                             validation_fraction: float, roles: Sequence[str]) -> None:
    """Held-out normal rows set the score's statistics and the threshold: a reading far beyond
    every training row (a sentinel code such as -9999 left in the data) inflates them until
    nothing alarms. A warning names such cells (``SENTINEL_SPREADS`` spreads of the training
    rows from their median); one of a sentinel's size (``SENTINEL_MAGNITUDE``), whose squared
    distances overflow, is refused before training. Only scored features are warned about:
    a status or constant column (``roles``) changes by whole steps."""
    finite = np.where(np.isfinite(train_rows), train_rows, np.nan)
    median = np.nanmedian(finite, axis=0)
    spread = np.maximum(np.maximum(1.4826 * np.nanmedian(np.abs(finite - median), axis=0),
                                   np.nanstd(finite, axis=0)), 1e-12)
    named: list[str] = []
    far_cells = 0
    for table in tables:
        split = training_rows(table, validation_fraction)
        held = table.values[split:].astype(np.float64)
        if table.labels is not None:  # a labeled anomaly may lie anywhere
            held = np.where(table.labels[split:, None], np.nan, held)
        with np.errstate(invalid="ignore"):
            far = np.abs(held - median) > SENTINEL_SPREADS * spread
        huge = far & (np.abs(held) >= SENTINEL_MAGNITUDE)
        if huge.any():
            row, column = np.argwhere(huge)[0]
            raise ValueError(
                f"{table.source}, data row {split + row + 1}, column "
                f"{table.features[column]!r}: {held[row, column]:g} in the held-out rows (the "
                f"last {validation_fraction:g} of the file), where the training rows lie within "
                f"{np.nanmin(finite[:, column]):g} .. {np.nanmax(finite[:, column]):g}: a sentinel "
                "code ('no value')? It would set the threshold's statistics; blank those cells "
                "(they are then filled as gaps) or drop the rows, and train again")
        far &= np.array([role == SCORED for role in roles])
        far_cells += int(far.sum())
        for row, column in np.argwhere(far)[:HELD_OUT_CELLS_NAMED - len(named)]:
            named.append(f"{Path(table.source).name} data row {split + row + 1} column "
                         f"{table.features[column]!r}: {held[row, column]:g}")
    if named:
        log.warning("%d held-out reading(s) lie more than %g spreads of the training rows from "
                    "their median (%s%s); held-out rows set the score's statistics and the "
                    "threshold, so a sentinel code ('no value', e.g. -9999) left there can keep "
                    "every alarm off: blank such cells (they are filled as gaps) or drop the rows",
                    far_cells, SENTINEL_SPREADS, "; ".join(named),
                    "; ..." if far_cells > len(named) else "")


def file_records(tables: Sequence[Table], data: str | Path | Sequence[Path]) -> list[dict]:
    """Each training file as the artifact records it: its path relative to the data folder
    (``valve1/0.csv`` and ``valve2/0.csv`` told apart; the name of a file given alone), sha256,
    rows, and the rows its labels mark, which were never trained on."""
    root = None
    data_path = one_path(data)
    if data_path is not None and data_path.is_dir():
        root = nab[0] if (nab := nab_root(data_path)) is not None else data_path
    records = []
    for table in tables:
        path = Path(table.source)
        name = (relative_path(path, root) if root else None) or path.name
        records.append({"name": name, "sha256": sha256_of(path), "rows": len(table),
                        "labeled_rows": int(table.labels.sum()) if table.labels is not None
                        else 0})
    return records


def labels_record(data: str | Path | Sequence[Path], options: DataOptions,
                  tables: Sequence[Table]) -> dict:
    """Where the rows left out of training as anomalous were named: a labels file (its path
    and sha256), a NAB root's own, the data's label column, or nowhere."""
    data_path = one_path(data)
    path = (Path(options.labels) if options.labels
            else nab[1] if data_path is not None
            and (nab := nab_root(data_path)) is not None else None)
    labeled = sum(int(t.labels.sum()) for t in tables if t.labels is not None)
    if path is not None:  # absolute: read on another machine, a relative path named nothing
        return {"from": "labels file", "path": os.path.abspath(path), "sha256": sha256_of(path),
                "labeled_rows": labeled}
    column = next((t.label_column for t in tables if t.label_column), None)
    return ({"from": "label column", "column": column, "labeled_rows": labeled} if column
            else {"from": "none", "labeled_rows": 0})


def labeled_tables(data: str | Path | Sequence[Path], options: DataOptions) -> list[Table]:
    """``load_tables``, refusing a ``label_column`` that no file has (a typo would leave the
    real label column among the features). A labels file's windows that fall on none of a
    file's rows are warned of per file, where they are matched (``Labels.rows``)."""
    tables = load_tables(data, options)
    if (options.label_column not in (None, DEFAULT_LABEL_COLUMN)
            and all(t.label_column is None for t in tables)):
        raise ValueError(f"`label_column` {options.label_column!r} is in none of the data's "
                         f"headers (the first: {list(tables[0].header)}); name one of its columns, "
                         f"or leave it out")
    return tables


def check_normal_rows(rows: np.ndarray, tables: Sequence[Table], data) -> None:
    """Warn of sentinel codes among the normal training rows; refuse rows that are all
    constant (nothing to learn)."""
    sentinels = sentinel_readings(rows, tables[0].features)
    for line in sentinels:
        log.warning("training rows of %s: %s: a sentinel code ('no value') rather than a reading? "
                    "It sets the column's mean and spread, so the model hardly sees the column; "
                    "blank those cells (they are then filled as gaps) or drop the rows, and train "
                    "again", data, line)
    named = {line.split(":")[0] for line in sentinels}
    for line in spread_setting_readings(rows, tables[0].features):
        if line.split(":")[0] in named:
            continue
        log.warning("training rows of %s: %s: a mistyped value or a fault in the training data? "
                    "The model then hardly sees the column's normal changes, nor a fault smaller "
                    "than those readings; correct or drop those rows and train again (or, if "
                    "such readings are normal, train on more data that holds them)", data, line)
    if all(np.ptp(column) == 0 for column in rows.T):
        raise ValueError(f"every feature is constant in the normal training rows "
                         f"({', '.join(f'{f}={v:g}' for f, v in zip(tables[0].features, rows[0]))}"
                         f"): there is nothing to learn, and any change would alarm; train on "
                         f"rows where the readings vary (or name varying columns with --features)")


def _say_unchecked_labels(tables: list[Table], fraction: float, held_out: np.ndarray) -> None:
    """Warn when labeled rows lie only in the training parts: kept out of training, but no
    held-out window ends on one, so the threshold is checked against none of them."""
    if held_out.any():
        return
    labeled = sum(int(t.labels[:training_rows(t, fraction)].sum()) for t in tables
                  if t.labels is not None)
    if labeled:
        log.warning("%d labeled anomalous row(s) lie in the training part of the data (the first "
                    "%.0f %% of each file), none in the held-out part: they are kept out of "
                    "training, but the threshold is not checked against them (the summary's "
                    "validation is null); `vigil eval` on labeled data the model has not seen "
                    "says what it catches, or a larger --validation-fraction holds them out",
                    labeled, 100 * (1 - fraction))


def prepare(data: str | Path | Sequence[Path], options: DataOptions,
            scored_rows: int | None = None) -> SensorData:
    """Split each file chronologically, fit normalization on normal training rows, cut windows.

    Windows never cross file boundaries; training windows contain no labeled anomaly. A
    validation window may begin in the training part for context, but its last ``scored_rows``
    rows (those its score reads; None: the whole window) all lie in the validation part, so no
    validation score reads a row the networks were trained to predict.
    """
    if not 0 < options.validation_fraction < 1:
        raise ValueError(f"`validation_fraction` must be in (0, 1); received "
                         f"{options.validation_fraction}")
    tables = labeled_tables(data, options)
    check_given_names(tables[0], options)
    w, stride = options.window, options.stride
    if scored_rows is not None and not 1 <= scored_rows <= w:
        raise ValueError(f"`scored_rows` must be in [1, window={w}]; received {scored_rows}")
    scored = w if scored_rows is None else scored_rows
    train_parts, val_parts, val_labels, val_clean, normal_rows = [], [], [], [], []
    unvalidated: list[str] = []  # files too short after the split for a held-out window
    for table in tables:
        labels = table.labels if table.labels is not None else np.zeros(len(table), dtype=bool)
        split = training_rows(table, options.validation_fraction)
        normal_rows.append(table.values[:split][~labels[:split]])
        # Windows are views of the float32 rows until the memory they need is known.
        values = table.values.astype(np.float32)
        clean = ~window_any_labels(labels[:split], w, stride)
        train_parts.append((sliding_windows(values[:split], w, stride), np.flatnonzero(clean)))
        # A validation window may start in the training part (its context), never its scored rows.
        start = max(0, split - (w - scored))
        val_parts.append(sliding_windows(values[start:], w, stride))
        if not len(val_parts[-1]):
            unvalidated.append(f"{Path(table.source).name} ({len(table) - split} rows after it)")
        val_labels.append(window_last_labels(labels[start:], w, stride))
        val_clean.append(~window_any_labels(labels[start:], w, stride))
    features = tables[0].values.shape[1]
    count = sum(len(kept) for _, kept in train_parts)
    check_memory(count, sum(len(v) for v in val_parts), w, features, stride,
                 max(1, scored // 2))  # the longest stride train_sensor.longest_stride allows
    train = np.empty((count, w, features), dtype=np.float32)
    filled = 0
    for windows, kept in train_parts:
        for chunk in range(0, len(kept), COPY_CHUNK):  # in chunks: no whole-file temporary
            rows = kept[chunk:chunk + COPY_CHUNK]
            train[filled:filled + len(rows)] = windows[rows]
            filled += len(rows)
    validation = np.concatenate(val_parts)
    if len(train) < 8:
        splits = [training_rows(t, options.validation_fraction) for t in tables]
        all_windows = sum(len(windows) for windows, _ in train_parts)
        if all_windows - len(train) > len(train):  # most windows touch a labeled row
            labeled = sum(int(t.labels[:split].sum()) for t, split in zip(tables, splits)
                          if t.labels is not None)
            fix = (f"{labeled} of the {sum(splits)} training rows are labeled anomalous, and a "
                   "window with one is never trained on: check the label column (1 or a word "
                   "such as 'anomaly' marks an anomaly; --label-column names another) or the "
                   "labels file")
        elif stride > 1 and max(splits) >= w:
            fix = f"use more rows, or a smaller `stride` (now {stride})"
        elif options.validation_fraction > 0.5:
            fix = (f"`validation_fraction` {options.validation_fraction:g} holds back all but "
                   f"{sum(splits)} of the rows: lower it (default 0.25), or use more rows")
        else:  # the largest window that gives 8 from the longest training part, stride aside
            longest = max(splits)
            largest = longest - 7 * stride
            fix = (f"the longest file's training part, its first "
                   f"{1 - options.validation_fraction:.0%}, has {longest} rows; use more rows"
                   + (f", or a `window` of at most {largest}" if largest >= 2 else ""))
        raise ValueError(f"training needs at least 8 normal windows of {w} rows; the data gives "
                         f"{len(train)} ({fix})")
    if len(validation) < 4:
        raise ValueError(f"validation needs at least 4 windows of {w} rows whose last {scored} "
                         f"(the rows a score reads) lie after each file's training part; the data "
                         f"gives {len(validation)}: a file gives one per row after its training "
                         f"part beyond the first {scored - 1} (raise `validation_fraction` or add "
                         f"rows)")
    if unvalidated:
        log.warning("%d file(s) give no held-out window (a window's last %d rows, which its score "
                    "reads, must lie after the file's training part): %s", len(unvalidated),
                    scored, ", ".join(unvalidated[:3]) + (", ..." if len(unvalidated) > 3 else ""))
    _say_unchecked_labels(tables, options.validation_fraction, np.concatenate(val_labels))
    rows = np.concatenate(normal_rows)
    check_normal_rows(rows, tables, data)
    mean, std = standardization(rows, options.relative_std_floor)
    given = bool(options.scored or options.inputs_only)  # then given_roles falls back itself
    roles = given_roles(feature_roles(rows, mean, fallback=not given), tables[0].features,
                        options)
    _check_held_out_readings(tables, rows, options.validation_fraction, roles)
    scales = (heavy_tail_scales(rows, roles) if options.compress_heavy_tails
              else np.zeros(len(mean)))
    model_mean, model_std = mean, std
    if scales.any():
        model_mean, model_std = standardization(compress(rows, scales), options.relative_std_floor)
    first = tables[0]
    return SensorData(
        features=first.features,
        train=train,
        validation=validation,
        validation_labels=np.concatenate(val_labels),
        validation_clean=np.concatenate(val_clean),
        mean=mean,
        std=std,
        files=tuple(file_records(tables, data)),
        labels=labels_record(data, options, tables),
        time_column=first.time_column,
        label_column=first.label_column,
        train_rows=rows,
        roles=roles,
        compression=scales,
        model_mean=model_mean,
        model_std=model_std,
        time_step=time_step(tables, [training_rows(t, options.validation_fraction)
                                     for t in tables], options.max_gap),
        steady_runs=steady_runs(tables, [training_rows(t, options.validation_fraction)
                                         for t in tables],
                                [f for f, role in zip(first.features, roles) if role == SCORED]),
    )


# Training holds the windows about three times over (as read, normalized, and the normal
# validation windows' copies) besides its networks.
WINDOW_COPIES = 3
COPY_CHUNK = 4096


def available_memory() -> int | None:
    """Bytes of memory a new allocation can have now: Linux's MemAvailable, or the cgroup's
    (container's) remaining limit when lower; None where neither can be read."""
    found = []
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_memory(train: int, validation: int, window: int, features: int, stride: int,
                 longest: int | None = None) -> None:
    """Refuse, before anything is allocated or written, windows that would not fit in memory;
    the stride it suggests is at most ``longest``, the longest the model may use (None:
    the window), since the model scores a window every ``stride`` rows."""
    needed = (train + validation) * window * features * 4 * WINDOW_COPIES
    available = available_memory()
    if available is None or needed <= available:
        return
    wider = stride * int(np.ceil(needed / (0.9 * available)))  # a margin for the windows' ends
    fix = (f"train on fewer rows, or take a window every {wider} rows (`vigil train sensor DATA "
           f"-o MODEL.keras --stride {wider}`, `DataOptions(stride={wider})`; the model then "
           f"scores a window every {wider} rows)")
    if wider > (longest or window):
        fix = (f"train on fewer rows (a window every {wider} rows, `--stride {wider}`, would fit "
               f"but is longer than the {longest or window} rows between decisions the model may "
               f"have)")
    raise ValueError(
        f"the data gives {train:,} training and {validation:,} validation windows of {window} x "
        f"{features} values, about {needed / 1e9:.1f} GB to train on, and this machine has "
        f"{available / 1e9:.1f} GB available: {fix}")


def window_any_labels(labels: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Per window: whether any of its rows is labeled."""
    if len(labels) < window:
        return np.zeros(0, dtype=bool)
    return np.any(sliding_windows(labels[:, None], window, stride)[:, :, 0], axis=1)


def window_last_labels(labels: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Per window: the label of its last row (the row its score is reported on)."""
    if len(labels) < window:
        return np.zeros(0, dtype=bool)
    return sliding_windows(labels[:, None], window, stride)[:, -1, 0].copy()
