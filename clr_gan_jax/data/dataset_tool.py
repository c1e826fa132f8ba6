r"""Converts an image folder or zip into array_record shards read by `ArrayRecordImageSource`.

  python -m clr_gan_jax.data.dataset_tool --source=~/afhq/train/cat --dest=~/datasets/afhqcat
  python -m clr_gan_jax.data.dataset_tool --source=/tmp/ffhq-unpacked --dest=~/datasets/ffhq256 \
      --resolution=256 --transform=center-crop --resize-filter=box
  python -m clr_gan_jax.data.dataset_tool --source=~/lsun/car --dest=~/datasets/lsuncar \
      --transform=center-crop-wide --width=512 --height=384 --max-images=200000 --skip-bad

The options and transforms are StyleGAN2-ADA's (see `image_transforms`), except
that a resize needs an explicit --transform: with the default `none` every image
must already have the output size. Labels come from the source's StyleGAN2-ADA
dataset.json when present. Every image is decoded and checked; a bad one stops
the conversion with its name (nothing is left behind) unless --skip-bad, which
skips it and lists it in the output's dataset.json.

Output: shards `images.array_record-0000i-of-0000n` and dataset.json (shape,
count, labels, num_classes, shard list, source, options, skipped files).

Record format: the raw uint8 pixels of each image. Random access through grain's
ArrayRecordDataSource, one process on the project's 2-core CPU, synthetic
photo-like images (bench/data_sources.py): at 256 px raw records read 15,000
images/s, PNG records 1,900 (uncompressed PNG) or 640 (zlib level 6); at 32 px
64,000 against 12,000 (figures halve when the machine is busy; the ratios hold).
PNG would save a third to a half of the disk, but decoding, not disk, limits the
input pipeline of a CPU host feeding accelerators, so raw it is. Nothing is pickled.
"""

import json
import math
import multiprocessing
import os
import pathlib
import shutil
import sys
import time

from absl import app, flags, logging
from array_record.python.array_record_module import ArrayRecordWriter

from clr_gan_jax.data import array_record_source
from clr_gan_jax.data.image_files import ImageStore, Labels, Progress, square_resolution
from clr_gan_jax.data.image_transforms import (
    RESIZE_FILTERS,
    TRANSFORMS,
    BadImageError,
    DataError,
    ImageTransform,
    load_image,
)

SHARD_BYTES = 1 << 30  # default shard size when --num-shards is not given
_BLOCK_PER_WORKER = 32  # images each worker decodes between hand-offs


def _decode(store, transform, name):
    """(pixels, None) or (None, BadImageError): errors travel back from worker processes as values."""
    try:
        return load_image(store.read(name), name, transform), None
    except BadImageError as e:
        return None, e
    except OSError as e:
        return None, BadImageError(name, f"cannot be read ({e})")


_worker_args = None


def _init_worker(store, transform):
    global _worker_args
    _worker_args = (store, transform)


def _decode_in_worker(name):
    return _decode(*_worker_args, name)


def _decoded(store, transform, names, workers):
    """Yields (name, pixels, error) in order, decoding ahead in ``workers`` processes."""
    if workers <= 1:
        for name in names:
            yield (name, *_decode(store, transform, name))
        return
    block = workers * _BLOCK_PER_WORKER
    blocks = [names[i : i + block] for i in range(0, len(names), block)]
    # spawn, not fork: the caller may hold threads (JAX, array_record) that fork would copy mid-lock.
    with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (store, transform)) as pool:
        pending = pool.map_async(_decode_in_worker, blocks[0], chunksize=4)
        for i, current in enumerate(blocks):
            results = pending.get()
            if i + 1 < len(blocks):
                pending = pool.map_async(_decode_in_worker, blocks[i + 1], chunksize=4)
            for name, (pixels, error) in zip(current, results):
                yield name, pixels, error


