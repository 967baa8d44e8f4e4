"""The paper's figures and the HTML report from synthetic records: axes and series, not pixels."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from trafficdl.study import figures
from trafficdl.study.html_report import write_report
from trafficdl.study.records import Record, fill_gap, fill_ideal, finish_record, summarize

LABELS = ["a", "b", "c"]


def rec(
    model: str,
    n: int,
    fold: int,
    *,
    preset: str = "paper",
    window: str = "1e",
    period: float = 1.0,
    cores: int = 2,
) -> Record:
    cid = f"{model}-central" if n == 0 else f"{model}-n{n}-w{window}-aeasgd-{preset}"
    f = 0.95 - (0.02 * n if preset == "paper" and n else 0.002 * n) - 0.01 * fold
    t = 100.0 / max(n, 1) + n
    r = Record(
        cell=cid,
        model=model,
        workers=n,
        window="-" if n == 0 else window,
        algorithm="-" if n == 0 else "aeasgd",
        preset="-" if n == 0 else preset,
        fold=fold,
        folds=3,
        t_s=t,
        wtpe_s=t / 10,
        epochs=10,
        accuracy=f,
        macro_recall=f,
        macro_f=f,
        period_epochs=0.0 if n == 0 else period,
        confusion=[[8, 1, 0], [0, 9, 0], [0, 2, 7]],
        labels=LABELS,
        threads=1,
        cpu_count=cores,
    )
    return finish_record(r, (0.698, 0.698), "EUR")


def study(cores: int = 2) -> list[Record]:
    out: list[Record] = []
    for model in ("cnn1d", "lstm"):
        for fold in range(3):
            out.append(rec(model, 0, fold, cores=cores))
            for preset in ("paper", "robust"):
                for n in (1, 2, 4, 8, 16):
                    out.append(rec(model, n, fold, preset=preset, cores=cores))
    for fold in range(3):  # Fig. 4: N = 4, the update period from 1 mini-batch to all
        for window, period in (("1b", 0.01), ("7b", 0.07), ("10e", 10.0), ("all", 30.0)):
            out.append(rec("cnn1d", 4, fold, window=window, period=period, cores=cores))
    for r in out:
        fill_gap(fill_ideal(r, out), out)
    return out


def write(tmp: Path, recs: list[Record]) -> Path:
    (tmp / "records.jsonl").write_text("".join(r.to_json() + "\n" for r in recs))
    return tmp


def test_fig2_panels_series_and_bands() -> None:
    fig = figures.fig2(summarize(study()))
    assert fig is not None and figures.fig2([]) is None
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["(a) WTPE vs N", "(b) cost vs N", "(c) F-measure vs N"]
    assert [a.get_ylabel() for a in axes] == ["WTPE [s]", "cost [EUR]", "macro F-measure"]
    assert all(a.get_xlabel() == "number of workers N" for a in axes)
    labels = [line.get_label() for line in axes[0].get_lines()]
    # 2 models x 2 presets, plus one ideal curve per model
    assert sorted(labels) == sorted(
        [
            "cnn1d (paper)",
            "cnn1d (robust)",
            "lstm (paper)",
            "lstm (robust)",
            "cnn1d ideal",
            "lstm ideal",
        ]
    )
    assert len(axes[0].collections) == 4  # one ±3σ band per series
    f_labels = [line.get_label() for line in axes[2].get_lines()]
    assert "cnn1d centralized" in f_labels and "lstm centralized" in f_labels
    paper = next(line for line in axes[2].get_lines() if line.get_label() == "lstm (paper)")
    assert list(paper.get_xdata()) == [1, 2, 4, 8, 16]
    ys = list(paper.get_ydata())
    assert ys == sorted(ys, reverse=True)  # F falls with N in the paper preset
    ideal = next(line for line in axes[0].get_lines() if line.get_label() == "lstm ideal")
    t1 = 100.0 / 1 + 1
    assert list(ideal.get_ydata()) == pytest.approx([t1 / 10 / n for n in (1, 2, 4, 8, 16)])


def test_fig3_confusion_panels_in_log_percent() -> None:
    fig = figures.fig3(summarize(study()), model="cnn1d", preset="paper")
    assert fig is not None
    panels = [a for a in fig.axes if a.get_title()]
    assert [a.get_title() for a in panels] == ["centralized", "N = 2", "N = 8", "N = 16"]
    img = panels[0].get_images()[0]
    assert type(img.norm).__name__ == "LogNorm"
    data = img.get_array()
    assert data[0, 0] == pytest.approx(100 * 24 / 27)  # row-normalised % over 3 folds
    assert data.mask[0, 2]  # zero cells are masked (log scale has no 0)


def test_fig4_vs_update_period() -> None:
    fig = figures.fig4(summarize(study()))
    assert fig is not None
    f_ax = fig.axes[2]
    assert f_ax.get_xlabel() == "update period 1/F [epochs]"
    assert f_ax.get_xscale() == "log"
    series = f_ax.get_lines()[0]
    assert list(series.get_xdata()) == [0.01, 0.07, 1.0, 10.0, 30.0]
    names = [line.get_label() for line in f_ax.get_lines()]
    assert "centralized (upper bound)" in names
    assert "loosest coupling (lower bound)" in [ln.get_label() for ln in fig.axes[0].get_lines()]
    assert figures.fig4(summarize([r for r in study() if r.window == "1e"])) is None


def test_save_all_writes_pngs(tmp_path: Path) -> None:
    paths = figures.save_all(summarize(study()), tmp_path)
    assert set(paths) == {"fig2", "fig3", "fig4"}
    for p in paths.values():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_is_self_contained_and_warns_when_oversubscribed(tmp_path: Path) -> None:
    path = write_report(write(tmp_path, study(cores=2)))
    text = path.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 4  # Fig. 2, Fig. 3 for each preset, Fig. 4
    assert base64.b64decode(images[0])[:4] == b"\x89PNG"
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert "Oversubscribed" in text and "N = 16 workers" in text
    head = "macro F (mean drop; worst fold)"
    assert f"paper: {head}" in text and f"robust: {head}" in text
    assert "worst-fold F drop [%]" in text and "%; worst fold " in text
    assert "CPU cores" in text


def test_report_without_oversubscription_has_no_warning(tmp_path: Path) -> None:
    text = write_report(write(tmp_path, study(cores=64))).read_text()
    assert "Oversubscribed" not in text


def test_report_lists_failed_folds(tmp_path: Path) -> None:
    recs = study()
    bad = Record(
        cell="lstm-n2-w1e-aeasgd-paper",
        model="lstm",
        workers=2,
        window="1e",
        algorithm="aeasgd",
        preset="paper",
        fold=5,
        folds=6,
        status="failed",
        error="RuntimeError: worker 1 died",
    )
    text = write_report(write(tmp_path, [*recs, bad])).read_text()
    assert "worker 1 died" in text
