"""Random-access read + decode speed of the image sources on this CPU (one process).

  python bench/data_sources.py [--num_images=400]

Writes synthetic photo-like images (smooth colour fields plus noise; PNG keeps
about 2/3 of their raw size) to a temporary folder, converts them with
the dataset tool, and times ``source[i]`` over a random permutation for:
raw-pixel array_record shards (the tool's format), PNG records in array_record
(the rejected alternative, written here only), and direct folder reading.
Then the whole training pipeline (`clr_gan_jax.data.make_dataset`: global shuffle, x-flip,
batches of 64) over the raw shards and the PNG folder, with 0 and 2 grain workers.
"""

import io
import pathlib
import tempfile
import time

import grain
import numpy as np
from absl import app, flags
from array_record.python.array_record_module import ArrayRecordWriter
from PIL import Image

from clr_gan_jax.data import array_record_source, make_dataset, make_iterator
from clr_gan_jax.data.array_record_source import ArrayRecordImageSource
from clr_gan_jax.data.dataset_tool import convert_dataset
from clr_gan_jax.data.image_files import ImageFolderSource

_NUM_IMAGES = flags.DEFINE_integer("num_images", 400, "Images per resolution.")
_RESOLUTIONS = flags.DEFINE_list("resolutions", ["32", "256"], "Image sides to time.")
_WORKERS = flags.DEFINE_list("workers", ["0", "2"], "grain worker processes for the pipeline timings.")
_BATCH = 64


def photo_like(rng, side: int) -> np.ndarray:
    field = Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(field, np.float32) + rng.normal(0, 6, (side, side, 3)), 0, 255).astype(np.uint8)


class PngRecords:
    """PNG-encoded records read through grain, for comparison only."""

    def __init__(self, path, images, compress_level):
        writer = ArrayRecordWriter(str(path), array_record_source.WRITER_OPTIONS)
        for pixels in images:
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="png", compress_level=compress_level)
            writer.write(buffer.getvalue())
        writer.close()
        self.bytes_per_image = path.stat().st_size / len(images)
        self._records = grain.sources.ArrayRecordDataSource([str(path)])

    def __len__(self):
        return len(self._records)

    def __getitem__(self, index):
        return {"image": np.asarray(Image.open(io.BytesIO(self._records[index])))}


def images_per_second(source, seconds: float = 2.0) -> float:
    order = np.random.default_rng(0).permutation(len(source))
    source[int(order[0])]  # open files outside the timing
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for index in order:
            source[int(index)]
        done += len(order)
    return done / (time.perf_counter() - start)


def pipeline_images_per_second(source, num_workers: int, seconds: float = 4.0) -> float:
    """Images/s out of the training pipeline, after its first batch (worker start-up excluded)."""
    iterator = make_iterator(make_dataset(source, batch_size=_BATCH, seed=0, mirror=True), num_workers)
    next(iterator)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(iterator)
        done += _BATCH
    return done / (time.perf_counter() - start)


def main(argv):
    del argv
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for side in map(int, _RESOLUTIONS.value):
            png_folder, jpeg_folder = tmp / f"png{side}", tmp / f"jpeg{side}"
            png_folder.mkdir()
            jpeg_folder.mkdir()
            images = [photo_like(rng, side) for _ in range(_NUM_IMAGES.value)]
            for i, pixels in enumerate(images):
                Image.fromarray(pixels).save(png_folder / f"{i:06d}.png")
                Image.fromarray(pixels).save(jpeg_folder / f"{i:06d}.jpg", quality=90)
            start = time.perf_counter()
            convert_dataset(png_folder, tmp / f"raw{side}")
            convert_rate = len(images) / (time.perf_counter() - start)
            raw = ArrayRecordImageSource(tmp / f"raw{side}")
            png0 = PngRecords(tmp / f"png{side}-0.array_record", images, compress_level=0)
            png6 = PngRecords(tmp / f"png{side}-6.array_record", images, compress_level=6)
            candidates = [
                ("array_record raw (dataset tool)", raw, np.prod(raw.shape)),
                ("array_record PNG, zlib level 0", png0, png0.bytes_per_image),
                ("array_record PNG, zlib level 6", png6, png6.bytes_per_image),
                ("folder of PNG files", ImageFolderSource(png_folder), None),
                ("folder of JPEG files (q90)", ImageFolderSource(jpeg_folder), None),
            ]
            print(f"\n{side}x{side} px, {len(images)} images; dataset tool converted {convert_rate:.0f} images/s")
            for name, source, size in candidates:
                size_text = f"{size / 1024:7.1f} KiB/image" if size else " " * 16
                print(f"  {name:34s} {size_text}  {images_per_second(source):9.0f} images/s")
            for name, source in (("raw shards", raw), ("PNG folder", ImageFolderSource(png_folder))):
                for workers in map(int, _WORKERS.value):
                    rate = pipeline_images_per_second(source, workers)
                    print(f"  pipeline over {name:20s} {workers} workers, batch {_BATCH}: {rate:9.0f} images/s")


if __name__ == "__main__":
    app.run(main)
