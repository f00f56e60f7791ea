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


def _text_colour(rgba) -> str:
    """Black on light cells, white on dark ones."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def plot_matrix(values, *, ax=None, title: str | None = None, fmt: str = "{:g}", cmap: str = "Greys",
                vmin=None, vmax=None, boxes=None, hide=None, xlabel: str = "column", ylabel: str = "row",
                fontsize="medium"):
    """A small 2-D array as coloured cells with each value written in its cell.

    ``boxes`` outlines windows: a list of ``(row, col, height, width)`` or
    ``(row, col, height, width, colour)``. ``hide`` is a boolean mask of cells left blank and
    marked "?" (values not computed yet). Rows count down from the top, as in an image.
    Taught in the chapter "Convolutional neural networks" (filters, feature maps, pooling).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    arr = np.asarray(values, dtype=float)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f"values must be a 2-D array (rows, columns), got shape {arr.shape}")
    mask = np.zeros(arr.shape, bool) if hide is None else np.asarray(hide, bool)
    if mask.shape != arr.shape:
        raise ValueError(f"hide must have the shape of values {arr.shape}, got {mask.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * arr.shape[1] + 1, 0.5 * arr.shape[0] + 0.8))
    shown = np.where(mask, np.nan, arr)
    finite = arr[np.isfinite(arr)]
    lo = vmin if vmin is not None else (finite.min() if finite.size else 0.0)
    hi = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    image = ax.imshow(shown, cmap=cmap, vmin=lo, vmax=hi)
    colours = plt.get_cmap(cmap)
    for (i, j), v in np.ndenumerate(arr):
        if mask[i, j]:
            ax.text(j, i, "?", ha="center", va="center", color="0.5", fontsize=fontsize)
        else:
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=fontsize,
                    color=_text_colour(colours((v - lo) / (hi - lo))))
    for k, box in enumerate(boxes or []):
        r, c, h, w, *colour = box
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), w, h, fill=False, lw=3,
                               edgecolor=colour[0] if colour else f"C{3 + k}"))
    ax.set_xticks(range(arr.shape[1]))
    ax.set_yticks(range(arr.shape[0]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def plot_convolution_steps(image, kernel, positions=None, *, stride=1, fmt: str = "{:g}"):
    """A filter sliding over a grey image, one step per column.

    The first column shows the filter. Each further column shows, on top, the image with the
    filter's window at one output position ``(i, j)`` outlined and, below, the output (feature)
    map with the values computed so far (the others are "?"), the new one outlined.
    ``image`` is (H, W) or (H, W, 1); ``kernel`` is (kh, kw). ``positions`` defaults to every
    output position in order. Returns the figure. Taught in "Convolutional neural networks".
    """
    import matplotlib.pyplot as plt

    from . import _validate
    from .cnn import conv2d

    img = _validate.array(image, "image", ndim=(2, 3))
    if img.ndim == 3:
        if img.shape[-1] != 1:
            raise ValueError(f"image must be grey, (H, W) or (H, W, 1), got shape {img.shape}")
        img = img[..., 0]
    ker = _validate.array(kernel, "kernel", ndim=2)
    sh, sw = _validate.pair(stride, "stride")
    out = conv2d(img[:, :, None], ker, strides=(sh, sw))[:, :, 0]
    if positions is None:
        positions = [(i, j) for i in range(out.shape[0]) for j in range(out.shape[1])]
    positions = [tuple(int(v) for v in p) for p in positions]
    if not positions:
        raise ValueError("positions must contain at least one output position (i, j)")
    for p in positions:
        if len(p) != 2 or not (0 <= p[0] < out.shape[0] and 0 <= p[1] < out.shape[1]):
            raise ValueError(f"positions must be (row, column) pairs inside the {out.shape[0]} x {out.shape[1]} "
                             f"output, got {p}")
    order = {(i, j): n for n, (i, j) in enumerate((i, j) for i in range(out.shape[0]) for j in range(out.shape[1]))}
    kh, kw = ker.shape
    ncols = len(positions) + 1
    fig, axes = plt.subplots(2, ncols, figsize=(2.1 * ncols, 5.0), squeeze=False, layout="constrained",
                             gridspec_kw={"height_ratios": [img.shape[0], max(out.shape[0], 2)]})
    lim = np.abs(ker).max() or 1.0
    plot_matrix(ker, ax=axes[0, 0], title=f"filter ({kh} x {kw})", fmt=fmt, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[1, 0].axis("off")
    axes[1, 0].text(0.5, 0.5, f"stride {sh} x {sw}\n\nout[i, j] = sum of\nwindow x filter",
                    ha="center", va="center", transform=axes[1, 0].transAxes)
    for col, (i, j) in enumerate(positions, start=1):
        plot_matrix(img, ax=axes[0, col], title=f"input, window at ({i * sh}, {j * sw})", fmt=fmt,
                    boxes=[(i * sh, j * sw, kh, kw, "C3")], vmin=img.min(), vmax=img.max())
        done = np.array([[order[(a, b)] > order[(i, j)] for b in range(out.shape[1])] for a in range(out.shape[0])])
        plot_matrix(out, ax=axes[1, col], title=f"out[{i}, {j}] = {fmt.format(out[i, j])}", fmt=fmt, cmap="RdBu_r",
                    vmin=-np.abs(out).max() or -1, vmax=np.abs(out).max() or 1, hide=done,
                    boxes=[(i, j, 1, 1, "C3")])
    fig.suptitle("A filter sliding over an image: each window gives one value of the feature map")
    return fig


def plot_feature_maps(maps, titles=None, *, ncols: int = 4, cmap: str = "gray", symmetric: bool = False,
                      suptitle: str | None = None, size: float = 2.8, colorbar: bool = True,
                      clip_percentile: float = 100.0):
    """Feature maps, the output of a convolution: one image per filter, with pixel axes.

    ``maps`` is (H, W, F) (or a list of 2-D maps). With ``symmetric=True`` the colour scale is
    centred on 0 (use a diverging ``cmap`` such as "RdBu_r" for signed maps before ReLU).
    ``clip_percentile`` (e.g. 99) saturates the colour scale at that percentile of each map's
    absolute values, so that a few strong responses do not wash out the rest.
    Returns the figure. Taught in the chapter "Convolutional neural networks".
    """
    import matplotlib.pyplot as plt

    if isinstance(maps, (list, tuple)):
        maps = [np.asarray(m, dtype=float) for m in maps]
        if not maps or any(m.ndim != 2 for m in maps):
            raise ValueError("maps must be (H, W, F) or a non-empty list of 2-D maps")
    else:
        arr = np.asarray(maps, dtype=float)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3:
            raise ValueError(f"maps must be (H, W, F) or a list of 2-D maps, got shape {arr.shape}")
        maps = [arr[..., f] for f in range(arr.shape[-1])]
    if titles is not None and len(titles) != len(maps):
        raise ValueError(f"titles has {len(titles)} entries for {len(maps)} feature maps")
    if isinstance(clip_percentile, bool) or not isinstance(clip_percentile, (int, float)) or not 0 < clip_percentile <= 100:
        raise ValueError(f"clip_percentile must be a number in (0, 100], got {clip_percentile!r}")
    ncols = max(1, min(int(ncols), len(maps)))
    nrows = int(np.ceil(len(maps) / ncols))
    aspect = maps[0].shape[0] / maps[0].shape[1]
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * aspect * nrows + 0.5 + 0.4 * nrows),
                             squeeze=False, layout="constrained")
    for k, ax in enumerate(axes.ravel()):
        if k >= len(maps):
            ax.axis("off")
            continue
        m = maps[k]
        lim = float(np.percentile(np.abs(m), clip_percentile)) or 1.0
        low = -lim if symmetric else min(float(m.min()), 0.0) if clip_percentile < 100 else None
        im = ax.imshow(m, cmap=cmap, vmin=low, vmax=lim if (symmetric or clip_percentile < 100) else None)
        ax.set_title(str(titles[k]) if titles is not None else f"feature map {k}", fontsize="medium")
        if k % ncols == 0:
            ax.set_ylabel("row (pixels)")
        if k >= len(maps) - ncols:
            ax.set_xlabel("column (pixels)")
        if colorbar:
            fig.colorbar(im, ax=ax, shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


_KINDS = (("input", "Input", "0.85"), ("conv", "Conv2D\n+ ReLU", "C0"), ("max_pool", "MaxPooling2D", "C1"),
          ("average_pool", "AveragePooling2D", "C1"), ("flatten", "Flatten", "C7"),
          ("dense_output", "Dense\n+ softmax", "C3"), ("dense", "Dense\n+ ReLU", "C2"))


def plot_cnn_architecture(layers, input_shape, *, ax=None, title: str | None = None):
    """The CNN as a diagram: one block per layer, from the input to the class probabilities.

    ``layers`` is the table of :func:`dlcourse.cnn.cnn_layer_shapes` (or
    :func:`dlcourse.cnn.model_layer_shapes`): ``(name, output shape, parameters)`` rows. A block's
    height grows with its map's height (images) or number of units (vectors); stacked sheets
    stand for channels. Under each block: the layer, its output shape and its parameters.
    Taught in the chapter "Convolutional neural networks".
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Rectangle

    rows = [("input", tuple(int(v) for v in input_shape), 0)] + [(str(n), tuple(int(v) for v in s), int(p))
                                                                 for n, s, p in layers]
    if len(rows) < 2:
        raise ValueError("layers must contain at least one (name, shape, parameters) row")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.6 * len(rows), 4.2))
    top_h = max(s[0] for _, s, _ in rows if len(s) == 3)
    top_units = max((s[0] for _, s, _ in rows if len(s) == 1), default=1)
    step = 1.6
    for k, (name, shape, params) in enumerate(rows):
        label, colour = next(((lab, col) for key, lab, col in _KINDS if name.startswith(key)), (name, "C4"))
        x = k * step
        if len(shape) == 3:
            height = 0.6 + 1.8 * np.sqrt(shape[0] / top_h)
            sheets = int(min(max(np.log2(shape[2]) + 1, 1), 6))
            for s in reversed(range(sheets)):
                ax.add_patch(Rectangle((x - 0.35 + 0.07 * s, 1.6 - height / 2 + 0.07 * s), 0.5, height,
                                       facecolor=colour, edgecolor="black", alpha=0.85, lw=0.8))
            text = " x ".join(str(v) for v in shape)
        else:
            height = 0.6 + 1.8 * np.log10(shape[0] + 1) / np.log10(max(top_units, shape[0]) + 1)
            ax.add_patch(Rectangle((x - 0.12, 1.6 - height / 2), 0.24, height, facecolor=colour,
                                   edgecolor="black", alpha=0.85, lw=0.8))
            text = f"{shape[0]:,}"
        ax.text(x, -0.05, label, ha="center", va="top", fontsize="small", fontweight="bold")
        ax.text(x, -0.75, text, ha="center", va="top", fontsize="small")
        ax.text(x, -1.1, f"{params:,} params" if name != "input" else "", ha="center", va="top",
                fontsize="x-small", color="0.3")
        if k:
            ax.add_patch(FancyArrowPatch(((k - 1) * step + 0.45, 1.6), (x - 0.42, 1.6),
                                         arrowstyle="-|>", mutation_scale=12, color="0.3"))
    ax.set_xlim(-0.8, (len(rows) - 1) * step + 0.8)
    ax.set_ylim(-1.5, 3.2)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("layers, from the input image (left) to the class probabilities (right)")
    ax.set_ylabel("block height ~ map size")
    total = sum(p for _, _, p in rows)
    ax.set_title(title or f"The CNN, layer by layer ({total:,} parameters)")
    return ax


def plot_lstm_cell(*, ax=None, title: str | None = None):
    """One LSTM cell as a diagram: the cell state c runs along the top, the gates below it.

    From the left come the previous state h_{t-1} and cell state c_{t-1}, from below the input x_t.
    Four boxes read [h_{t-1}, x_t] through their own weights: the forget gate f_t (sigmoid), the
    input gate i_t (sigmoid), the candidate g_t (tanh) and the output gate o_t (sigmoid). Circles
    are element-wise operations: c_t = f_t * c_{t-1} + i_t * g_t along the top, and
    h_t = o_t * tanh(c_t) leaving on the right. Taught in the chapter "Recurrent neural networks
    and LSTMs" (Keras stores the four blocks of weights in the order i, f, g, o).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 5))

    def arrow(p, q, colour="black", lw=1.4):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=13, linewidth=lw,
                                     color=colour, shrinkA=0, shrinkB=0))

    def line(points, colour="black", lw=1.4):
        xs, ys = zip(*points)
        ax.plot(xs, ys, color=colour, lw=lw, solid_capstyle="round")

    def gate(x, y, text, colour, label):
        ax.add_patch(FancyBboxPatch((x - 0.42, y - 0.3), 0.84, 0.6, boxstyle="round,pad=0.03",
                                    facecolor=colour, edgecolor="black"))
        ax.text(x, y, text, ha="center", va="center", fontsize=12)
        ax.text(x, y - 0.52, label, ha="center", va="top", fontsize=9, color="0.25")

    def op(x, y, text):
        ax.add_patch(Circle((x, y), 0.24, facecolor="white", edgecolor="black", zorder=3))
        ax.text(x, y, text, ha="center", va="center", fontsize=13, zorder=4)

    ax.add_patch(Rectangle((0.9, 0.55), 8.0, 5.0, facecolor="#f3f6f9", edgecolor="0.6", lw=1))
    ax.text(8.8, 0.7, "LSTM cell", ha="right", va="bottom", fontsize=9, color="0.4")
    top, gates_y, bottom = 4.8, 2.5, 1.0
    f_x, i_x, g_x, o_x, out_x = 2.5, 3.8, 5.1, 6.6, 7.8
    # the cell state, along the top: c_{t-1} -> x f_t -> + i_t g_t -> c_t
    line([(0.2, top), (f_x - 0.24, top)], "C3", 2.2)
    line([(f_x + 0.24, top), (g_x - 0.24, top)], "C3", 2.2)
    arrow((g_x + 0.24, top), (9.6, top), "C3", 2.2)
    ax.text(0.15, top + 0.15, "$c_{t-1}$", ha="left", va="bottom", fontsize=12, color="C3")
    ax.text(9.65, top + 0.15, "$c_t$", ha="right", va="bottom", fontsize=12, color="C3")
    op(f_x, top, r"$\times$")
    op(g_x, top, "$+$")
    # the inputs, along the bottom: h_{t-1} from the left, x_t from below
    line([(0.2, bottom), (o_x - 0.25, bottom)])
    ax.text(0.15, bottom + 0.12, "$h_{t-1}$", ha="left", va="bottom", fontsize=12)
    arrow((1.5, 0.05), (1.5, bottom - 0.02))
    ax.text(1.62, 0.15, "$x_t$", ha="left", va="bottom", fontsize=12)
    # four gates, each reading [h_{t-1}, x_t]
    for x, text, colour, label in [(f_x, r"$\sigma$", "#fff2cc", "forget\ngate $f_t$"),
                                   (i_x, r"$\sigma$", "#fff2cc", "input\ngate $i_t$"),
                                   (g_x, "tanh", "#cfe2f3", "candidate\n$g_t$"),
                                   (o_x, r"$\sigma$", "#fff2cc", "output\ngate $o_t$")]:
        arrow((x - 0.25, bottom), (x - 0.25, gates_y - 0.33))
        gate(x, gates_y, text, colour, "")
        ax.text(x - 0.12, gates_y - 0.42, label, ha="left", va="top", fontsize=8.5, color="0.25",
                linespacing=1.1)
    arrow((f_x, gates_y + 0.33), (f_x, top - 0.26))                # f_t multiplies c_{t-1}
    op(g_x, 3.75, r"$\times$")                                     # i_t * g_t
    arrow((g_x, gates_y + 0.33), (g_x, 3.75 - 0.26))
    line([(i_x, gates_y + 0.33), (i_x, 3.75)])
    arrow((i_x, 3.75), (g_x - 0.26, 3.75))
    arrow((g_x, 3.75 + 0.24), (g_x, top - 0.26))
    # the output: h_t = o_t * tanh(c_t)
    line([(out_x, top), (out_x, 4.1)], "C3", 1.6)
    ax.add_patch(FancyBboxPatch((out_x - 0.38, 3.55), 0.76, 0.5, boxstyle="round,pad=0.03",
                                facecolor="#cfe2f3", edgecolor="black"))
    ax.text(out_x, 3.8, "tanh", ha="center", va="center", fontsize=11)
    arrow((out_x, 3.55), (out_x, gates_y + 0.26))
    op(out_x, gates_y, r"$\times$")
    line([(o_x + 0.42, gates_y), (out_x - 0.24, gates_y)])
    arrow((out_x + 0.24, gates_y), (9.6, gates_y))
    ax.text(9.65, gates_y + 0.12, "$h_t$", ha="right", va="bottom", fontsize=12)
    ax.text(5.0, 5.65, r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t$", ha="center", va="bottom", fontsize=11,
            color="C3")
    ax.text(9.55, 1.75, r"$h_t = o_t \odot \tanh(c_t)$", ha="right", va="center", fontsize=10)
    ax.set_xlim(0, 9.8)
    ax.set_ylim(-0.1, 6.1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel(r"one time step: $h_{t-1}$ and $c_{t-1}$ come in from the left, $x_t$ from below;"
                  r" $h_t$ and $c_t$ go on to step $t + 1$")
    ax.set_title(title or "An LSTM cell: the cell state runs along the top, gates decide what passes")
    return ax
