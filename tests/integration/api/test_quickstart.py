"""The notebook-style example (examples/api/quickstart.py) runs end to end in CI."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).parents[3] / "examples" / "api" / "quickstart.py"


def test_quickstart_runs(tmp_path, capsys):
    main = runpy.run_path(str(EXAMPLE))["main"]
    figures = main(tmp_path)
    out = capsys.readouterr().out
    assert "TrafficDataset(" in out and "batch (8, 20, 4) torch.float32" in out
    assert figures["objects"] == 120 and figures["file_rows"] == 120
    assert figures["agree"] == 1.0  # the bare torch module and predict() agree
    assert figures["macro_f1"] > 0.4 and figures["accuracy"] > 0.5  # 3 apps: chance is 1/3
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
