"""What every detector shares: its artifact, session, threshold and decisions."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import Artifact, open_artifact, scoring_identity
from .spec import ScoreStats
from .thresholds import finite_number, over_threshold


class Detector:
    """A loaded artifact that scores items (sensor windows, camera frames): ``score`` gives one
    float per item (higher is more anomalous), ``predict`` compares it with ``threshold``, which
    may be changed without re-exporting the model."""

    def __init__(self, artifact: Artifact, max_batch: int) -> None:
        if not isinstance(artifact, Artifact):
            raise TypeError(f"`artifact` must be a loaded artifact; load a model with "
                            f"vigil.load('MODEL.onnx'), which returns the detector; received "
                            f"{type(artifact).__name__} {str(artifact)[:80]!r}")
        self._artifact = artifact
        self._session = artifact.session
        self.spec = artifact.spec  # what the artifact says (SensorSpec or ImageSpec)
        self._threshold = float(artifact.spec.threshold.value)
        # A graph that quantizes activations per call (0.1 artifacts' DynamicQuantizeLinear)
        # scores one item per run, so that no item's score depends on its neighbours.
        self._max_batch = max_batch if artifact.batch_independent else 1

    def __reduce__(self):
        """Pickled (for multiprocessing, joblib, Dask) as its file's path and sha256, since an
        onnxruntime session cannot be: unpickling loads the file again, refuses it if it changed,
        and keeps this detector's providers, threads and thresholds."""
        options = self._session.get_session_options()
        return (_reloaded, (type(self), str(self.path.resolve()), self.sha256, self.providers,
                            options.intra_op_num_threads or None, self._settings()))

    def _settings(self) -> dict:
        """What a user may have changed since loading, restored by unpickling."""
        return {"threshold": self._threshold}

    @property
    def path(self) -> Path:
        return self._artifact.path

    @property
    def sha256(self) -> str:
        return self._artifact.sha256

    @functools.cached_property
    def scoring_identity(self) -> str | None:
        """What this artifact shares with every other export of the same .keras with the same
        options and versions (``artifact.scoring_identity``), whose scores are this one's; None
        for artifacts that do not record their .keras."""
        return scoring_identity(self._artifact.metadata)

    @property
    def metadata(self) -> dict:
        """The artifact's ``vigil`` metadata entry as written (a copy; its ``content_sha256``
        too, where `vigil export` recorded one and loading checked it)."""
        return copy.deepcopy(dict(self._artifact.metadata or {}))

    @property
    def batch_independent(self) -> bool:
        """Whether the graph scores each item alone in a batch; False for graphs that quantize
        activations per run (0.1's INT8 artifacts), which this detector feeds one item at a
        time and a server must not batch."""
        return self._artifact.batch_independent

    @property
    def providers(self) -> list[str]:
        return self._session.get_providers()

    @property
    def graph_inputs(self) -> list:
        """The graph's inputs as onnxruntime describes them (``name``, ``type``, ``shape``)."""
        return list(self._session.get_inputs())

    @property
    def graph_outputs(self) -> list:
        """The graph's outputs as onnxruntime describes them (``name``, ``type``, ``shape``)."""
        return list(self._session.get_outputs())

    @property
    def max_batch(self) -> int:
        """The most items one model run scores: a larger batch is several runs (1 for a graph
        whose scores would depend on the batch, see ``BATCH_DEPENDENT_OPS``)."""
        return self._max_batch

    @property
    def score_stats(self) -> ScoreStats:
        return self.spec.score_stats

    @property
    def threshold(self) -> float:
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        self._threshold = finite_number(value, "threshold")

    def score(self, items: Any) -> np.ndarray:
        """One float per item (a sensor window, a camera frame), higher more anomalous; each
        kind of detector says which forms of items it reads."""
        raise NotImplementedError

    def decision_function(self, items: Any) -> np.ndarray:
        """The scores, under the name PyOD users know (higher is more anomalous)."""
        return self.score(items)

    def predict(self, items: Any) -> np.ndarray:
        """True where an item's score is above ``threshold`` (a score that is no number too).
        Booleans, not PyOD's 0/1 integers: they index (``x[predict(x)]``); ``.astype(int)``
        gives PyOD's labels."""
        return over_threshold(self.score(items), self._threshold)


def _reloaded(kind: type, path: str, sha256: str, providers: list[str], threads: int | None,
              settings: dict) -> Detector:
    """A pickled detector, loaded again from its file (``Detector.__reduce__``)."""
    detector = kind(open_artifact(path, providers, threads, sha256))
    for name, value in settings.items():
        setattr(detector, name, value)
    return detector
