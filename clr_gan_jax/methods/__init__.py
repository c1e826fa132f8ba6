"""Training procedures by name (``method``): each a file that registers a builder of a `Method`."""

from clr_gan_jax.methods import gan, stylegan2, veegan  # noqa: F401 -- register 'gan', 'stylegan2', 'veegan'
from clr_gan_jax.methods.base import METHODS, Method, Network, Phase, PhaseInputs, PhaseOutput, init_state, train_step

__all__ = ["METHODS", "Method", "Network", "Phase", "PhaseInputs", "PhaseOutput", "init_state", "train_step"]
