"""Plotting helpers shared by the chapters (matplotlib only).

Every figure gets a title and labelled axes. Each function draws on ``ax`` when given one and
returns the axes (or figure) it drew on, so chapters can compose figures.
"""
from __future__ import annotations

import numpy as np


def plot_history(histories, metric: str = "accuracy", *, ax=None, title: str | None = None):
    """Learning curves: ``metric`` and ``val_<metric>`` per epoch from Keras ``History`` objects.

    ``histories`` is one History (or its ``.history`` dict), or a dict ``{label: History}`` to
    compare several runs on one plot (training dashed, validation solid).
    """
    import matplotlib.pyplot as plt

    if not isinstance(histories, dict) or "loss" in histories:
        histories = {"": histories}
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for i, (label, h) in enumerate(histories.items()):
        h = getattr(h, "history", h)
        if metric not in h:
            raise ValueError(f"metric {metric!r} is not in the history; it has {sorted(h)}")
        epochs = np.arange(1, len(h[metric]) + 1)
        color = f"C{i}"
        prefix = f"{label}: " if label else ""
        ax.plot(epochs, h[metric], "--", color=color, label=f"{prefix}training")
        if f"val_{metric}" in h:
            ax.plot(epochs, h[f"val_{metric}"], "-", color=color, label=f"{prefix}validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title or f"Learning curves ({metric})")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return ax


def show_images(images, titles=None, *, ncols: int = 8, cmap: str = "gray", suptitle: str | None = None,
                size: float = 1.4, vmin=None, vmax=None):
    """A grid of images (grey (H, W) / (H, W, 1) or colour (H, W, 3)) with optional titles."""
    import matplotlib.pyplot as plt

    images = list(images)
    if not images:
        raise ValueError("images must contain at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles has {len(titles)} entries for {len(images)} images")
    ncols = max(1, min(int(ncols), len(images)))
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < len(images):
            img = np.asarray(images[i])
            if img.ndim == 3 and img.shape[-1] == 1:
                img = img[..., 0]
            ax.imshow(img, cmap=None if img.ndim == 3 else cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize="small")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
