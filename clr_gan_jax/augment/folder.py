"""Augmenting a folder of images into another, to see what a pipe does to a dataset (the tool behind
``python -m clr_gan_jax.augment``)."""

import pathlib

import jax
import numpy as np
from PIL import Image

from clr_gan_jax.augment.pipe import augment
from clr_gan_jax.augment.spec import resolve
from clr_gan_jax.data.image_files import Progress, open_store
from clr_gan_jax.data.image_stores import ImageStore
from clr_gan_jax.data.image_transforms import DataError, ImageTransform, load_image, open_image
from clr_gan_jax.images import to_uint8

_GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La"})
_PIXELS_PER_BATCH = 1 << 20  # the geometry upsamples a (3 size)^2 padded image 2x: about 430 bytes per input pixel


def augment_folder(
    images,
    outdir,
    pipe: str = "bgc",
    p: float = 1.0,
    *,
    debug_percentile: float | None = None,
    seed: int = 0,
    batch_size: int | None = None,
) -> list[str]:
    """Writes every image under ``images`` (PNG, JPEG, WebP; one square size), augmented, as PNG under ``outdir``
    at the same relative path with a .png suffix. Grayscale inputs stay grayscale. Returns the written names.

    Images are processed in batches with the key ``fold_in(key(seed), batch index)``; the last batch is padded
    with copies so that one compiled shape serves all.
    """
    spec = resolve(pipe)
    store = open_store(images)
    names = store.image_names()
    if not names:
        raise DataError(f"No images under {store.path}; check --images.")
    outdir = pathlib.Path(outdir).expanduser()
    if outdir.resolve() == store.path.resolve():
        raise DataError(f"--outdir {outdir} is the --images folder; the outputs would overwrite the inputs.")
    outputs = [str(pathlib.PurePosixPath(name).with_suffix(".png")) for name in names]
    if len(set(outputs)) < len(outputs):
        twins = sorted(n for n, o in zip(names, outputs) if outputs.count(o) > 1)
        raise DataError(f"{twins[0]} and {twins[1]} would both be written as {outputs[names.index(twins[0])]}.")
    transform = _common_transform(store, names)
    size = transform.height * transform.width
    batch_size = min(batch_size or max(1, min(64, _PIXELS_PER_BATCH // size)), len(names))
    key = jax.random.key(seed)
    progress = Progress(f"Augmenting {store.path}", len(names))
    for start in range(0, len(names), batch_size):
        chunk = names[start : start + batch_size]
        pixels = np.stack([load_image(store.read(name), name, transform) for name in chunk])
        padded = np.concatenate([pixels, np.repeat(pixels[-1:], batch_size - len(chunk), axis=0)])
        batch = padded.astype(np.float32) / 127.5 - 1
        out = augment(batch, p, jax.random.fold_in(key, start // batch_size), spec, debug_percentile=debug_percentile)
        for image, name in zip(to_uint8(out[: len(chunk)]), outputs[start : start + len(chunk)]):
            path = outdir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[..., 0] if transform.channels == 1 else image).save(path)
        progress.update(start + len(chunk), force=start + len(chunk) == len(names))
    return outputs


def _common_transform(store: ImageStore, names: list[str]) -> ImageTransform:
    """The decoding of every image at the common size: grayscale if all are, else RGB. One-line errors for images
    that differ in size or are not square."""
    headers = {}
    for name in names:
        with open_image(store.read(name), name) as image:
            headers[name] = (image.size, image.mode)
    (width, height), _ = headers[names[0]]
    for name, ((w, h), _) in headers.items():
        if (w, h) != (width, height):
            raise DataError(f"{name} is {w}x{h} but {names[0]} is {width}x{height}; the images must share one size.")
    if width != height:
        raise DataError(f"The images are {width}x{height}; ADA datasets (and this tool) take square images.")
    channels = 1 if all(mode in _GRAYSCALE_MODES for _, mode in headers.values()) else 3
    return ImageTransform.create(width, "none", channels=channels)
