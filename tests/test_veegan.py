"""VEEGAN (three networks: G, the reconstructor F, a joint D on (x, z)): its losses against hand computations, which
network each term trains (with CLR's terms), a few steps of its configs, bitwise resumption, and the mode-collapse
study's --quick run."""

import importlib.util
import os
import shutil

import jax
import numpy as np
import optax
import pytest
from flax import traverse_util
from helpers import REPO, assert_trees_equal, load_config_file, read_jsonl, restore_state
from PIL import Image

from clr_gan_jax import build, sharding, train
from clr_gan_jax.errors import UserError
from clr_gan_jax.methods import PhaseInputs

TINY = {
    "model.hidden": 8,
    "model.z_dim": 4,
    "train.batch_size": 8,
    "train.n_critic": 2,
    "eval.metrics": "",
    "eval.best_metric": "",
}


def tiny_config(variant="veegan_clr", **overrides):
    """configs/ring8.py:<variant> (BatchNorm MLPs, CLR on) shrunk to 8 units, z of 4, batch 8, two D updates."""
    config = load_config_file("configs/ring8.py", variant)
    config.update_from_flattened_dict({**TINY, **overrides})
    return config


@pytest.fixture(scope="module")
def veegan():
    """The tiny veegan_clr experiment, its initial state, one phase input on random points, its phases by name."""
    experiment = build.build(tiny_config(), 1)
    state = build.initial_state(experiment, sharding.make_mesh(jax.devices()[:1]))
    batch = {"image": jax.random.uniform(jax.random.key(2), (8, 2), minval=-1, maxval=1)}
    inputs = PhaseInputs(nets=state.nets, aux={}, batch=batch, rng=jax.random.key(3), constrain=lambda x: x)
    return experiment, state, inputs, {phase.name: phase for phase in experiment.method.phases}


def apply(experiment, state, name, *args):
    """Network ``name`` in training mode (batch statistics), outputs only, as NumPy float64."""
    module = experiment.method.networks[name].module
    out, _ = module.apply(state.nets[name].variables(), *args, train=True, mutable=["batch_stats"])
    return jax.tree.map(lambda x: np.asarray(x, np.float64), out)


def softplus(x):
    return np.logaddexp(0.0, x)


def test_losses_match_hand_computations(veegan):
    experiment, state, inputs, phases = veegan
    real = np.asarray(inputs.batch["image"])
    latent_rng, noise_rng = jax.random.split(inputs.rng)
    z = jax.random.normal(latent_rng, (8, 4))
    fake = apply(experiment, state, "g", z)
    encoded = apply(experiment, state, "f", real) + np.asarray(jax.random.normal(noise_rng, (8, 4)), np.float64)
    data_pairs = apply(experiment, state, "d", real, encoded.astype(np.float32))["logits"]
    latent_pairs = apply(experiment, state, "d", fake.astype(np.float32), z)["logits"]
    phi = apply(experiment, state, "d", fake.astype(np.float32))["phi"]  # the latent slot zero
    _, out = phases["d"].loss(state.nets["d"].params, inputs)
    m = {k: float(v) for k, v in out.metrics.items()}
    # the generator's pairs are labelled 1, the data pairs 0
    assert m["d_adv"] == pytest.approx(0.5 * (softplus(-latent_pairs).mean() + softplus(data_pairs).mean()), rel=1e-5)
    assert m["d_clr"] == pytest.approx(5.0 * np.square(np.asarray(z) - phi).mean(), rel=1e-5)
    assert m["d_latent_pair_logit"] == pytest.approx(latent_pairs.mean(), rel=1e-4, abs=1e-6)

    z = jax.random.normal(inputs.rng, (8, 4))  # G's and F's phases draw their latents from the whole key
    fake = apply(experiment, state, "g", z).astype(np.float32)
    _, out = phases["g"].loss(state.nets["g"].params, inputs)
    rec = np.square(apply(experiment, state, "f", fake) - np.asarray(z)).mean()
    assert float(out.metrics["g_adv"]) == pytest.approx(apply(experiment, state, "d", fake, z)["logits"].mean())
    assert float(out.metrics["g_latent_rec"]) == pytest.approx(rec, rel=1e-5)  # veegan.w_rec = 1
    _, out = phases["f"].loss(state.nets["f"].params, inputs)
    assert float(out.metrics["f_latent_rec"]) == pytest.approx(rec, rel=1e-5)


def norm(tree) -> float:
    return float(optax.tree.norm(tree))


# which network each term trains, by phase: VEEGAN's terms and CLR's (d_clr: restoration, g_rec: G(phi(x)))
ROUTING = {
    "d": {"d_adv": "d", "d_clr": "d"},
    "g": {"g_adv": "g", "g_latent_rec": "g", "g_rec": "g"},  # g_latent_rec reaches G through a frozen F
    "f": {"f_latent_rec": "f"},
}


@pytest.mark.parametrize("phase", ROUTING)
def test_each_term_trains_only_its_network(veegan, phase):
    _, state, inputs, phases = veegan

    def terms(params):
        nets = {name: net.replace(params=params[name]) for name, net in inputs.nets.items()}
        changed = PhaseInputs(nets=nets, aux={}, batch=inputs.batch, rng=inputs.rng, constrain=inputs.constrain)
        metrics = phases[phase].loss(params[phases[phase].network], changed)[1].metrics
        return {term: metrics[term] for term in ROUTING[phase]}

    grads = jax.jacrev(terms)({name: net.params for name, net in state.nets.items()})
    for term, trains in ROUTING[phase].items():
        assert {name for name, grad in grads[term].items() if norm(grad) > 0} == {trains}, term
        assert norm(grads[term][trains]) > 1e-4, term


