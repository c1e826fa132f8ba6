"""``--mode=plot``: a run's ``metrics.jsonl`` as one PNG of curves, drawn with PIL (no TensorBoard, no matplotlib).

One panel per group of series that share a scale: each phase's loss, the loss terms, the
gradient norms, D's outputs, augmentation (ADA's p), throughput, and one panel per evaluation
metric (``eval/*``). A panel lists its series in a legend, with its y range and step range on
the axes.

    picture = plot.curves(plot.read_series("runs/digits/metrics.jsonl"))   # uint8 (H, W, 3)
"""

import json
import math
import os
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from clr_gan_jax.errors import UserError

PANEL_WIDTH, PANEL_HEIGHT = 560, 300
COLUMNS = 2
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 136, 28, 40  # the legend is in the right margin
TICKS = 5
# matplotlib's tab10 colours: distinct on white and for the common colour-vision deficiencies.
PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
AXIS, GRID, TEXT = (0, 0, 0), (225, 225, 225), (40, 40, 40)
MARKERS_UP_TO = 30  # a series with at most this many points gets a dot at each one (evaluations)

# Panels in order: a title and which metric names go in it; a name goes in the first panel that takes it.
PANELS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("phase losses", lambda k: k.endswith("_loss")),
    ("gradient norms", lambda k: k.endswith("_grad_norm")),
    ("D outputs", lambda k: k.startswith("d_real_") or k.startswith("d_fake_")),
    ("augmentation", lambda k: k.startswith("ada") or k.startswith("augment")),
    ("images per second", lambda k: k == "images_per_sec"),
    ("loss terms", lambda k: True),
)
LEFT_OUT = ("steps_per_sec",)  # images_per_sec says the same


def read_series(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """metrics.jsonl -> {name: (steps, values)}, sorted by step, non-finite values and torn lines left out."""
    if not os.path.isfile(path):
        raise UserError(f"{path} does not exist: --mode=plot reads the metrics.jsonl that training writes")
    points: dict[str, dict[int, float]] = {}
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
                step = int(record.pop("step"))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            for name, value in record.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    points.setdefault(name, {})[step] = float(value)
    if not points:
        raise UserError(f"{path} holds no metric lines yet: plot once training has logged")
    return {
        name: (np.array(sorted(by_step)), np.array([by_step[s] for s in sorted(by_step)]))
        for name, by_step in points.items()
    }


def group_panels(names) -> list[tuple[str, list[str]]]:
    """[(title, names)] of the non-empty panels: `PANELS` in order, then one panel per evaluation metric."""
    groups = {title: [] for title, _ in PANELS}
    evaluations = []
    for name in sorted(set(names) - set(LEFT_OUT)):
        if name.startswith("eval/"):
            evaluations.append(name)
            continue
        title = next(title for title, takes in PANELS if takes(name))
        groups[title].append(name)
    panels = [(title, members) for title, members in groups.items() if members]
    return panels + [(name.removeprefix("eval/"), [name]) for name in evaluations]


def _font(size: int = 12):
    return ImageFont.load_default(size=size)


def _ticks(low: float, high: float) -> np.ndarray:
    return np.linspace(low, high, TICKS)


def _panel(title: str, series: dict[str, tuple[np.ndarray, np.ndarray]], x_range: tuple[float, float]) -> Image.Image:
    """One panel: axes, grid, a line per series in palette order, a legend, the title."""
    image = Image.new("RGB", (PANEL_WIDTH, PANEL_HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    left, top = MARGIN_LEFT, MARGIN_TOP
    right, bottom = PANEL_WIDTH - MARGIN_RIGHT, PANEL_HEIGHT - MARGIN_BOTTOM
    values = np.concatenate([v for _, v in series.values()])
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low) if high > low else max(abs(high), 1.0) * 0.1
    low, high = low - pad, high + pad
    x_low, x_high = x_range

    def to_pixels(steps: np.ndarray, v: np.ndarray) -> np.ndarray:
        x = left + (steps - x_low) / max(x_high - x_low, 1) * (right - left)
        y = bottom - (v - low) / (high - low) * (bottom - top)
        return np.stack([x, y], axis=1)

    for y_value, (_, y) in zip(_ticks(low, high), to_pixels(np.zeros(TICKS), _ticks(low, high))):
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.text((left - 4, y), f"{y_value:.4g}", fill=TEXT, font=font, anchor="rm")
    for x_value, (x, _) in zip(_ticks(x_low, x_high), to_pixels(_ticks(x_low, x_high), np.zeros(TICKS))):
        draw.line([(x, top), (x, bottom)], fill=GRID)
        draw.text((x, bottom + 4), f"{x_value:.0f}", fill=TEXT, font=font, anchor="ma")
    draw.rectangle([left, top, right, bottom], outline=AXIS)
    draw.text(((left + right) / 2, PANEL_HEIGHT - 4), "step", fill=TEXT, font=font, anchor="md")
    draw.text(((left + right) / 2, 4), title, fill=TEXT, font=_font(14), anchor="ma")
    for index, (name, (steps, v)) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        pixels = to_pixels(steps, v)
        if len(pixels) > 1:
            draw.line(pixels.ravel().tolist(), fill=colour, width=2)
        if len(pixels) <= MARKERS_UP_TO:
            for x, y in pixels:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        legend_y = top + 6 + 16 * index
        draw.line([(right + 8, legend_y), (right + 24, legend_y)], fill=colour, width=3)
        draw.text((right + 28, legend_y), name.removeprefix("eval/"), fill=TEXT, font=font, anchor="lm")
    return image


def curves(series: dict[str, tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The panels of `group_panels` in a grid of `COLUMNS` columns, all on the same step axis: uint8 (H, W, 3)."""
    panels = group_panels(series)
    steps = np.concatenate([s for s, _ in series.values()])
    x_range = (0.0, float(steps.max()))
    columns = min(COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    canvas = Image.new("RGB", (columns * PANEL_WIDTH, rows * PANEL_HEIGHT), "white")
    for index, (title, names) in enumerate(panels):
        row, column = divmod(index, columns)
        panel = _panel(title, {name: series[name] for name in names}, x_range)
        canvas.paste(panel, (column * PANEL_WIDTH, row * PANEL_HEIGHT))
    return np.asarray(canvas)


def plot_run(workdir: str, output: str | None = None) -> str:
    """Writes the curves of ``<workdir>/metrics.jsonl`` to ``output`` (default ``<workdir>/curves.png``)."""
    picture = curves(read_series(os.path.join(workdir, "metrics.jsonl")))
    output = output or os.path.join(workdir, "curves.png")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    Image.fromarray(picture).save(output)
    return output
