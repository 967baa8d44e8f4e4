"""Quickstart: from captures to a DataFrame, a PyTorch Dataset, a model and predictions.

Notebook-style (each block is a cell); CI runs it end to end
(tests/integration/api/test_quickstart.py). Run it yourself with

    python examples/api/quickstart.py [WORK_DIR]

It writes synthetic captures, a dataset and a run directory under WORK_DIR
(a temporary folder by default) and needs nothing else.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

import trafficdl


def main(work: Path) -> dict[str, float]:
    # 1. Captures: three synthetic apps, one folder per app (real pcaps work the same way).
    trafficdl.synthesize(work / "captures", apps=3, flows_per_app=40, captures_per_app=2, seed=1)

    # 2. Extract biflows into a dataset; labels are the folder names.
    ds = trafficdl.extract(work / "captures", work / "dataset")
    print(ds)

    # 3. The objects as a pandas DataFrame: 5-tuple, label, packets, bytes, times, encryption.
    df = ds.objects
    print(df[["label", "proto", "src", "sport", "dst", "dport", "n_packets", "encryption"]].head())
    print(df.groupby("label").size().to_string())

    # 4. A PyTorch Dataset of the LSTM's input (first 20 packets x 4 standardized fields).
    train_rows, test_rows = ds.split(test_fraction=0.25, seed=0)
    train_set = ds.to_torch(input="packets", indices=train_rows)
    test_set = ds.to_torch(input="packets", indices=test_rows, adapter=train_set.adapter)
    x, y = next(iter(torch.utils.data.DataLoader(train_set, batch_size=8, shuffle=True)))
    print("batch", tuple(x.shape), x.dtype, "labels", y.tolist())
    print("test rows", len(test_set), "scaled with the training rows' statistics")

    # 5. Train the paper's LSTM (a few epochs: this is a demo) and look at its test figures.
    result = trafficdl.train(ds, work / "run", model="lstm", epochs=8, lr=0.005,
                             test_fraction=0.25)  # fmt: skip
    print("test macro F", round(result.metrics["macro_f1"], 3))

    # 6. Predict: on the dataset (label beside app), and on capture files directly.
    clf = trafficdl.load_classifier(result.checkpoint)
    pred = clf.predict(ds)
    accuracy = float((pred["app"] == pred["label"]).mean())
    print(clf, "accuracy on all rows", round(accuracy, 3))
    on_files = clf.predict(work / "captures")
    print(on_files[["capture", "src", "dst", "dport", "app", "confidence"]].head())

    # 7. The same model as a plain torch module on a Dataset's tensors, scaled with the
    #    model's own statistics (its checkpoint's adapter, fitted on the run's training
    #    rows; test_set above was scaled with this notebook's split).
    rows = ds.to_torch(input="packets", indices=test_rows, adapter=clf.checkpoint.adapter)
    with torch.no_grad():
        logits = clf.torch_module()(rows.x)
    expected = pred["best"].map(clf.label_names.index).to_numpy()[rows.indices]
    agree = float((logits.argmax(1).numpy() == expected).mean())
    print("torch module agrees with predict() on", agree)
    return {"macro_f1": result.metrics["macro_f1"], "accuracy": accuracy, "agree": agree,
            "objects": len(df), "file_rows": len(on_files)}  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory(prefix="trafficdl-quickstart-") as tmp:
            main(Path(tmp))