def test_veegan_refuses_images_and_plugins_other_than_clr():
    images = load_config_file("configs/ring8.py", "veegan")
    images.update_from_flattened_dict({"data.name": "digits", "model.arch": "dcgan"})
    with pytest.raises(UserError, match="method='veegan' needs model.arch='mlp'"):
        build.build(images, 1)
    mixed = load_config_file("configs/ring8.py", "veegan_clr")
    mixed.adaptivemix.enabled = True
    with pytest.raises(UserError, match=r"carries the clr plugin only; disable \['adaptivemix'\]"):
        build.build(mixed, 1)


@pytest.mark.slow
def test_stopped_veegan_run_resumes_bitwise_identically(tmp_path):
    """configs/ring8.py:veegan_clr (tiny) for 4 steps straight (checkpoints 2 and 4), and a copy of that run without
    checkpoint 4 resumed from 2: finite losses with every term, all three networks trained, and G, F, D, their Adam
    states, BatchNorm statistics and the EMA equal bit for bit."""
    config = tiny_config(
        **{"train.steps": 4, "train.checkpoint_every": 2, "train.log_every": 1, "train.sample_every": 2}
    )
    straight, stopped = str(tmp_path / "straight"), str(tmp_path / "stopped")
    train.train_and_evaluate(config, straight)
    shutil.copytree(straight, stopped)
    shutil.rmtree(os.path.join(stopped, "checkpoints", "4"))
    train.train_and_evaluate(config, stopped)
    a, b = restore_state(config, straight, 4), restore_state(config, stopped, 4)
    assert_trees_equal(a, b)

    lines = read_jsonl(os.path.join(straight, "metrics.jsonl"))
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    terms = {"d_adv", "d_clr", "g_adv", "g_latent_rec", "g_rec", "f_latent_rec", "f_grad_norm"}
    assert all(terms <= set(line) and all(np.isfinite(line[t]) for t in terms) for line in lines)
    initial = jax.device_get(build.initial_state(build.build(config, 1), sharding.make_mesh(jax.devices()[:1])))
    for name in ("g", "d", "f"):
        assert norm(jax.tree.map(lambda x, y: x - y, a.nets[name].params, initial.nets[name].params)) > 0, name
        assert "batch_stats" in a.nets[name].collections
    assert len(jax.tree.leaves(a.nets["f"].opt_state)) > 4


def load_bench():
    spec = importlib.util.spec_from_file_location("mode_collapse", os.path.join(REPO, "bench", "mode_collapse.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flat(config) -> dict:
    return traverse_util.flatten_dict(config.to_dict(), sep=".")


@pytest.mark.parametrize("variant", ["baseline", "clr", "veegan", "veegan_clr"])
def test_ring8_config_variants_are_the_studys_runs(variant):
    """configs/ring8.py trains exactly what the study's vanilla and VEEGAN runs train; only how often it logs, samples,
    checkpoints and evaluates differs (so its docstring may quote the study's numbers)."""
    objective = "veegan" if variant.startswith("veegan") else "vanilla"
    study = flat(load_bench().run_config("ring8", objective, variant.endswith("clr"), 0, 5000, 1000, quick=False))
    config = flat(load_config_file("configs/ring8.py", variant))
    cadence = {"train.log_every", "train.sample_every", "train.checkpoint_every", "eval.every", "eval.best_metric"}
    differing = {key for key in study.keys() | config.keys() if study.get(key) != config.get(key)}
    assert differing == cadence


@pytest.mark.slow
def test_mode_collapse_quick_writes_its_table_and_strip(tmp_path):
    bench = load_bench()
    text = bench.main(["--quick", f"--out={tmp_path}"])
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ring8 |")]
    ran = {(r[1].strip(), r[2].strip()): r for r in rows if r[3].strip() == "1"}
    assert set(ran) == {("veegan", "off"), ("veegan", "on")}
    header = next(line for line in text.splitlines() if line.startswith("| dataset"))
    assert [h.strip() for h in header.split("|")[1:-1]][4:] == [
        "modes",
        "high-quality fraction",
        "KL to uniform",
        "wall s",
    ]
    for row in ran.values():
        modes, hq = int(row[4]), float(row[5])
        assert 0 <= modes <= 8 and 0.0 <= hq <= 1.0
        assert row[6].strip() == "nan" or float(row[6]) >= 0.0
    for name in ran:
        result = bench.read_result(os.path.join(tmp_path, "ring8", bench.run_name(name[0], name[1] == "on", 0)))
        assert result["status"] == "ok" and result["step"] == 20
    strip = np.asarray(Image.open(tmp_path / "strip_ring8.png"))
    assert strip.shape == (2 * 160, 150 + 2 * 160, 3)  # 2 runs, samples at steps 10 and 20
    assert (tmp_path / "table.md").read_text() == text
    (tmp_path / "table.md").unlink()
    assert bench.main(["--report_only", f"--out={tmp_path}", "--seeds=0,1"]) == text.replace("of [0]", "of [0, 1]")
    assert sorted(os.listdir(tmp_path / "ring8")) == ["veegan-clr-s0", "veegan-noclr-s0"]  # nothing trained
