"""ADA in training: what D is shown (p = 0 is exactly no augmentation, R1 through the augmentation), the adaptive p
driven by D's signs on augmented reals, p in checkpoints, the config fields and variants, 1 vs 8 devices, and a
StyleGAN2-ADA + CLR micro run."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import BIASES_BEFORE_BATCHNORM, assert_trees_equal, digits_config, load_config_file, micro_config

from clr_gan_jax import build, checkpoints, sharding, train
from clr_gan_jax.augment import augment
from clr_gan_jax.errors import UserError
from clr_gan_jax.methods.ada import AugmentedDiscriminator
from clr_gan_jax.methods.base import Apply
from clr_gan_jax.writers import ProgressLine

BATCH = 16  # digits_config's
INTERVAL, KIMG = 2, 0.32  # p moves by BATCH * INTERVAL / (KIMG * 1000) = 0.1 every second step
P_STEP = 0.1
RTOL = 1e-6  # of a leaf's largest magnitude: a few float32 ulps
IMAGES = np.random.default_rng(0).integers(0, 256, (2, BATCH, 8, 8, 1), dtype=np.uint8)


def gan_config(pipe: str):
    """DCGAN + CLR on 8x8 digits with R1 and WGAN-GP (every path that shows D an image), ADA by ``pipe``."""
    c = digits_config()
    c.loss.update(r1_gamma=1.0, gp_weight=1.0)
    c.augment.update(pipe=pipe, interval=INTERVAL, kimg=KIMG)
    return c


class Run:
    """One config's experiment, initial state (host arrays) and jitted step on the given devices; step i trains on
    ``images[i % 2]``."""

    def __init__(self, config, devices, images=IMAGES):
        self.config, self.images = config, images
        self.mesh = sharding.make_mesh(devices)
        self.experiment = build.build(config, self.mesh.size)
        self.state = jax.device_get(build.initial_state(self.experiment, self.mesh))
        self._step = build.train_step_fn(self.experiment, self.mesh)

    def steps(self, state, count: int, start: int = 0):
        """``count`` steps from ``state`` (host arrays, not donated): (final state, each step's metrics), on host."""
        history = []
        for i in range(start, start + count):
            images = self.images[i % 2]
            batch = train.step_batch({"image": images, "label": np.zeros(len(images), np.int32)}, 1, self.mesh)
            state, metrics = self._step(state, batch, self.experiment.method.active_phases(i))
            state, metrics = jax.device_get((state, metrics))
            history.append(metrics)
        return state, history


@pytest.fixture(scope="module")
def ada():
    return Run(gan_config("bgc"), jax.devices()[:1])


@pytest.fixture(scope="module")
def plain():
    return Run(gan_config(""), jax.devices()[:1])


def planted(state, logit_bias: float, p: float):
    """``state`` with D's logit bias set (so every logit has its sign) and ADA's p set."""
    params = jax.tree_util.tree_map_with_path(
        lambda path, x: np.full_like(x, logit_bias) if jax.tree_util.keystr(path) == "['logit']['bias']" else x,
        state.nets["d"].params,
    )
    nets = {**state.nets, "d": state.nets["d"].replace(params=params)}
    return state.replace(nets=nets, aux={**state.aux, "ada": state.aux["ada"].replace(p=np.float32(p))})


def test_zero_p_trains_exactly_like_no_augmentation(ada, plain):
    assert "ada" not in plain.state.aux and float(ada.state.aux["ada"].p) == 0.0
    (with_ada, (m_ada,)), (without, (m_plain,)) = ada.steps(ada.state, 1), plain.steps(plain.state, 1)
    # the two steps are different programs (one holds the augmentation graph); on some CPUs XLA orders their gradient
    # sums differently (1 ulp), while any augmentation of the images would move D by far more. G's bias before its
    # BatchNorm is skipped: its gradient is rounding noise, which Adam's first step turns into +-lr (tests/helpers.py)
    assert_trees_equal(with_ada.nets, without.nets, skip=BIASES_BEFORE_BATCHNORM, rtol=RTOL)
    assert_trees_equal(with_ada.ema, without.ema, skip=BIASES_BEFORE_BATCHNORM, rtol=RTOL)
    assert "ada_p" not in m_plain and float(m_ada["ada_p"]) == 0.0
    assert_trees_equal({name: m_ada[name] for name in m_plain}, m_plain, rtol=RTOL)
    # the d phase counted one sign per real image; the first adjustment is due after step INTERVAL
    counted = with_ada.aux["ada"]
    assert float(counted.sign_count) == BATCH and float(counted.p) == 0.0
    assert float(counted.sign_sum) == pytest.approx(BATCH * float(m_ada["d_real_sign"]), abs=1e-4)


def test_augmentation_reaches_every_d_term(ada):
    """At p = 1 D's view of reals and fakes changes, and so do the adversarial, R1, WGAN-GP and CLR terms."""
    _, (at_zero,) = ada.steps(ada.state, 1)
    _, (at_one,) = ada.steps(planted(ada.state, 0.0, 1.0), 1)
    for name in ("d_real_logit", "d_fake_logit", "d_adv", "d_r1", "d_gp", "d_clr", "g_adv", "g_rec"):
        assert not np.isclose(at_zero[name], at_one[name], rtol=1e-5, atol=0), name


@pytest.mark.parametrize(
    "logit_bias, p, expected",
    [(50.0, 0.0, P_STEP), (-50.0, 0.5, 0.5 - P_STEP), (-50.0, 0.0, 0.0)],
    ids=["positive-up", "negative-down", "never-below-zero"],
)
def test_p_follows_the_sign_of_d_on_augmented_reals(ada, logit_bias, p, expected):
    state, history = ada.steps(planted(ada.state, logit_bias, p), INTERVAL + 1)
    assert [float(m["d_real_sign"]) for m in history] == [np.sign(logit_bias)] * (INTERVAL + 1)
    assert [float(m["ada_p"]) for m in history] == pytest.approx([p] * INTERVAL + [expected], abs=1e-6)
    # after the adjustment the sums restart: they hold the last step's signs only
    assert float(state.aux["ada"].p) == pytest.approx(expected, abs=1e-6)
    assert (float(state.aux["ada"].sign_sum), float(state.aux["ada"].sign_count)) == (
        np.sign(logit_bias) * BATCH,
        BATCH,
    )


def test_r1_is_taken_through_the_augmentation_wrt_the_unaugmented_reals(ada):
    """The wrapper's input gradient is that of x -> D(augment(x)), not D's gradient at the augmented images."""
    d_state = ada.state.nets["d"]
    module = ada.experiment.method.networks["d"].module
    x = IMAGES[0].astype(np.float32) / 127.5 - 1
    rng, p, pipe = jax.random.key(3), jnp.float32(1.0), "color"  # colour: a per-sample affine map, cheap to compile

    @jax.jit
    def gradients(x):
        def logits(images):
            return Apply(module, d_state.params, d_state.collections)(images, None)["logits"]

        d = Apply(module, d_state.params, d_state.collections)
        outputs, through_wrapper = AugmentedDiscriminator(d, p, rng, pipe).with_input_grad(x, None)
        augmented = augment(x, p, jax.random.fold_in(rng, 0), pipe)  # the wrapper's first call's draw
        composed = jax.grad(lambda x: logits(augment(x, p, jax.random.fold_in(rng, 0), pipe)).sum())(x)
        at_augmented = jax.grad(lambda y: logits(y).sum())(augmented)
        return outputs["logits"], logits(augmented), augmented, through_wrapper, composed, at_augmented

    outputs, expected_outputs, augmented, grads, composed, at_augmented = gradients(x)
    assert grads.shape == x.shape and not np.allclose(augmented, x, atol=1e-3)
    np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads, composed, rtol=1e-5, atol=1e-6)
    assert not np.allclose(grads, at_augmented, rtol=1e-2, atol=1e-4)


