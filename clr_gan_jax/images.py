"""Turning samples into pictures: image grids and 2-D scatter plots, as uint8 arrays and PNG files."""

import math
import os

import numpy as np
from PIL import Image, ImageDraw


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Model outputs in [-1, 1] -> uint8 as the official generate.py: x * 127.5 + 128, clipped, truncated."""
    return np.clip(np.asarray(images, np.float32) * 127.5 + 128, 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """(N, H, W, C) uint8 -> one (rows*(H+pad)+pad, columns*(W+pad)+pad, C) uint8 grid on black."""
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.zeros((rows * (h + pad) + pad, columns * (w + pad) + pad, c), np.uint8)
    for i, image in enumerate(images):
        r, q = divmod(i, columns)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + q * (w + pad) : pad + q * (w + pad) + w] = image
    return grid


def with_channels_apart(grid: np.ndarray, gap: int = 4) -> np.ndarray:
    """An RGB grid followed, left to right, by its R, G and B channels as grayscale grids: stacked digits overlay
    three images, one per channel, which only read apart."""
    spacer = np.full((grid.shape[0], gap, 3), 128, np.uint8)
    panels = [grid]
    for channel in range(3):
        panels += [spacer, np.repeat(grid[..., channel : channel + 1], 3, axis=-1)]
    return np.concatenate(panels, axis=1)


def scatter_plot(real: np.ndarray, fake: np.ndarray, size: int = 512, extent: float = 1.05) -> np.ndarray:
    """Real points (grey) and generated points (red) in [-extent, extent]^2 -> (size, size, 3) uint8."""
    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)

    def pixels(points):
        return (np.asarray(points) * np.array([1, -1]) + extent) / (2 * extent) * (size - 1)

    for points, colour in ((real, (150, 150, 150)), (fake, (220, 30, 30))):
        for x, y in pixels(points):
            draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=colour)
    return np.asarray(canvas)


def save_png(path: str, image: np.ndarray, min_side: int = 256):
    """Writes a uint8 HWC (C = 1 or 3) image, upscaled by an integer factor (nearest) to at least ``min_side``."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    scale = max(1, math.ceil(min_side / max(image.shape[:2])))
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST).save(path)
