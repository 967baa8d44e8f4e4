# Types of the names trafficdl/__init__.py serves lazily through __getattr__.
from trafficdl.api import Classifier as Classifier
from trafficdl.api import TrafficDataset as TrafficDataset
from trafficdl.api import TrainResult as TrainResult
from trafficdl.api import evaluate as evaluate
from trafficdl.api import extract as extract
from trafficdl.api import load_classifier as load_classifier
from trafficdl.api import open_dataset as open_dataset
from trafficdl.api import synthesize as synthesize
from trafficdl.api import train as train

__version__: str
__all__: list[str]
