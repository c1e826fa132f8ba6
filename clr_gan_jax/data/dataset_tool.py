r"""StyleGAN2-ADA's dataset tool: an image folder, zip or LSUN LMDB folder into a training dataset.

  python -m clr_gan_jax.data.dataset_tool --source=/tmp/ffhq-unpacked --dest=~/datasets/ffhq256x256 \
      --width=256 --height=256 --resize-filter=box
  python -m clr_gan_jax.data.dataset_tool --source=~/downloads/lsun/raw/car_lmdb --dest=~/datasets/lsuncar200k \
      --transform=center-crop-wide --width=512 --height=384 --max_images=200000

The options mean what they mean in StyleGAN2-ADA's dataset_tool.py (--max-images
and --max_images, --resize-filter and --resize_filter both work):
  --source     a folder (read recursively), a zip (StyleGAN2-ADA's dataset zips
               included, labels kept) or an LMDB folder as LSUN's ``*_lmdb``
               (needs ``pip install -e .[lmdb]``).
  --width/--height without --transform: every image is resized to that size;
               the aspect ratio is NOT preserved. Without a size the images keep
               theirs, which must be square and the same for all.
  --transform  center-crop or center-crop-wide, as defined in `image_transforms`;
               center-crop-wide drops images too small for its crop, as there.
  --max-images reads the first N source images (so dropped and skipped ones leave
               fewer in the output, as there).
Only an image that cannot be read or decoded, or has 16-bit/float pixels, is bad:
it stops the conversion with a one-line error naming it, or with --skip-bad is
skipped and listed (log and dataset.json). On any error, Ctrl-C or SIGTERM the
partial output is removed.

Output, by --dest:
  a folder     array_record shards ``images.array_record-0000i-of-0000n`` and a
               dataset.json (shape, count, labels, shard list, source, options,
               skipped and dropped images), read by `ArrayRecordImageSource`.
  a .zip       StyleGAN2-ADA's format: uncompressed PNGs named by source index
               (``00000/img00000000.png``) and dataset.json with the labels (plus
               the same summary keys), read by `ImageFolderSource` or StyleGAN2-ADA.
StyleGAN2-ADA writes PNGs into a folder dest and requires power-of-two sizes; here
a folder gets shards and any size is accepted.

Why raw pixels in the shards: random access through grain's ArrayRecordDataSource,
one process on the project's 2-core CPU, synthetic photo-like images
(bench/data_sources.py): at 256 px raw records read 15,000 images/s, PNG records
1,900 (uncompressed PNG) or 640 (zlib level 6); at 32 px 64,000 against 12,000
(figures halve when the machine is busy; the ratios hold). PNG would save a third
to a half of the disk, but decoding, not disk, limits the input pipeline of a CPU
host feeding accelerators, so raw it is. Nothing is pickled.
"""

import io
import json
import math
import multiprocessing
import os
import pathlib
import shutil
import signal
import sys
import time
import zipfile

import numpy as np
from absl import app, flags, logging
from array_record.python.array_record_module import ArrayRecordWriter
from PIL import Image

from clr_gan_jax.data import array_record_source
from clr_gan_jax.data.image_files import Labels, Progress, first_image_size, open_store
from clr_gan_jax.data.image_transforms import (
    RESIZE_FILTERS,
    TRANSFORMS,
    BadImageError,
    DataError,
    ImageTransform,
    UnfitImageError,
    load_image,
)
from clr_gan_jax.errors import UserError

SHARD_BYTES = 1 << 30  # default shard size when --num-shards is not given
_BLOCK_PER_WORKER = 32  # images each worker decodes between hand-offs
# A worker process starts in about 3 s (it imports the package, JAX included): not worth it for fewer images.
_MIN_IMAGES_PER_WORKER = 256


def _decode(store, transform, name):
    """(pixels, None) or (None, DataError): errors travel back from worker processes as values."""
    try:
        return load_image(store.read(name), name, transform), None
    except DataError as e:
        return None, e


_worker_args = None


def _init_worker(store, transform):
    global _worker_args
    _worker_args = (store, transform)


def _decode_in_worker(name):
    return _decode(*_worker_args, name)


