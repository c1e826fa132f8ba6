"""CLR-GAN in JAX/Flax: consistent latent representation and reconstruction for GANs."""

__version__ = "0.1.0"
