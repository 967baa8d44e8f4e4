"""job_spec.parse: defaults, pricing, cross-field rules the schema cannot express."""

from __future__ import annotations

import pytest
from trafficdl_operator.job_spec import SpecError, parse


def test_minimal_spec_gets_defaults(minimal):
    job = parse(minimal)
    assert job.workers == 2 and job.min_workers == 1 and job.max_workers == 2
    assert job.train.model == "cnn1d" and job.dist.algorithm == "aeasgd"
    assert job.run_policy.backoff_limit == 3 and job.run_policy.clean_pod_policy == "Running"
    assert job.dataset_file() == "/data/datasets/fbfbm"
    assert job.out_dir("j") == "/data/runs/j"
    assert job.elastic


def test_fields_map_onto_train_and_dist_config(minimal):
    minimal.update(train={"model": "lstm", "epochs": 4, "batchSize": 64, "lr": 0.01},
                   distribution={"algorithm": "downpour", "window": 5, "wireDtype": "float16"},
                   scale={"workers": 3, "threadsPerWorker": 2})
    job = parse(minimal)
    assert (job.train.model, job.train.epochs, job.train.batch_size, job.train.lr) == \
        ("lstm", 4, 64, 0.01)
    assert (job.dist.algorithm, job.dist.window, job.dist.wire_dtype) == ("downpour", 5, "float16")
    cfg = job.run_config(5)
    assert cfg["dist"]["workers"] == 5 and cfg["dist"]["threads_per_worker"] == 2
    assert cfg["train"]["batch_size"] == 64


def test_node_type_sets_prices_and_explicit_prices_win(minimal):
    minimal["pricing"] = {"nodeType": "D32sv3"}
    dist = parse(minimal).dist
    assert dist.worker_price == dist.master_price == 2.456 and dist.node_type == "D32sv3"
    minimal["pricing"] = {"nodeType": "D32sv3", "workerHourlyPrice": 1.0, "currency": "USD"}
    dist = parse(minimal).dist
    assert (dist.worker_price, dist.master_price, dist.currency) == (1.0, 2.456, "USD")


@pytest.mark.parametrize(("change", "message"), [
    ({"train": {"epochs": 2}, "distribution": {"windowEpochs": 3}}, "must not exceed train.epochs"),
    ({"scale": {"workers": 5, "maxWorkers": 4}}, "minWorkers <= workers <= maxWorkers"),
    ({"scale": {"workers": 2, "minWorkers": 1, "maxWorkers": 4},
      "distribution": {"algorithm": "easgd"}}, "easgd is synchronous"),
    ({"worker": {"gpus": 1}}, "train.device is cpu"),
    ({"distribution": {"rho": 20, "elasticLr": 0.1}}, "rho * elastic lr <= 1"),
    ({"train": {"model": "resnet"}}, "unknown model 'resnet'"),
    ({"train": {"learningRate": 0.1}}, "unknown field(s) in spec.train: learningRate"),
    ({"pricing": {"nodeType": "m5.large"}}, "unknown pricing.nodeType 'm5.large'"),
    ({"runPolicy": {"cleanPodPolicy": "Some"}}, "cleanPodPolicy must be one of"),
    ({"data": {"volume": {}, "datasetPath": "x"}}, "spec.data.volume is required"),
    ({"data": {"volume": {"emptyDir": {}}}}, "spec.data.datasetPath is required"),
])
def test_invalid_specs_raise_a_clear_message(minimal, change, message):
    minimal.update(change)
    with pytest.raises(SpecError) as info:
        parse(minimal)
    assert message in str(info.value)