def _decoded(store, transform, names, workers):
    """Yields (name, pixels, error) in order, decoding ahead in ``workers`` processes."""
    workers = min(workers, len(names) // _MIN_IMAGES_PER_WORKER)
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
    """A folder of array_record shards of ``per_shard`` raw-pixel records each, and its dataset.json."""

    def __init__(self, folder: pathlib.Path, per_shard: int):
        folder.mkdir()
        self.folder, self.per_shard = folder, per_shard
        self.counts, self.labels = [], []
        self._writer = None

    def add(self, index: int, pixels: np.ndarray, label: int) -> None:
        if self._writer is None or self.counts[-1] == self.per_shard:
            self.close()
            self._writer = ArrayRecordWriter(str(self._temp_name(len(self.counts))), array_record_source.WRITER_OPTIONS)
            self.counts.append(0)
        self._writer.write(pixels.tobytes())
        self.counts[-1] += 1
        self.labels.append(label)

    def finish(self, summary: dict, labelled: bool) -> dict:
        self.close()
        shards = []
        for i, count in enumerate(self.counts):
            name = array_record_source.shard_name(i, len(self.counts))
            self._temp_name(i).rename(self.folder / name)
            shards.append({"file": name, "count": count})
        metadata = {
            "format": array_record_source.FORMAT,
            "record": array_record_source.RECORD_LAYOUT,
            **summary,
            "labels": self.labels if labelled else None,
            "shards": shards,
        }
        (self.folder / array_record_source.METADATA_FILE).write_text(json.dumps(metadata, indent=1))
        return metadata

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _temp_name(self, index: int) -> pathlib.Path:
        return self.folder / f"shard-{index:05d}.partial"


class _ZipWriter:
    """StyleGAN2-ADA's dataset zip: uncompressed PNGs named by source index, dataset.json with the labels."""

    def __init__(self, path: pathlib.Path):
        self._archive = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED)
        self.labels = []

    def add(self, index: int, pixels: np.ndarray, label: int) -> None:
        name = f"{index // 1000:05d}/img{index:08d}.png"
        png = io.BytesIO()
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(png, "png", compress_level=0)
        self._archive.writestr(name, png.getvalue())
        self.labels.append([name, label])

    def finish(self, summary: dict, labelled: bool) -> dict:
        metadata = {"labels": self.labels if labelled else None, **summary}
        self._archive.writestr(array_record_source.METADATA_FILE, json.dumps(metadata))
        self.close()
        return metadata

    def close(self) -> None:
        self._archive.close()


def _check_dest(dest: pathlib.Path, is_zip: bool) -> None:
    if is_zip and dest.exists():
        raise DataError(f"--dest {dest} exists; give a new file name.")
    if not is_zip and dest.exists() and not dest.is_dir():
        raise DataError(f"--dest {dest} is a file; give a new or empty folder (or a new .zip).")
    if not is_zip and dest.is_dir() and any(dest.iterdir()):
        raise DataError(f"--dest {dest} is not empty; give a new or empty folder (or a new .zip).")


