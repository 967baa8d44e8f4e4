"""Progress reporting for training: a rich bar per epoch and one summary line each.

The Trainer only calls the Reporter protocol, so tests and library users run
silently (NullReporter) and the CLI shows a live bar (RichReporter).
"""

from __future__ import annotations

from typing import Any, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter(Protocol):
    def epoch_start(self, epoch: int, epochs: int, samples: int) -> None: ...
    def advance(self, samples: int) -> None: ...
    def epoch_end(self, record: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class NullReporter:
    """Reports nothing."""

    def epoch_start(self, epoch: int, epochs: int, samples: int) -> None:
        pass

    def advance(self, samples: int) -> None:
        pass

    def epoch_end(self, record: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def format_record(r: dict[str, Any]) -> str:
    """One line per epoch: loss/accuracy, validation when present, WTPE and throughput."""
    line = f"epoch {r['epoch']:>3}  loss {r['loss']:.4f}  acc {r['accuracy']:.4f}"
    if r.get("val_loss") is not None:
        line += f"  val_loss {r['val_loss']:.4f}  val_acc {r['val_accuracy']:.4f}"
    return line + f"  {r['seconds']:.2f}s  {r['samples_per_s']:,.0f} samples/s"


class RichReporter:
    """A live bar over the samples of each epoch, then its summary line (on stderr)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.task: Any = None
        self.progress.start()

    def epoch_start(self, epoch: int, epochs: int, samples: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task("train", total=samples, epoch=epoch, epochs=epochs)

    def advance(self, samples: int) -> None:
        self.progress.advance(self.task, samples)

    def epoch_end(self, record: dict[str, Any]) -> None:
        self.progress.console.print(format_record(record), highlight=False, soft_wrap=True)

    def close(self) -> None:
        self.progress.stop()
