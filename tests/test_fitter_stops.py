"""The one Fitter stops at listed steps and carries its optimizer state between calls.

A fit that stops at steps 2 and 5 (to evaluate, or to keep its weights) and goes on must
be the very fit that never stopped: same weights and curves, Adam's moments carried over,
not restarted. The reference is the definition: an eager loop of the task's inner loss and
the optimizer's update, one step at a time.
"""
import numpy as np
import pytest
import tensorflow as tf

from learnit_tf.kinds.image import ImageTask
from learnit_tf.meta import FitPhase, FitRecipe, Fitter, InnerOptimizer
from learnit_tf.models import Siren
from learnit_tf.models.functional import FunctionalModel

ADAM = InnerOptimizer("adam", 3e-3)


@pytest.fixture(scope="module")
def setup():
    model = Siren(width=16, depth=3, seed=0)
    task = ImageTask(8)
    image = tf.random.stateless_uniform((8, 8, 3), seed=(1, 2))
    return model, task, {"image": image}


def eager_reference(model, task, example, optimizer, steps):
    """Weights after `steps` steps of `optimizer`, one eager step at a time."""
    fmodel = FunctionalModel(model)
    weights = fmodel.initial_weights()
    state = optimizer.init_state(weights)
    for k in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(weights)
            loss = task.inner_loss(fmodel, weights, example, tf.constant(k))
        grads = tape.gradient(loss, weights)
        weights, state = optimizer.apply(weights, grads, state, None)
    return weights


def assert_same_weights(a, b, atol=1e-6):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=atol)


def test_stopping_at_2_and_5_then_continuing_is_one_uninterrupted_fit(setup):
    model, task, example = setup
    fitter = Fitter(model, task, ADAM, steps_per_call=100)
    whole = fitter.fit(example, 5)
    seen = {}
    stopped = fitter.fit(example, 5, stop_at=[2, 5],
                         on_stop=lambda k, w: seen.__setitem__(k, [t.numpy() for t in w]))
    assert sorted(seen) == [2, 5]
    assert_same_weights(stopped.weights, whole.weights)
    np.testing.assert_allclose(stopped.psnr, whole.psnr, rtol=1e-6)
    np.testing.assert_allclose(stopped.losses, whole.losses, rtol=1e-6)
    # The weights seen at the stops are the uninterrupted fit's at those steps.
    assert_same_weights(seen[2], fitter.fit(example, 2).weights)
    assert_same_weights(seen[5], whole.weights)
    # And both are the definition (an eager Adam loop), so neither restarted Adam.
    assert_same_weights(whole.weights, eager_reference(model, task, example, ADAM, 5))


def test_start_advance_finish_carries_adam_state(setup):
    model, task, example = setup
    fitter = Fitter(model, task, ADAM, steps_per_call=3)
    state = fitter.start(example)
    fitter.advance(state, 2)
    assert state.step == 2
    first = fitter.finish(state)
    assert len(first.psnr) == 3
    fitter.advance(state, 5)
    carried = fitter.finish(state)
    whole = fitter.fit(example, 5)
    assert_same_weights(carried.weights, whole.weights)
    np.testing.assert_allclose(carried.psnr, whole.psnr, rtol=1e-6)
    np.testing.assert_allclose(carried.psnr[:3], first.psnr, rtol=1e-6)
    # Restarting Adam at step 2 (a new fit from the 2-step weights) is a different fit:
    # the test above would fail if the state were not carried.
    restarted = fitter.fit(example, 3, weights=first.weights)
    assert max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
               for a, b in zip(restarted.weights, whole.weights)) > 1e-5


def test_stops_across_a_recipe_phase_change(setup):
    model, task, example = setup
    recipe = FitRecipe((FitPhase(InnerOptimizer("sgd", 1e-2), steps=3), FitPhase(ADAM)))
    fitter = Fitter(model, task, recipe, steps_per_call=4)
    whole = fitter.fit(example, 8)
    state = fitter.start(example)
    for target in (2, 5, 8):
        fitter.advance(state, target)
    assert_same_weights(fitter.finish(state).weights, whole.weights)
    # Adam starts afresh at step 3, from the SGD phase's weights.
    sgd3 = Fitter(model, task, InnerOptimizer("sgd", 1e-2)).fit(example, 3)
    adam5 = Fitter(model, task, ADAM).fit(example, 5, weights=sgd3.weights)
    assert_same_weights(whole.weights, adam5.weights)


def test_recording_no_metrics_gives_the_same_fit(setup):
    model, task, example = setup
    with_metrics = Fitter(model, task, ADAM).fit(example, 4)
    without = Fitter(model, task, ADAM, record_metrics=False).fit(example, 4)
    assert without.metrics == {}
    assert_same_weights(without.weights, with_metrics.weights)
    np.testing.assert_allclose(without.losses[:4], with_metrics.losses[:4], rtol=1e-6)
    assert np.isnan(without.losses[4])


def test_bad_stops(setup):
    model, task, example = setup
    fitter = Fitter(model, task, ADAM)
    with pytest.raises(ValueError, match="stop_at must be steps in 0..3"):
        fitter.fit(example, 3, stop_at=[4])
    state = fitter.advance(fitter.start(example), 2)
    with pytest.raises(ValueError, match="at step 2; it cannot advance to step 1"):
        fitter.advance(state, 1)
    with pytest.raises(ValueError, match="steps_per_call must be >= 1"):
        Fitter(model, task, ADAM, steps_per_call=0)
