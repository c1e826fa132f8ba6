"""The ADA probability controller: planted sign statistics against hand-computed p updates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clr_gan_jax.augment import AdaState, controller

# StyleGAN2-ADA's step at batch 64, every 4 steps, ada_kimg 500: 64 * 4 / 500000.
STEP = 5.12e-4
SETTINGS = {"target": 0.6, "batch_size": 64, "interval": 4, "ada_kimg": 500}


@pytest.mark.parametrize(
    "p, mean_sign, expected",
    [
        (0.3, 0.8, 0.3 + STEP),  # D too sure of reals: more augmentation
        (0.3, 0.2, 0.3 - STEP),  # less
        (0.3, 0.6, 0.3),  # exactly on target: sign 0
        (1.0, 1.0, 1.0 + STEP),  # no upper clamp
        (2e-4, -1.0, 0.0),  # never below 0
    ],
)
def test_adjusted_p(p, mean_sign, expected):
    assert float(controller.adjusted_p(p, mean_sign, **SETTINGS)) == pytest.approx(expected, abs=1e-7)


def test_accumulate_counts_signs_of_every_logit():
    state = controller.accumulate(controller.init(0.25), jnp.array([[2.0], [-1.0], [0.5], [0.0]]))
    state = controller.accumulate(state, jnp.array([3.0, 4.0]))
    assert (float(state.p), float(state.sign_sum), float(state.sign_count)) == (0.25, 3.0, 6.0)


def test_adjust_moves_p_from_the_mean_sign_and_clears_the_sums():
    mostly_real = controller.accumulate(controller.init(0.1), jnp.array([1.0, 2.0, 3.0, -1.0]))  # mean 0.5
    lowered = controller.adjust(mostly_real, **SETTINGS)
    assert float(lowered.p) == pytest.approx(0.1 - STEP, abs=1e-7)
    assert float(lowered.sign_sum) == float(lowered.sign_count) == 0
    confident = controller.accumulate(controller.init(0.1), jnp.array([1.0, 2.0, 3.0, 4.0, -1.0]))  # mean 0.6
    assert float(controller.adjust(confident, **{**SETTINGS, "target": 0.5}).p) == pytest.approx(0.1 + STEP, abs=1e-7)


def test_adjust_waits_until_due_and_keeps_p_without_signs():
    state = controller.accumulate(controller.init(0.1), jnp.ones(8))
    waiting = controller.adjust(state, **SETTINGS, due=jnp.bool_(False))
    assert jax.tree.leaves(jax.tree.map(float, waiting)) == jax.tree.leaves(jax.tree.map(float, state))
    empty = controller.init(0.1)
    assert float(controller.adjust(empty, **SETTINGS).p) == pytest.approx(0.1)


def test_controller_runs_inside_a_jitted_step_every_interval():
    """Eight steps of a train loop, p moved after steps 4 and 8 from all signs seen since the previous move."""

    @jax.jit
    def step(state: AdaState, logits, step_index):
        state = controller.accumulate(state, logits)
        return controller.adjust(state, **SETTINGS, due=(step_index + 1) % 4 == 0)

    def run(logits):
        state, history = controller.init(0.0), []
        for i in range(8):
            state = step(state, logits, i)
            history.append(float(state.p))
        return state, history

    _, history = run(jnp.where(jnp.arange(64) < 48, 1.0, -1.0))  # mean sign 0.5, below the target 0.6
    assert history == [0.0] * 8  # would go down, stays at 0
    state, history = run(jnp.ones(64))
    np.testing.assert_allclose(history, [0, 0, 0, STEP, STEP, STEP, STEP, 2 * STEP], atol=1e-8)
    assert len(jax.tree.leaves(state)) == 3
