"""fit's input pipeline: each epoch a seeded permutation cut into batches, no tf.data autotuning;
and the seeding that does not clear TensorFlow's caches again for the same seed."""

import random

import numpy as np
import pytest
import tensorflow as tf

from kerasnn._seeding import seed_everything
from kerasnn.training import _pipeline
from kerasnn.training._pipeline import EVAL_BATCH_SIZE, train_pipeline, validation_pipeline

N, D = 103, 4  # 103 = 12 batches of 8 and one of 7


def _arrays():
    x = np.arange(N * D, dtype="float32").reshape(N, D)  # row i holds 4i..4i+3
    return x, np.arange(N)


def _epoch(ds):
    return [(bx, by) for bx, by in ds.as_numpy_iterator()]


def test_each_epoch_is_a_permutation_in_batches_fixed_by_seed_and_epoch():
    x, y = _arrays()
    epoch = tf.Variable(0, dtype=tf.int64)
    ds = train_pipeline(x, y, 8, seed=3, epoch=epoch)
    assert ds.cardinality() == 13 and not ds.options().autotune.enabled
    orders = []
    for e in range(3):
        epoch.assign(e)
        batches = _epoch(ds)
        assert [len(by) for _, by in batches] == [8] * 12 + [7]
        order = np.concatenate([by for _, by in batches])
        np.testing.assert_array_equal(np.sort(order), np.arange(N))  # every sample once
        for bx, by in batches:  # x and y stay paired
            np.testing.assert_array_equal(bx, x[by])
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    # Another pipeline (another iterator, as a resumed run opens): the same batches per epoch.
    again = tf.Variable(1, dtype=tf.int64)
    same = np.concatenate([by for _, by in _epoch(train_pipeline(x, y, 8, seed=3, epoch=again))])
    np.testing.assert_array_equal(same, orders[1])
    other = tf.Variable(1, dtype=tf.int64)
    seeded = train_pipeline(x, y, 8, seed=4, epoch=other)
    assert not np.array_equal(np.concatenate([by for _, by in _epoch(seeded)]), orders[1])


@pytest.mark.parametrize("chunk_batches", [1, 2, 5, 64])
def test_chunks_cut_the_epoch_order_into_consecutive_batches(monkeypatch, chunk_batches):
    """However the epoch is split into gathered chunks, batch i holds samples
    order[8i:8i+8] of the epoch's permutation (the remainder last), one chunk bounded by
    `CHUNK_BYTES` too."""
    monkeypatch.setattr(_pipeline, "CHUNK_BATCHES", chunk_batches)
    x, y = _arrays()
    for epoch, chunk_bytes in ((0, 2**20), (1, 8 * (D * 4 + 8) * 3)):  # the second: 3 batches
        monkeypatch.setattr(_pipeline, "CHUNK_BYTES", chunk_bytes)
        key = tf.constant([5, epoch], tf.int64)
        order = tf.argsort(tf.random.stateless_uniform([N], seed=key)).numpy()
        batches = _epoch(train_pipeline(x, y, 8, seed=5, epoch=tf.Variable(epoch, tf.int64)))
        assert len(batches) == 13
        for i, (bx, by) in enumerate(batches):
            np.testing.assert_array_equal(by, order[8 * i : 8 * i + 8])
            np.testing.assert_array_equal(bx, x[order[8 * i : 8 * i + 8]])


def test_whole_batches_have_a_static_shape_when_the_batch_size_divides_the_samples():
    x, y = _arrays()
    divided = train_pipeline(x[:96], y[:96], 8, seed=0, epoch=tf.Variable(0, tf.int64))
    assert divided.element_spec[0].shape.as_list() == [8, D]
    assert divided.element_spec[1].shape.as_list() == [8]
    assert len(_epoch(divided)) == 12
    remainder = train_pipeline(x, y, 8, seed=0, epoch=tf.Variable(0, tf.int64))
    assert remainder.element_spec[0].shape.as_list() == [None, D]
    small = _epoch(train_pipeline(x[:5], y[:5], 8, seed=0, epoch=None))  # fewer than a batch
    assert [len(by) for _, by in small] == [5]
    options = divided.options()
    assert not options.experimental_optimization.apply_default_optimizations


def test_without_shuffle_the_batches_are_the_arrays_in_order():
    x, y = _arrays()
    batches = _epoch(train_pipeline(x, y, 8, seed=0, epoch=None))
    np.testing.assert_array_equal(np.concatenate([bx for bx, _ in batches]), x)
    np.testing.assert_array_equal(np.concatenate([by for _, by in batches]), y)