def _remove(path: pathlib.Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    else:
        return
    logging.info("Removed the partial output %s.", path)


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
    """Converts ``source`` (folder, zip or LMDB folder) into ``dest``; returns the written dataset.json.

    ``dest`` ending in .zip gets StyleGAN2-ADA's zip format, any other path a new
    (or empty) folder of shards. ``resolution`` is the output side, or (width,
    height) for center-crop-wide; None keeps the size of the (square) images, with
    transform 'none'. ``transform`` is taken as `ImageTransform` defines it: 'none'
    requires every image to have the size, 'resize' resizes (the tool's
    --width/--height). ``max_images`` takes the first N source images.
    ``num_shards`` None makes shards of about 1 GiB. ``with_labels`` reads the
    source's StyleGAN2-ADA dataset.json when present.
    """
    store = open_store(source)
    dest = pathlib.Path(dest).expanduser()
    is_zip = dest.suffix.lower() == ".zip"
    _check_dest(dest, is_zip)
    if max_images is not None and max_images < 1:
        raise DataError(f"--max-images={max_images} must be at least 1.")
    if num_shards is not None and (is_zip or num_shards < 1):
        raise DataError(f"--num-shards={num_shards}: give a number >= 1, and only for a folder --dest.")
    names = store.image_names(max_images)
    if not names:
        raise DataError(f"No images under {store.path}; --source must hold image files (PNG, JPEG, WebP, ...).")
    if resolution is None:
        if transform != "none":
            raise DataError(f"--transform={transform} needs an output size: --width and --height (or --resolution).")
        resolution = first_image_size(store, names, skip_bad)
    image_transform = ImageTransform.create(resolution, transform, resize_filter=resize_filter, channels=channels)
    labels = Labels(store) if with_labels else None
    if num_shards is None:
        num_shards = math.ceil(len(names) * math.prod(image_transform.shape) / SHARD_BYTES)
    per_shard = math.ceil(len(names) / min(num_shards, len(names)))

    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    decoded = _decoded(store, image_transform, names, workers)
    writer = None
    try:
        writer = _ZipWriter(partial) if is_zip else _ShardWriter(partial, per_shard)
        skipped, dropped = [], []
        progress = Progress(f"Converting {store.path}", len(names))
        for index, (name, pixels, error) in enumerate(decoded):
            if isinstance(error, UnfitImageError):
                dropped.append({"name": name, "reason": error.problem})
            elif isinstance(error, BadImageError) and skip_bad:
                logging.warning("Skipping bad image %s %s.", name, error.problem)
                skipped.append({"name": name, "reason": error.problem})
            elif error is not None:
                raise error
            else:
                writer.add(index, pixels, labels(name) if labels else 0)
            progress.update(index + 1, len(skipped) + len(dropped))
        count = len(names) - len(skipped) - len(dropped)
        if not count:
            raise DataError(
                f"No image under {store.path} can be used ({len(skipped)} bad, {len(dropped)} too small for the "
                "crop); see the log."
            )
        progress.update(len(names), len(skipped) + len(dropped), force=True)
        summary = {
            "shape": list(image_transform.shape),
            "resolution": image_transform.width,
            "channels": channels,
            "count": count,
            "num_classes": labels.num_classes if labels else 0,
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
            "dropped": dropped,
        }
        metadata = writer.finish(summary, labelled=bool(labels and labels.num_classes))
        if dest.is_dir():
            dest.rmdir()
        partial.rename(dest)
    finally:
        decoded.close()  # stops the worker processes
        if writer is not None:
            writer.close()
        _remove(partial)
    if dropped:
        logging.info("Dropped %d images too small for the %s crop (listed in dataset.json).", len(dropped), transform)
    logging.info("Wrote %d images (%d bad ones skipped) to %s.", count, len(skipped), dest)
    return metadata


def define_flags(flag_values: flags.FlagValues) -> None:
    """The command line's flags, defined on ``flag_values`` (the program uses absl's global FLAGS)."""
    define = {"flag_values": flag_values}
    flags.DEFINE_string("source", None, "Image folder or zip (read recursively), or LSUN LMDB folder.", **define)
    flags.DEFINE_string("dest", None, "New .zip (StyleGAN2-ADA format), or new or empty folder (shards).", **define)
    flags.DEFINE_integer("width", None, "Output width; without --transform every image is resized to it.", **define)
    flags.DEFINE_integer("height", None, "Output height; without --transform every image is resized to it.", **define)
    flags.DEFINE_integer("resolution", None, "Output side: --width and --height in one.", **define)
    flags.DEFINE_enum(
        "transform",
        None,
        TRANSFORMS,
        "Crop/resize mode. Default: resize to --width x --height when given (aspect ratio NOT preserved, as in "
        "StyleGAN2-ADA), else keep the input size. center-crop: largest centred square, resized. center-crop-wide: "
        "StyleGAN2-ADA's LSUN car crop, letterboxed on a black square; drops images too small for it. none: images "
        "must already have the size.",
        **define,
    )
    flags.DEFINE_enum(
        "resize_filter", "lanczos", list(RESIZE_FILTERS), "Resize filter (box: StyleGAN2's FFHQ-256 FIDs).", **define
    )
    flags.DEFINE_integer("max_images", None, "Read only the first N source images.", **define)
    flags.DEFINE_enum("channels", "3", ["1", "3"], "1: grayscale, 3: RGB (grayscale inputs are expanded).", **define)
    flags.DEFINE_boolean("skip_bad", False, "Skip unreadable or undecodable images (listed), not fail.", **define)
    flags.DEFINE_integer("num_shards", None, "Number of shards (folder --dest); default: about 1 GiB each.", **define)
    flags.DEFINE_integer("workers", os.cpu_count(), "Decoding processes.", **define)
    flags.DEFINE_boolean("labels", True, "Keep class labels from the source's StyleGAN2-ADA dataset.json.", **define)
    for name in ("resize_filter", "max_images", "skip_bad", "num_shards"):
        flags.DEFINE_alias(name.replace("_", "-"), name, **define)
    flags.mark_flags_as_required(["source", "dest"], **define)


def _size_and_transform(f: flags.FlagValues):
    """(resolution, transform) from --width/--height/--resolution and --transform, as StyleGAN2-ADA reads them."""
    sizes = [size for size in (f.resolution, f.width, f.height) if size is not None]
    transform = f.transform or ("resize" if sizes else "none")
    if transform == "center-crop-wide":
        if f.width is None or f.height is None:
            raise DataError("--transform=center-crop-wide needs --width and --height.")
        if f.resolution not in (None, f.width):
            raise DataError(f"--resolution={f.resolution} differs from --width={f.width}; give one of them.")
        return (f.width, f.height), transform
    if len(set(sizes)) > 1:
        raise DataError(
            f"Output must be square, got sizes {sorted(set(sizes))} from --resolution/--width/--height; "
            "use --transform=center-crop-wide for wide crops."
        )
    return (sizes[0] if sizes else None), transform


def convert_from_flags(f: flags.FlagValues) -> dict:
    """`convert_dataset` with the parsed command line ``f``."""
    resolution, transform = _size_and_transform(f)
    return convert_dataset(
        f.source,
        f.dest,
        resolution,
        transform,
        resize_filter=f.resize_filter,
        channels=int(f.channels),
        max_images=f.max_images,
        skip_bad=f.skip_bad,
        num_shards=f.num_shards,
        workers=f.workers,
        with_labels=f.labels,
    )


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the partial output is removed on the way out."""


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
    raise _Terminated()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    signal.signal(signal.SIGTERM, _raise_terminated)
    start = time.monotonic()
    try:
        meta = convert_from_flags(flags.FLAGS)
    except UserError as e:
        sys.exit(f"dataset_tool: {e}")
    except _Terminated:
        print(f"dataset_tool: stopped by SIGTERM; nothing was written to {flags.FLAGS.dest}.", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    seconds = time.monotonic() - start
    logging.info("Done in %.1f s (%.1f images/s).", seconds, meta["count"] / seconds)


if __name__ == "__main__":
    define_flags(flags.FLAGS)
    app.run(main)
