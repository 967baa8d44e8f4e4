"""The Python API: the whole pipeline for notebooks and programs (docs/api.md).

    import trafficdl
    trafficdl.synthesize("captures", apps=3, flows_per_app=40)
    ds = trafficdl.extract("captures", "dataset")        # -> TrafficDataset
    ds.objects                                           # pandas DataFrame, one row per object
    torch_ds = ds.to_torch(input="payload")              # torch.utils.data.Dataset
    result = trafficdl.train(ds, "run", model="cnn1d", epochs=3)
    clf = trafficdl.load_classifier(result.checkpoint)
    clf.predict("captures")                              # DataFrame with app, confidence

The CLI is a layer over these functions. Heavy imports (torch, pandas) happen
inside them, so importing the API is cheap.
"""

from trafficdl.api.classifier import Classifier, load_classifier
from trafficdl.api.data import TrafficDataset, objects_frame, open_dataset
from trafficdl.api.run import TrainResult, evaluate, extract, run_training, synthesize, train

__all__ = [
    "Classifier",
    "TrafficDataset",
    "TrainResult",
    "evaluate",
    "extract",
    "load_classifier",
    "objects_frame",
    "open_dataset",
    "run_training",
    "synthesize",
    "train",
]