def test_validation_batches_are_at_least_the_evaluation_batch():
    rng = np.random.default_rng(0)
    x, y = rng.random((2500, D), dtype=np.float32), rng.integers(0, 3, 2500)
    batches = _epoch(validation_pipeline(x, y, 32))
    assert [len(by) for _, by in batches] == [EVAL_BATCH_SIZE, EVAL_BATCH_SIZE, 452]
    np.testing.assert_array_equal(np.concatenate([bx for bx, _ in batches]), x)
    assert validation_pipeline(None, None, 32) is None


@pytest.mark.parametrize("seed", [0, 12345])
def test_seeding_again_with_the_same_seed_reseeds_python_and_numpy(seed):
    seed_everything(seed + 1)
    assert tf.compat.v1.get_seed(0)[0] == seed + 1  # another seed: TensorFlow seeded
    seed_everything(seed)
    assert tf.compat.v1.get_seed(0)[0] == seed
    first = (random.random(), np.random.random(), tf.random.stateless_uniform([2], [seed, 0]))
    seed_everything(seed)  # the same seed: Python and NumPy start over
    second = (random.random(), np.random.random(), tf.random.stateless_uniform([2], [seed, 0]))
    assert first[:2] == second[:2]
    np.testing.assert_array_equal(first[2], second[2])
    assert tf.compat.v1.get_seed(0)[0] == seed


def test_a_repeated_stream_holds_the_epochs_in_turn_from_the_epoch_it_starts_at():
    """One iterator over the stream gives epoch e, e+1, ... exactly as the one-epoch pipeline
    gives each (e read when the first batch is taken, as after a resume)."""
    x, y = _arrays()
    epoch = tf.Variable(0, dtype=tf.int64)
    stream = train_pipeline(x, y, 8, seed=3, epoch=epoch, repeat=True)
    assert stream.cardinality() == tf.data.INFINITE_CARDINALITY
    iterator = iter(stream)
    epoch.assign(4)  # before the first batch is taken: the stream starts at epoch 4
    taken = [next(iterator) for _ in range(3 * 13)]
    for k, e in enumerate((4, 5, 6)):
        expected = _epoch(train_pipeline(x, y, 8, seed=3, epoch=tf.Variable(e, tf.int64)))
        got = taken[13 * k : 13 * (k + 1)]
        assert [len(by) for _, by in got] == [8] * 12 + [7]
        for (ex, ey), (gx, gy) in zip(expected, got, strict=True):
            np.testing.assert_array_equal(gx, ex)
            np.testing.assert_array_equal(gy, ey)
    unshuffled = iter(train_pipeline(x, y, 8, seed=0, epoch=None, repeat=True))
    twice = np.concatenate([next(unshuffled)[1] for _ in range(26)])
    np.testing.assert_array_equal(twice, np.concatenate([y, y]))


def test_fit_from_one_stream_trains_as_from_a_pipeline_per_epoch(monkeypatch):
    """`kerasnn.fit` keeps one iterator over a repeated stream when each execution stays in an
    epoch; the weights after 3 epochs (dropout included) equal those of one pipeline per
    epoch, bit for bit."""
    import keras

    import kerasnn as knn
    from kerasnn.training import _fit

    data = knn.datasets.load("digits", n_samples=300)
    streamed = []
    real = _pipeline.streams_epochs
    monkeypatch.setattr(_fit, "streams_epochs", lambda *a: streamed.append(real(*a)) or real(*a))

    def trained() -> list[np.ndarray]:
        keras.utils.set_random_seed(0)
        model = knn.compile(knn.models.mlp(data, hidden=[32], dropout=0.3), learning_rate=0.01)
        knn.fit(model, data, epochs=3, batch_size=32, seed=0, verbose=0)
        return [np.asarray(w) for w in model.weights]

    one_stream = trained()
    monkeypatch.setattr(_fit, "streams_epochs", lambda *a: streamed.append(False) or False)
    per_epoch = trained()
    assert streamed == [True, False]
    for a, b in zip(one_stream, per_epoch, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_stream_only_where_executions_stay_within_an_epoch():
    import kerasnn as knn

    model = knn.models.mlp(knn.datasets.load("iris"), hidden=[4])
    assert _pipeline.streams_epochs(model, 13, 13) and _pipeline.streams_epochs(model, 12, 4)
    assert _pipeline.streams_epochs(model, 13, 1)
    assert not _pipeline.streams_epochs(model, 13, 4)
