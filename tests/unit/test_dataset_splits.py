"""The shared splits: stratified, deterministic, disjoint and covering."""

import numpy as np
import pytest

from trafficdl.dataset import partition, stratified_kfold, train_test_split


def _labels() -> np.ndarray:
    return np.repeat(np.arange(3), [50, 30, 7])


def test_train_test_split_is_stratified_and_disjoint() -> None:
    labels = _labels()
    train, test = train_test_split(labels, 0.2, seed=1)
    assert set(train).isdisjoint(test)
    assert len(train) + len(test) == len(labels)
    assert np.bincount(labels[test]).tolist() == [10, 6, 1]
    again = train_test_split(labels, 0.2, seed=1)
    assert np.array_equal(again[1], test)
    assert not np.array_equal(train_test_split(labels, 0.2, seed=2)[1], test)


def test_kfold_tests_each_object_once_and_balances_folds() -> None:
    labels = _labels()
    folds = stratified_kfold(labels, 5, seed=0)
    tested = np.concatenate([t for _, t in folds])
    assert sorted(tested.tolist()) == list(range(len(labels)))
    sizes = [len(t) for _, t in folds]
    assert max(sizes) - min(sizes) <= 1
    for train, test in folds:
        assert set(train).isdisjoint(test)
        assert np.bincount(labels[test], minlength=3)[0] == 10


@pytest.mark.parametrize("world", [1, 2, 4, 16])
def test_partitions_are_disjoint_cover_and_stratified(world: int) -> None:
    labels = _labels()
    indices = np.arange(5, len(labels))
    parts = [partition(indices, labels, world, r, seed=3) for r in range(world)]
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == indices.tolist()
    for p in parts:
        counts = np.bincount(labels[p], minlength=3)
        expected = np.bincount(labels[indices], minlength=3) / world
        assert np.all(np.abs(counts - expected) <= 1)
    with pytest.raises(ValueError):
        partition(indices, labels, world, world, seed=3)
