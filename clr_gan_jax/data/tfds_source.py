"""TFDS image datasets through `tfds.data_source`: random access to array_record files.

Reading needs tensorflow-datasets but not TensorFlow. Preparing a dataset once
does need TensorFlow (TFDS encodes images with it):

  pip install -e .[tfds]
  tfds build cifar10 --file_format=array_record

Nothing is downloaded at run time: a dataset that is not prepared raises a
`DataError` with that command.
"""

import numpy as np

from clr_gan_jax.data.image_transforms import DataError, ImageTransform

# The DCGAN convention for CelebA (carpedm20/DCGAN-tensorflow and the GAN papers
# following it): a centred 108x108 crop of the aligned 178x218 images, resized to
# 64x64. Score-model and VAE papers often crop 140 or 148 instead.
CELEB_A_CROP = 108


def _prepare_command(name: str, data_dir) -> str:
    where = f" --data_dir={data_dir}" if data_dir else ""
    return f"pip install -e .[tfds] && tfds build {name} --file_format=array_record{where}"


class TfdsImageSource:
    """A grain random-access source over one split of a prepared TFDS image dataset.

    ``source[i] -> {'image': uint8 (H, W, C), 'label': int32}``; ``label_key``
    names the class feature (None: no labels, label 0).
    """

    def __init__(
        self,
        name: str,
        transform: ImageTransform,
        *,
        split: str = "train",
        data_dir=None,
        label_key: str | None = None,
        num_classes: int = 0,
    ):
        try:
            import tensorflow_datasets as tfds
        except ImportError as e:
            raise DataError(f"Reading TFDS dataset {name} needs tensorflow-datasets: pip install -e .[tfds]") from e
        self.name, self.split, self.transform = name, split, transform
        self.num_classes = num_classes
        self._label_key = label_key
        try:
            self._examples = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
        except (NotImplementedError, FileNotFoundError) as e:
            location = data_dir or "$TFDS_DATA_DIR or ~/tensorflow_datasets"
            raise DataError(
                f"TFDS dataset {name} is not prepared as array_record in {location}; prepare it once with: "
                f"{_prepare_command(name, data_dir)}"
            ) from e

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.transform.shape

    def __len__(self) -> int:
        return len(self._examples)

    def __getitem__(self, index) -> dict:
        example = self._examples[index]
        image = self.transform.from_array(np.asarray(example["image"], np.uint8), f"{self.name}[{index}]")
        label = example[self._label_key] if self._label_key else 0
        return {"image": image, "label": np.int32(label)}


def cifar10(split: str = "train", *, resolution: int = 32, data_dir=None, resize_filter: str = "lanczos"):
    """CIFAR-10 (32x32, 10 classes); other resolutions are resized."""
    transform_name = "none" if resolution == 32 else "center-crop"
    transform = ImageTransform.create(resolution, transform_name, resize_filter=resize_filter)
    return TfdsImageSource("cifar10", transform, split=split, data_dir=data_dir, label_key="label", num_classes=10)


def celeb_a(
    split: str = "train",
    *,
    resolution: int = 64,
    crop_size: int = CELEB_A_CROP,
    data_dir=None,
    resize_filter: str = "lanczos",
):
    """CelebA, aligned: a centred ``crop_size`` square resized to ``resolution``; no labels."""
    transform = ImageTransform.create(resolution, "center-crop", crop_size=crop_size, resize_filter=resize_filter)
    return TfdsImageSource("celeb_a", transform, split=split, data_dir=data_dir)


def lsun(
    category: str,
    split: str = "train",
    *,
    resolution: int = 256,
    data_dir=None,
    resize_filter: str = "lanczos",
):
    """An LSUN category (e.g. 'church_outdoor', 'bedroom'): the centred square resized to ``resolution``.

    Same region as resizing the shorter side and centre-cropping; no labels.
    """
    transform = ImageTransform.create(resolution, "center-crop", resize_filter=resize_filter)
    return TfdsImageSource(f"lsun/{category}", transform, split=split, data_dir=data_dir)