def test_p_and_its_sums_resume_bitwise(ada, tmp_path):
    state, _ = ada.steps(planted(ada.state, 50.0, 0.0), INTERVAL + 1)
    assert float(state.aux["ada"].p) > 0 and float(state.aux["ada"].sign_count) > 0
    checkpointer = checkpoints.Checkpointer(str(tmp_path), 2)
    checkpointer.save(INTERVAL + 1, state, ada.config)
    restored = jax.device_get(checkpointer.restore(INTERVAL + 1, build.abstract_state(ada.experiment, ada.mesh)))
    checkpointer.close()
    assert_trees_equal(restored, state)
    continued, _ = ada.steps(state, INTERVAL, start=INTERVAL + 1)
    resumed, _ = ada.steps(restored, INTERVAL, start=INTERVAL + 1)
    assert_trees_equal(resumed, continued)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"augment.pipe": "bcg"}, "augment.pipe: unknown name 'bcg'; known: blit, geom"),
        ({"augment.pipe": "bgc", "augment.target": 0.0}, "augments nothing; set augment.p > 0"),
        ({"augment.pipe": "bgc", "augment.target": 1.5}, "augment.target is a mean sign, at most 1"),
        ({"augment.pipe": "bgc", "augment.p": -0.1}, "augment.p must be a finite number >= 0"),
        ({"augment.pipe": "bgc", "augment.interval": 0}, "augment.interval must be an integer >= 1"),
        ({"augment.pipe": "bgc", "augment.kimg": 0.0}, "augment.kimg must be a finite number > 0"),
        ({"augment.pipe": "bgc", "data.name": "ring8", "model.arch": "mlp"}, "augments images, but the data are"),
    ],
)
def test_config_mistakes_are_one_line_errors(overrides, message):
    config = digits_config()
    config.update_from_flattened_dict(overrides)
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        build.build(config)


