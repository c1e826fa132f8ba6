"""``--mode=import``: an official StyleGAN2-ADA, CLR-GAN or GLeaD run's weights as a checkpoint of this package.

The weights file is a dict of state dicts ``{"G": ..., "D": ..., "G_ema": ...}`` written with the
official code (README, "Official weights"); G_ema is required, G and D are optional (a missing G
starts as a copy of G_ema, a missing D from the config's initialisation). The config must describe
the same networks (``model.arch=stylegan2`` with the official run's cfg): a tensor whose shape does
not fit is named with both shapes, and nothing is written. The checkpoint (step 0, fresh optimizer
states) serves every mode: generate, sample, evaluate, export, and training, which fine-tunes from it.
"""

import jax

from clr_gan_jax import build, checkpoints, sharding
from clr_gan_jax import workdir as workdir_lib
from clr_gan_jax.errors import require
from clr_gan_jax.models import stylegan2

NETWORKS = ("G", "D", "G_ema")


def import_official(config, workdir: str, weights: str) -> str:
    """Writes checkpoint 0 of ``config`` into an empty ``workdir`` from official ``weights``; returns the folder."""
    require(config.model.arch == "stylegan2", f"--mode=import needs model.arch='stylegan2', got {config.model.arch!r}")
    require(bool(weights), "--mode=import needs --weights=FILE.pth (see the README: Official weights)")
    experiment = build.build(config)
    workdir_lib.validate(workdir)
    checkpointer = checkpoints.Checkpointer(workdir, None, create=False)
    require(
        not checkpointer.all_steps(), f"{checkpointer.directory} already holds checkpoints: import into a new --workdir"
    )
    state_dicts = stylegan2.load_state_dicts(weights)
    unknown = sorted(set(state_dicts) - set(NETWORKS))
    require("G_ema" in state_dicts, f"{weights} has no 'G_ema' state dict (it has {sorted(state_dicts)})")
    require(not unknown, f"{weights} holds {unknown}: expected state dicts named {NETWORKS}")

    method = experiment.method
    mesh = sharding.make_mesh()
    state = build.initial_state(experiment, mesh)
    generator, discriminator = method.networks["g"].module, method.networks["d"].module
    ema = stylegan2.generator_variables(generator, state_dicts["G_ema"])
    g = stylegan2.generator_variables(generator, state_dicts["G"]) if "G" in state_dicts else ema
    nets = dict(state.nets)
    nets["g"] = _with_variables(nets["g"], g, method.networks["g"].optimizer)
    if "D" in state_dicts:
        d = stylegan2.discriminator_variables(discriminator, state_dicts["D"], initial=nets["d"].variables())
        nets["d"] = _with_variables(nets["d"], d, method.networks["d"].optimizer)
    state = jax.device_put(state.replace(nets=nets, ema=ema), sharding.replicated(mesh))

    with workdir_lib.RunLock(workdir):
        checkpointer = checkpoints.Checkpointer(workdir, None)
        try:
            checkpointer.save(0, state, config)
        finally:
            checkpointer.close()
    return checkpointer.directory


def _with_variables(net, variables: dict, optimizer):
    params = variables["params"]
    collections = {k: v for k, v in variables.items() if k != "params"}
    return net.replace(params=params, collections=collections, opt_state=optimizer.init(params))
