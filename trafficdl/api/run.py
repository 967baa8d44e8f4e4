"""The pipeline as functions: synthesize → extract → train / evaluate, for notebooks.

Each function takes the same settings as its command, by the field names of
the config dataclasses (ExtractConfig, TrainConfig, DistConfig), so one name
means one thing everywhere and a new config field needs no change here.
`run_training` turns (TrainConfig, DistConfig, preset) into a centralized or
distributed run the way `trafficdl train` does (same presets, run lock and
launcher).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trafficdl.config import CONVERGING, DistConfig, TrainConfig
from trafficdl.errors import TrafficdlError

if TYPE_CHECKING:
    from trafficdl.api.classifier import Classifier
    from trafficdl.api.data import TrafficDataset


def synthesize(
    out: str | Path, apps: int = 5, flows_per_app: int = 200, captures_per_app: int = 2,
    seed: int = 0,
) -> list[Path]:  # fmt: skip
    """Write deterministic synthetic app captures (one folder per app); returns their paths."""
    from trafficdl import synth

    return synth.synthesize(out, apps=apps, flows_per_app=flows_per_app, seed=seed,
                      captures_per_app=captures_per_app)  # fmt: skip


def extract(
    inputs: str | Path | Sequence[str | Path],
    out: str | Path,
    *,
    labels: str | Path | dict[str, str] | None = None,
    jobs: int = 1,
    strict: bool = False,
    progress: bool = False,
    **settings: Any,
) -> TrafficDataset:
    """Cut captures into traffic objects and write a dataset; returns it opened.

    `inputs`: capture files or folders (label = the parent folder's name,
    unless `labels` maps file → label or names a `file,label` CSV).
    `settings`: ExtractConfig fields (segmentation="biflow"|"flow"|"burst",
    payload_bytes=784, packets=20, idle_timeout=120.0, ...). The extraction
    report is on the result's `.report`.
    """
    from trafficdl.api.data import open_dataset
    from trafficdl.capture import ExtractConfig, extract_dataset

    cfg = ExtractConfig(**_known(ExtractConfig, settings, "extract"))
    paths = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    report = extract_dataset(paths, out, cfg, labels=labels, jobs=jobs, strict=strict,
                             progress=progress)  # fmt: skip
    ds = open_dataset(out)
    ds.report = report  # type: ignore[attr-defined]
    return ds


@dataclass
class TrainResult:
    """What a training run produced: test figures, run facts and the checkpoint's path."""

    metrics: dict[str, Any]
    run: dict[str, Any]
    checkpoint: Path
    out: Path

    def classifier(self, device: str = "cpu") -> Classifier:
        """The trained model, loaded from the checkpoint."""
        from trafficdl.api.classifier import load_classifier

        return load_classifier(self.checkpoint, device=device)


def run_training(
    dataset: str | Path,
    cfg: TrainConfig,
    dist: DistConfig,
    out: str | Path,
    *,
    preset: str = "none",
    reporter: Any = None,
    resume: bool = False,
    progress: bool = False,
    **launch: Any,
) -> Any:
    """Centralized (dist.workers == 0) or local master + N workers; the run's result dict.

    The one implementation behind `trafficdl train` and `trafficdl.train`:
    `launch` goes to the local launcher (linger, metrics_ports, metrics_host).
    """
    from trafficdl.study import presets

    if dist.workers >= 1:
        cfg, dist = presets.apply(preset, cfg, dist, dist.workers)
    else:
        presets.get(preset)  # validates the name; presets only shape distributed runs
    if dist.workers == 0:
        from trafficdl import runlock
        from trafficdl.dataset import Dataset
        from trafficdl.training.run import run_centralized

        Dataset.open(dataset)  # bad input creates nothing, not even the run directory
        with runlock.hold(out):  # one run per run directory, as `trafficdl train`
            return run_centralized(dataset, cfg, out, reporter=reporter, resume=resume,
                                   dist=dist)  # fmt: skip
    from trafficdl.distributed.launch import run_local

    return run_local(dataset, cfg, dist, Path(out), progress=progress, resume=resume, **launch)


def train(
    dataset: str | Path | TrafficDataset,
    out: str | Path = "run",
    *,
    preset: str = "none",
    resume: bool = False,
    progress: bool = False,
    **settings: Any,
) -> TrainResult:
    """Train a classifier on a dataset; writes the run directory `out` (checkpoint.pt, ...).

    `settings`: TrainConfig fields (model="cnn1d"|"lstm", epochs, batch_size,
    optimizer, lr, seed, test_fraction, val_fraction, patience, device, ...)
    and DistConfig fields (workers=0 trains centrally; workers=N runs a local
    master and N workers with `algorithm`, `window`, ...). `preset` as in
    `trafficdl train --preset`. Test figures come from the stratified hold-out.
    Unless told otherwise it trains as the CLI does: at most 150 epochs, stopping on a
    validation plateau with the best weights kept (config.CONVERGING).
    """
    cfg = TrainConfig(**{**CONVERGING, **_known(TrainConfig, settings, None)})
    dist = DistConfig(**_known(DistConfig, settings, None))
    unknown = set(settings) - _names(TrainConfig) - _names(DistConfig)
    if unknown:
        raise TrafficdlError(f"train: unknown setting(s) {', '.join(sorted(unknown))}")
    reporter = None
    if progress:
        from trafficdl.training.progress_bar import RichReporter

        reporter = RichReporter()
    result = run_training(_path(dataset), cfg, dist, out, preset=preset, reporter=reporter,
                          resume=resume, progress=progress)  # fmt: skip
    return TrainResult(
        metrics=dict(result.get("metrics") or {}),
        run=dict(result.get("run") or {}),
        checkpoint=Path(result["checkpoint"]),
        out=Path(out),
    )


def evaluate(
    dataset: str | Path | TrafficDataset,
    *,
    folds: int = 10,
    checkpoint: str | Path | None = None,
    out: str | Path | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """The paper's stratified k-fold cross-validation, or one checkpoint on a dataset.

    Returns the figures `trafficdl evaluate --json` prints (k-fold: "summary"
    with mean ± std per figure and per app, "folds"; checkpoint: accuracy,
    macro figures, per_class, confusion). `out` keeps the JSON and plots
    (a temporary folder when None). `settings`: TrainConfig fields.
    """
    import tempfile

    from trafficdl.training.report import run_evaluation

    cfg = TrainConfig(**_known(TrainConfig, settings, "evaluate"))
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if out is not None:
        return run_evaluation(_path(dataset), cfg, folds, Path(out), checkpoint=ckpt,
                              progress=False)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="trafficdl-evaluate-") as tmp:
        return run_evaluation(_path(dataset), cfg, folds, Path(tmp), checkpoint=ckpt,
                              progress=False)  # fmt: skip


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _known(cls: type, settings: dict[str, Any], who: str | None) -> dict[str, Any]:
    """The settings that are fields of `cls`; with `who`, any other key is an error."""
    names = _names(cls)
    if who is not None and set(settings) - names:
        bad = ", ".join(sorted(set(settings) - names))
        raise TrafficdlError(f"{who}: unknown setting(s) {bad}")
    return {k: v for k, v in settings.items() if k in names}


def _path(dataset: Any) -> Path:
    return Path(getattr(dataset, "path", dataset))