def test_stylegan2_ada_variants_differ_from_their_base_only_in_augmentation():
    for name in ("tiny", "stylegan2", "paper256", "paper512", "paper1024", "cifar", "auto"):
        for clr in ("", "_clr"):
            base = load_config_file("configs/stylegan2.py", name + clr)
            with_ada = load_config_file("configs/stylegan2.py", f"{name}_ada{clr}")
            assert base.augment.pipe == "" and with_ada.augment.pipe == "bgc"
            assert (with_ada.augment.target, with_ada.augment.interval, with_ada.augment.kimg) == (0.6, 4, 500)
            with_ada.augment.pipe = ""
            assert with_ada.to_dict() == base.to_dict(), name + clr
    experiment = build.build(load_config_file("configs/stylegan2.py", "tiny_ada_clr"))
    aux = jax.eval_shape(experiment.method.init_aux)
    assert set(aux) == {"pl_mean", "ada"} and experiment.config.clr.enabled


def test_progress_line_shows_p_and_the_real_sign_only_with_ada():
    scalars = {"d_loss": 1.0, "g_loss": 2.0, "d_real_sign": 0.625, "steps_per_sec": 1.0}
    without, with_ada = io.StringIO(), io.StringIO()
    ProgressLine(10, 8, without).print(1, scalars)
    ProgressLine(10, 8, with_ada).print(1, {**scalars, "ada_p": 0.0123})
    assert "ada_p" not in without.getvalue() and "d_real_sign" not in without.getvalue()
    assert "ada_p=0.0123 d_real_sign=0.625" in with_ada.getvalue()


@pytest.mark.slow
def test_eight_devices_adapt_like_one(ada):
    eight = Run(ada.config, jax.devices())
    start = planted(ada.state, 0.0, 0.5)
    (state1, history1), (state8, history8) = ada.steps(start, INTERVAL), eight.steps(start, INTERVAL)
    for m1, m8 in zip(history1, history8):
        for name in m1:
            np.testing.assert_allclose(m8[name], m1[name], rtol=2e-4, atol=2e-5, err_msg=name)
    assert float(state8.aux["ada"].p) == float(state1.aux["ada"].p) != 0.5
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(state1.nets), jax.tree.leaves(state8.nets)):
        if not jax.tree_util.keystr(path).endswith(BIASES_BEFORE_BATCHNORM):
            np.testing.assert_allclose(b, a, rtol=2e-4, atol=2e-5, err_msg=jax.tree_util.keystr(path))


@pytest.mark.slow
def test_stylegan2_ada_clr_micro_run_trains_with_p_moving():
    """tiny_ada_clr at 8 px: both d and d_reg count their signs, p moves by its step every INTERVAL steps."""
    config = micro_config(
        "tiny_ada_clr",
        **{
            "loss.pl_weight": 0.0,  # with R1 every step, every step is one compiled variant (g, d, d_reg)
            "train.d_reg_interval": 1,
            "augment.p": 0.2,
            "augment.interval": INTERVAL,
            "augment.kimg": 8 * INTERVAL / (P_STEP * 1000),
        },
    )
    images = np.random.default_rng(1).integers(0, 256, (2, 8, 8, 8, 3), dtype=np.uint8)
    run = Run(config, jax.devices()[:1], images)
    assert [p.name for p in run.experiment.method.phases] == ["g", "d", "d_reg"]
    state, ps = run.state, []
    for i in range(2 * INTERVAL):
        state, (metrics,) = run.steps(state, 1, start=i)
        assert all(np.isfinite(float(v)) for v in metrics.values())
        ps.append(float(state.aux["ada"].p))
        if (i + 1) % INTERVAL:
            assert float(state.aux["ada"].sign_count) == 2 * 8  # the d and d_reg phases' real logits
    assert ps[0] == pytest.approx(0.2)
    for before, after in ((0.2, ps[INTERVAL - 1]), (ps[INTERVAL - 1], ps[-1])):
        assert abs(after - before) == pytest.approx(P_STEP, abs=1e-6)
