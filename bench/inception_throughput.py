r"""Inception feature extraction, images/s: the JAX port against torch-fidelity's extractor.

    python bench/inception_throughput.py --batch_size=32 --image_size=32 --batches=5

Same random weights, same uint8 images, TF1 resize in both (torch-fidelity's own), on
the CPU with every core for both (torch.set_num_threads; XLA uses all cores). The first
batch of each (JAX compile, torch warm-up) is timed apart and left out of the rate.
Needs torch and torch-fidelity (test extra).
"""

import os
import time

import jax
import numpy as np
import torch
from absl import app, flags

from clr_gan_jax.metrics import convert_inception, features, inception_weights, torch_reference

_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Images per batch.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 32, "Side of the input images (resized to 299 inside).")
_BATCHES = flags.DEFINE_integer("batches", 5, "Timed batches after the warm-up one.")


def timed(fn, batch):
    start = time.perf_counter()
    fn(batch)
    return time.perf_counter() - start


def measure(name: str, fn, images: np.ndarray) -> float:
    """Prints warm-up time and steady rate; returns images/s."""
    warmup = timed(fn, images[0])
    seconds = sum(timed(fn, batch) for batch in images[1:])
    rate = (len(images) - 1) * len(images[0]) / seconds
    print(f"{name}: warm-up {warmup:.2f} s, {rate:.2f} images/s over {len(images) - 1} batches")
    return rate


def main(argv):
    del argv
    threads = os.cpu_count()
    torch.set_num_threads(threads)
    shape = (_BATCHES.value + 1, _BATCH_SIZE.value, _IMAGE_SIZE.value, _IMAGE_SIZE.value, 3)
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    print(f"device {jax.devices()[0].device_kind}, {threads} threads, batch {shape[1]}, {shape[2]}x{shape[3]} px")

    model = torch_reference.random_extractor(seed=0)
    flat = convert_inception.torch_to_flax({k: v.numpy() for k, v in model.state_dict().items()})
    port = features.BatchedApply(
        features.inception_features_fn("tf1"), inception_weights.unflatten(flat), batch_size=shape[1]
    )
    jax_rate = measure("jax port", lambda batch: port(batch)["pool3"], images)
    torch_rate = measure("torch-fidelity", lambda batch: torch_reference.features(model, batch, "tf1"), images)
    print(f"jax / torch-fidelity throughput ratio: {jax_rate / torch_rate:.2f}")


if __name__ == "__main__":
    app.run(main)