class _ShardWriter:
    """Writes records into consecutive shards of ``per_shard`` records, named at the end."""

    def __init__(self, folder: pathlib.Path, per_shard: int):
        self.folder, self.per_shard = folder, per_shard
        self.counts = []
        self._writer = None

    def write(self, record: bytes) -> None:
        if self._writer is None or self.counts[-1] == self.per_shard:
            self._close_current()
            self._writer = ArrayRecordWriter(str(self._temp_name(len(self.counts))), array_record_source.WRITER_OPTIONS)
            self.counts.append(0)
        self._writer.write(record)
        self.counts[-1] += 1

    def close(self) -> list[dict]:
        self._close_current()
        shards = []
        for i, count in enumerate(self.counts):
            name = array_record_source.shard_name(i, len(self.counts))
            self._temp_name(i).rename(self.folder / name)
            shards.append({"file": name, "count": count})
        return shards

    def _close_current(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _temp_name(self, index: int) -> pathlib.Path:
        return self.folder / f"shard-{index:05d}.partial"


def _check_dest(dest: pathlib.Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise DataError(f"--dest {dest} is a file; give a new or empty folder.")
    if dest.is_dir() and any(dest.iterdir()):
        raise DataError(f"--dest {dest} is not empty; give a new or empty folder.")


def convert_dataset(
    source,
    dest,
    resolution=None,
    transform: str = "none",
    *,
    resize_filter: str = "lanczos",
    channels: int = 3,
    max_images: int | None = None,
    skip_bad: bool = False,
    num_shards: int | None = None,
    workers: int = 1,
    with_labels: bool = True,
) -> dict:
    """Converts ``source`` (folder or zip) into shards in ``dest``; returns the written dataset.json.

    ``resolution`` is the output side, or (width, height) for center-crop-wide;
    None keeps the size of the (square) images when transform is 'none'.
    ``num_shards`` None makes shards of about 1 GiB. ``with_labels`` reads the
    source's StyleGAN2-ADA dataset.json when present.
    """
    store = ImageStore(source)
    dest = pathlib.Path(dest).expanduser()
    _check_dest(dest)
    names = store.image_names
    if not names:
        raise DataError(f"No images under {store.path}; --source must hold .png, .jpg, .jpeg or .webp files.")
    if resolution is None:
        if transform != "none":
            raise DataError(f"--transform={transform} needs --resolution (or --width and --height).")
        resolution = square_resolution(store, names[0])
    image_transform = ImageTransform.create(resolution, transform, resize_filter=resize_filter, channels=channels)
    labels = Labels(store) if with_labels else None
    if max_images is not None and max_images < 1:
        raise DataError(f"--max-images={max_images} must be at least 1.")
    target = len(names) if max_images is None else min(max_images, len(names))
    if num_shards is None:
        num_shards = math.ceil(target * math.prod(image_transform.shape) / SHARD_BYTES)
    if num_shards < 1:
        raise DataError(f"--num-shards={num_shards} must be at least 1.")
    per_shard = math.ceil(target / min(num_shards, target))

    temp = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    temp.mkdir(parents=True)
    decoded = _decoded(store, image_transform, names, workers)
    try:
        writer = _ShardWriter(temp, per_shard)
        written_labels, skipped = [], []
        progress = Progress(f"Converting {store.path}", target)
        for name, pixels, error in decoded:
            if error is not None:
                if not skip_bad:
                    raise error
                logging.warning("Skipping %s %s.", name, error.problem)
                skipped.append({"name": name, "reason": error.problem})
                continue
            writer.write(pixels.tobytes())
            written_labels.append(labels(name) if labels else 0)
            progress.update(len(written_labels), len(skipped))
            if len(written_labels) == target:
                break
        if not written_labels:
            raise DataError(f"All images under {store.path} are bad; nothing to write.")
        shards = writer.close()
        progress.update(len(written_labels), len(skipped), force=True)
        metadata = {
            "format": array_record_source.FORMAT,
            "record": array_record_source.RECORD_LAYOUT,
            "shape": list(image_transform.shape),
            "resolution": image_transform.width,
            "channels": channels,
            "count": len(written_labels),
            "num_classes": labels.num_classes if labels else 0,
            "labels": written_labels if labels and labels.num_classes else None,
            "shards": shards,
            "source": str(store.path.resolve()),
            "options": {
                "width": image_transform.width,
                "height": image_transform.height,
                "transform": transform,
                "resize_filter": resize_filter,
                "channels": channels,
                "max_images": max_images,
                "skip_bad": skip_bad,
                "with_labels": with_labels,
            },
            "skipped": skipped,
        }
        (temp / array_record_source.METADATA_FILE).write_text(json.dumps(metadata, indent=1))
        if dest.is_dir():
            dest.rmdir()
        temp.rename(dest)
    finally:
        decoded.close()  # stops the worker processes
        if temp.exists():
            shutil.rmtree(temp)
    logging.info(
        "Wrote %d images (%d skipped) in %d shards to %s.", metadata["count"], len(skipped), len(shards), dest
    )
    return metadata


def _define_flags():
    """Defined only when run as a program, so importing this module adds no global flags."""
    flags.DEFINE_string("source", None, "Image folder or zip (PNG, JPEG, WebP), read recursively.", required=True)
    flags.DEFINE_string("dest", None, "New or empty output folder.", required=True)
    flags.DEFINE_integer("resolution", None, "Output side; default: the size of the (square) input images.")
    flags.DEFINE_integer("width", None, "Output width (StyleGAN2-ADA style; with --height for center-crop-wide).")
    flags.DEFINE_integer("height", None, "Output height (StyleGAN2-ADA style; with --width for center-crop-wide).")
    flags.DEFINE_enum("transform", "none", TRANSFORMS, "Crop/resize mode.")
    flags.DEFINE_enum("resize_filter", "lanczos", list(RESIZE_FILTERS), "Resize filter (box: StyleGAN2's FFHQ FIDs).")
    flags.DEFINE_integer("max_images", None, "Write at most this many images.")
    flags.DEFINE_enum("channels", "3", ["1", "3"], "1: grayscale, 3: RGB (grayscale inputs are expanded).")
    flags.DEFINE_boolean("skip_bad", False, "Skip unreadable or unfit images, listed in dataset.json, not fail.")
    flags.DEFINE_integer("num_shards", None, "Number of shards; default: about 1 GiB each.")
    flags.DEFINE_integer("workers", os.cpu_count(), "Decoding processes.")
    flags.DEFINE_boolean("labels", True, "Read class labels from the source's StyleGAN2-ADA dataset.json if present.")
    for name in ("resize_filter", "max_images", "skip_bad", "num_shards"):
        flags.DEFINE_alias(name.replace("_", "-"), name)


def _resolution_from_flags(f):
    """--resolution, or StyleGAN2-ADA's --width/--height: (width, height) for center-crop-wide."""
    if f.transform == "center-crop-wide":
        if f.width is None or f.height is None:
            raise DataError("--transform=center-crop-wide needs --width and --height.")
        if f.resolution not in (None, f.width):
            raise DataError(f"--resolution={f.resolution} differs from --width={f.width}; give one of them.")
        return (f.width, f.height)
    sides = {side for side in (f.resolution, f.width, f.height) if side is not None}
    if len(sides) > 1:
        raise DataError(
            f"Output must be square, got sizes {sorted(sides)} from --resolution/--width/--height; "
            "use --transform=center-crop-wide for wide crops."
        )
    return sides.pop() if sides else None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    f = flags.FLAGS
    start = time.monotonic()
    try:
        meta = convert_dataset(
            f.source,
            f.dest,
            _resolution_from_flags(f),
            f.transform,
            resize_filter=f.resize_filter,
            channels=int(f.channels),
            max_images=f.max_images,
            skip_bad=f.skip_bad,
            num_shards=f.num_shards,
            workers=f.workers,
            with_labels=f.labels,
        )
    except DataError as e:
        sys.exit(f"dataset_tool: {e}")
    seconds = time.monotonic() - start
    logging.info("Done in %.1f s (%.1f images/s).", seconds, meta["count"] / seconds)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
