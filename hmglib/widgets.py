"""Thin ipywidgets explorers over :mod:`hmglib.viz`.

Every explorer redraws a figure of :mod:`hmglib.viz`; the book shows the same
figure statically before each widget, so a page read without a kernel loses
nothing but the interaction.

An explorer shows its figure as a PNG in an ``ipywidgets.Image``, not in an
``ipywidgets.Output``. A notebook executed headless (``nbclient``, which the book
build and the chapter tests use) mirrors an Output widget's content back to the
kernel with a message on the shell socket, while it waits on that same socket
for the cell's reply; a reply that arrives in that moment is not noticed until
the cell's timeout. Measured with a cell that draws into an Output widget,
executed 610 times: 12 cells waited out their whole timeout, and none with the
mirroring message switched off. An Image widget sends nothing back.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from hmglib import probability, viz
from hmglib.checks import check_int
from hmglib.hierarchy import LabelTree
from hmglib.models.racnn import CROP_METHODS, BoxBounds

__all__ = ["figure_png", "figure_image", "tree_explorer", "marginals_explorer", "relabel_explorer",
           "scenario_explorer", "crop_explorer", "cam_explorer"]


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The PNG bytes of ``fig``; the figure is closed (it is not shown again)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def figure_image(draw: Callable[[], Figure]):
    """An ``ipywidgets.Image`` holding ``draw()``, and the function that redraws it.

    Returns:
        ``(image, redraw)``: calling ``redraw()`` replaces the picture with a new
        ``draw()``; observers call it with the change, which it ignores.
    """
    import ipywidgets as w  # optional dependencies (the `book` extra)

    image = w.Image(format="png", value=figure_png(draw()))
    image.layout.max_width = "100%"

    def redraw(*_) -> None:
        image.value = figure_png(draw())

    return image, redraw


def tree_explorer(tree: LabelTree, node: int | None = None):
    """Pick a node of ``tree``: see its path, its subtree and its legal states.

    Returns an ``ipywidgets.VBox``: a dropdown over the nodes and the figure of
    :func:`~hmglib.viz.trees.draw_node_view`.

    Raises:
        ValueError: ``node`` is not a node of ``tree``.
    """
    import ipywidgets as w

    if node is not None and not 0 <= int(node) < tree.num_nodes:
        raise ValueError(f"tree_explorer: node={node} is not a node of the tree "
                         f"(0..{tree.num_nodes - 1}); use tree.index(name).")
    options = [
        (f"{tree.level_names[int(tree.level_of[n])]}: {tree.names[n]}", n)
        for n in range(tree.num_nodes)
    ]
    pick = w.Dropdown(options=options, value=options[0][1] if node is None else int(node),
                      description="node")
    image, redraw = figure_image(lambda: viz.draw_node_view(tree, pick.value))
    pick.observe(redraw, names="value")
    return w.VBox([pick, image])


def marginals_explorer(energies: torch.Tensor, tree: LabelTree, limit: float = 4.0):
    """One slider per node's energy: see every node's marginal probability and the
    distribution over the legal states move (:func:`~hmglib.viz.probabilities.draw_marginals`).

    Args:
        energies: ``(N,)`` starting energies, each within ``[-limit, limit]``.
        tree: a small tree (one slider per node).
        limit: the sliders' range.

    Returns:
        An ``ipywidgets.VBox``: the sliders, one column per level, and the figure.

    Raises:
        TypeError: ``tree`` is not a LabelTree (e.g. the arguments swapped: the
            energies come first).
        ValueError: ``energies`` is not one energy per node of ``tree``, or is not
            finite, or lies outside ``[-limit, limit]``.
    """
    import ipywidgets as w

    if not isinstance(tree, LabelTree):
        raise TypeError(f"marginals_explorer: tree must be a LabelTree, got "
                        f"{type(tree).__name__}; the arguments are marginals_explorer(energies, "
                        "tree, limit=4.0): the energies first, then the tree.")
    energies = torch.as_tensor(energies, dtype=torch.float64)
    if energies.shape != (tree.num_nodes,):
        raise ValueError(f"marginals_explorer: energies has shape {tuple(energies.shape)}; "
                         f"give one energy per node, shape ({tree.num_nodes},).")
    if not torch.isfinite(energies).all() or energies.abs().max() > limit:
        raise ValueError(f"marginals_explorer: energies must be finite and within "
                         f"[-{limit}, {limit}]; clip them or raise limit.")
    sliders = [
        w.FloatSlider(value=float(v), min=-limit, max=limit, step=0.1, description=name,
                      continuous_update=False, style={"description_width": "90px"})
        for name, v in zip(tree.names, energies.tolist(), strict=True)
    ]

    def draw() -> Figure:
        e = torch.tensor([[s.value for s in sliders]], dtype=torch.float64)  # (1, N)
        return viz.draw_marginals(probability.log_marginals(e, tree)[0].exp(), tree,
                                  probability.log_state_probabilities(e, tree)[0].exp(),
                                  energies=e[0])

    image, redraw = figure_image(draw)
    for s in sliders:
        s.observe(redraw, names="value")
    columns = [w.VBox([sliders[n] for n in tree.nodes_at(lv).tolist()])
               for lv in range(tree.num_levels)]
    return w.VBox([w.HBox(columns), image])


def relabel_explorer(table, samples_per_class: int, ratio: float | None = None,
                     colors: dict[str, str] | None = None,
                     ylim: tuple[float, float] | None = (0.0, 100.0)):
    """Pick a relabel ratio: see every method's per-level accuracy over the seeds
    at that ratio (:func:`~hmglib.viz.curves.draw_seed_bars`), from runs that
    have finished; nothing is trained.

    Args:
        table: a long table (a pandas DataFrame, e.g. from
            :func:`hmglib.experiments.results_frame` filtered to one metric) with
            the columns ``relabel`` (the ratio ``r`` in ``[0, 1]``), ``method``,
            ``level``, ``seed`` and ``value``: one row per run and level.
        samples_per_class: ``n_c``, the training images per species of the runs;
            the title says how many keep the species label
            (:func:`~hmglib.viz.protocols.kept_per_class`).
        ratio: the ratio shown first (default: the largest in ``table``).
        colors: optional ``{method: colour}``.
        ylim: the value axis' limits (``None``: matplotlib's).

    Returns:
        An ``ipywidgets.VBox``: a slider over the ratios of ``table`` and the figure.

    Raises:
        ValueError: ``table`` lacks one of the columns or has no rows, or
            ``ratio`` is not one of its ratios.
    """
    import ipywidgets as w
    import pandas as pd

    from hmglib.viz.protocols import kept_per_class

    fn = "relabel_explorer"
    data = pd.DataFrame(table)
    need = ["relabel", "method", "level", "seed", "value"]
    missing = [c for c in need if c not in data.columns]
    if missing or data.empty:
        raise ValueError(f"{fn}: table needs rows with the columns {need}; it has "
                         f"{len(data)} rows and lacks {missing}. Filter a results_frame "
                         "to one metric, e.g. frame[frame.metric == 'OA'].")
    ratios = sorted({float(r) for r in data.relabel})
    if ratio is not None and not any(abs(float(ratio) - r) < 1e-9 for r in ratios):
        raise ValueError(f"{fn}: ratio={ratio} is not one of the table's ratios {ratios}.")
    start = ratios[-1] if ratio is None else min(ratios, key=lambda r: abs(r - float(ratio)))
    methods = list(dict.fromkeys(data.method))
    levels = list(dict.fromkeys(data.level))
    pick = w.SelectionSlider(options=[(f"{100 * r:.0f} %", r) for r in ratios], value=start,
                             description="relabelled", continuous_update=False)

    def draw() -> Figure:
        at = data[(data.relabel - pick.value).abs() < 1e-9]
        values = {m: {lv: at[(at.method == m) & (at.level == lv)].value.tolist()
                      for lv in levels} for m in methods}
        keep = kept_per_class(samples_per_class, pick.value)
        title = (f"r = {100 * pick.value:.0f} %: each species keeps {keep} of "
                 f"{samples_per_class} species labels")
        return viz.draw_seed_bars(values, ylabel="test OA (%)", colors=colors, ylim=ylim,
                                  title=title)

    image, redraw = figure_image(draw)
    pick.observe(redraw, names="value")
    return w.VBox([pick, image])


def scenario_explorer(
    energies: torch.Tensor,
    tree: LabelTree,
    scenarios: Mapping[str, torch.Tensor] | None = None,
    limit: float = 4.0,
):
    """Set the energies of a small tree, by hand or from a preset scenario, and
    compare the result with a reference
    (:func:`~hmglib.viz.probabilities.draw_energy_scenarios`).

    The figure has two panels: ``energies`` (the reference) and the sliders'
    energies, each with ``P(∅)`` and every node's marginal. A dropdown loads a
    preset scenario into the sliders; the sliders then move from there.

    Args:
        energies: ``(N,)`` the reference energies, each within ``[-limit, limit]``.
        tree: a small tree (one slider per node).
        scenarios: optional presets, name → ``(N,)`` energies within
            ``[-limit, limit]`` (e.g. the scenarios of the static figure before it).
        limit: the sliders' range.

    Returns:
        An ``ipywidgets.VBox``: the preset dropdown, the sliders (one column per
        level) and the figure.

    Raises:
        TypeError: ``tree`` is not a LabelTree (e.g. the arguments swapped: the
            energies come first), or ``scenarios`` is not a mapping.
        ValueError: the reference or a preset is not one energy per node of
            ``tree``, or is not finite, or lies outside ``[-limit, limit]``.
    """
    import ipywidgets as w

    fn = "scenario_explorer"
    if not isinstance(tree, LabelTree):
        raise TypeError(f"{fn}: tree must be a LabelTree, got {type(tree).__name__}; the "
                        f"arguments are {fn}(energies, tree, scenarios=None, limit=4.0): "
                        "the energies first, then the tree.")
    if scenarios is not None and not isinstance(scenarios, Mapping):
        raise TypeError(f"{fn}: scenarios must be a mapping from name to (N,) energies, "
                        f"got {type(scenarios).__name__}.")

    def checked(values, what: str) -> torch.Tensor:
        e = torch.as_tensor(values, dtype=torch.float64).detach().cpu()
        if e.shape != (tree.num_nodes,):
            raise ValueError(f"{fn}: {what} has shape {tuple(e.shape)}; give one energy per "
                             f"node, shape ({tree.num_nodes},).")
        if not torch.isfinite(e).all() or e.abs().max() > limit:
            raise ValueError(f"{fn}: {what} must be finite and within [-{limit}, {limit}]; "
                             "clip it or raise limit.")
        return e

    reference = checked(energies, "energies")
    presets = {"the reference": reference}
    presets.update({name: checked(e, f"scenarios[{name!r}]")
                    for name, e in (scenarios or {}).items()})
    sliders = [
        w.FloatSlider(value=float(v), min=-limit, max=limit, step=0.1, description=name,
                      continuous_update=False, style={"description_width": "90px"})
        for name, v in zip(tree.names, reference.tolist(), strict=True)
    ]
    pick = w.Dropdown(options=list(presets), value="the reference", description="load")
    loading = [False]  # True while a preset sets the sliders: redraw once, after

    def draw() -> Figure:
        mine = torch.tensor([s.value for s in sliders], dtype=torch.float64)  # (N,)
        return viz.draw_energy_scenarios({"reference": reference, "the sliders": mine}, tree)

    image, redraw = figure_image(draw)

    def on_slider(*_) -> None:
        if not loading[0]:
            redraw()

    def on_pick(change) -> None:
        loading[0] = True
        try:
            for s, v in zip(sliders, presets[change["new"]].tolist(), strict=True):
                s.value = round(v, 1)
        finally:
            loading[0] = False
        redraw()

    for s in sliders:
        s.observe(on_slider, names="value")
    pick.observe(on_pick, names="value")
    columns = [w.VBox([sliders[n] for n in tree.nodes_at(lv).tolist()])
               for lv in range(tree.num_levels)]
    return w.VBox([pick, w.HBox(columns), image])


def crop_explorer(image, out_size: int, box: tuple[float, float, float] = (0.5, 0.5, 0.25),
                  bounds: BoxBounds | None = None):
    """Move and size an attention box on ``image``: see the crop each method makes
    (:func:`~hmglib.viz.crops.draw_crop_views`).

    Three sliders set ``t_x``, ``t_y`` and ``t_l``; the half-side ``t_l`` stays
    within ``bounds`` and the centre sliders' ranges follow it
    (``[t_l, 1 - t_l]``), so the box's square stays inside the image. A dropdown
    picks the crops shown: both methods (the figure drawn first, the same as
    ``draw_crop_views(image, box, out_size)``), ``"grid"`` or ``"mask"``.

    Args:
        image: ``(3, H, W)`` float in ``[0, 1]`` (or uint8), as
            :func:`~hmglib.viz.crops.draw_crop_views` takes it.
        out_size: the crops' side in pixels, ``>= 1``.
        box: the starting box ``(t_x, t_y, t_l)``, fractions of the image side, with
            ``t_l`` within the bounds and the square inside the image.
        bounds: a :class:`~hmglib.models.racnn.BoxBounds`: ``t_l`` in
            ``[min_half, max_half]``, as an APN bounded by it proposes; default
            ``[0.02, 0.5]``.

    Returns:
        An ``ipywidgets.VBox``: the method dropdown, the three sliders and the figure.

    Raises:
        TypeError: ``bounds`` is not a BoxBounds.
        ValueError: ``box`` is not three finite numbers, its ``t_l`` lies outside
            the bounds, or its square leaves the image; a malformed ``image`` or
            ``out_size`` (as :func:`~hmglib.viz.crops.draw_crop_views` reports it).
    """
    import ipywidgets as w

    fn = "crop_explorer"
    if bounds is not None and not isinstance(bounds, BoxBounds):
        raise TypeError(f"{fn}: bounds must be a BoxBounds (or None), got "
                        f"{type(bounds).__name__}; e.g. BoxBounds(min_half=0.1, max_half=0.4).")
    low, high = (0.02, 0.5) if bounds is None else (bounds.min_half, bounds.max_half)
    start = torch.as_tensor(box, dtype=torch.float64).reshape(-1)
    if start.numel() != 3 or not torch.isfinite(start).all():
        raise ValueError(f"{fn}: box={box!r} must be three finite numbers (t_x, t_y, t_l).")
    tx, ty, tl = start.tolist()
    if not low <= tl <= high:
        raise ValueError(f"{fn}: box has t_l={tl:g}, outside the bounds [{low:g}, {high:g}]; "
                         "give a half-side within them, or other bounds.")
    for name, centre in (("t_x", tx), ("t_y", ty)):
        if not tl - 1e-9 <= centre <= 1 - tl + 1e-9:
            raise ValueError(f"{fn}: box has {name}={centre:g}, so its square of half-side "
                             f"{tl:g} leaves the image; give {name} in [{tl:g}, {1 - tl:g}].")

    def slider(name: str, value: float, lo: float, hi: float):
        return w.FloatSlider(value=value, min=lo, max=hi, step=0.01, description=name,
                             readout_format=".2f", continuous_update=False)

    half = slider("t_l", tl, low, high)
    sx, sy = slider("t_x", tx, tl, 1 - tl), slider("t_y", ty, tl, 1 - tl)
    both = tuple(CROP_METHODS)
    pick = w.Dropdown(options=[(" and ".join(both), both), *((m, (m,)) for m in both)],
                      value=both, description="crops")
    moving = [False]  # True while the half-side moves the centre sliders: redraw once, after

    def draw() -> Figure:
        return viz.draw_crop_views(image, (sx.value, sy.value, half.value), out_size,
                                   methods=pick.value)

    picture, redraw = figure_image(draw)

    def on_centre(*_) -> None:
        if not moving[0]:
            redraw()

    def on_half(change) -> None:
        moving[0] = True
        try:
            for s in (sx, sy):  # the range stays around 0.5, so min <= max throughout
                s.min, s.max = change["new"], 1 - change["new"]
        finally:
            moving[0] = False
        redraw()

    for s in (sx, sy):
        s.observe(on_centre, names="value")
    half.observe(on_half, names="value")
    pick.observe(redraw, names="value")
    return w.VBox([pick, sx, sy, half, picture])


def _choices(fn: str, what: str, values, example: str) -> list[str]:
    """``values`` as a non-empty list of distinct strings."""
    names = [values] if isinstance(values, str) else [str(v) for v in values]
    if not names:
        raise ValueError(f"{fn}: {what} is empty; give at least one, e.g. {example}.")
    if len(set(names)) != len(names):
        raise ValueError(f"{fn}: {what}={names} repeats a name; give each once.")
    return names


def cam_explorer(
    images: torch.Tensor,
    compute: Callable[[int, str, str], torch.Tensor],
    levels: Sequence[str],
    methods: Sequence[str],
    boxes: Mapping[str, torch.Tensor] | None = None,
    titles: Sequence[str] | None = None,
    *,
    index: int = 0,
):
    """Pick an image, a level (or a scale, or a class) and a CAM method: see the
    map over the image (:func:`~hmglib.viz.cams.draw_cams`, one row).

    Nothing is computed here: ``compute(index, level, method)`` returns the map
    (the chapter passes a function that reads maps computed before, or caches
    them), and each change of a dropdown calls it once and redraws.

    Args:
        images: ``(B, 3, H, W)`` float in ``[0, 1]`` (or uint8).
        compute: ``(index, level, method) -> (H, W)`` float map in ``[0, 1]`` of
            image ``index`` (an int in ``0..B-1``).
        levels: the names offered for the level (levels, scales or classes), at
            least one; the first is shown first.
        methods: the CAM methods offered (e.g. ``"gradcam"``), at least one.
        boxes: optional ``{kind: (B, 4) or (B, K, 4) float pixel xyxy}`` of the images
            (rows of NaN are padding), outlined on both panels.
        titles: optional ``B`` strings, one per image (e.g. its class): the
            image dropdown's options and the row's label.
        index: the image shown first, in ``0..B-1``.

    Returns:
        An ``ipywidgets.VBox``: the three dropdowns (image, level, method) in a row,
        and the figure.

    Raises:
        TypeError: ``compute`` is not callable.
        ValueError: no levels or methods, or a repeated one; ``index`` outside
            ``0..B-1``; ``titles`` not one per image; a map from ``compute`` that is
            not ``(H, W)`` in ``[0, 1]``; malformed images or boxes (as
            :func:`~hmglib.viz.cams.draw_cams` reports them).
    """
    import ipywidgets as w

    fn = "cam_explorer"
    if not callable(compute):
        raise TypeError(f"{fn}: compute must be a function (index, level, method) -> (H, W) "
                        f"map, got {type(compute).__name__}.")
    batch = images if isinstance(images, torch.Tensor) else torch.as_tensor(images)
    if batch.dim() != 4 or batch.shape[0] == 0:
        raise ValueError(f"{fn}: images must be a non-empty batch (B, 3, H, W), got shape "
                         f"{tuple(batch.shape)}; one image becomes a batch with image[None].")
    n = int(batch.shape[0])
    level_names = _choices(fn, "levels", levels, "['order', 'family', 'species']")
    method_names = _choices(fn, "methods", methods, "['gradcam', 'scorecam']")
    index = check_int(fn, "index", index, 0, hint="the image shown first")
    if index >= n:
        raise ValueError(f"{fn}: index={index} is not an image of the batch of {n}; give an "
                         f"int in 0..{n - 1}.")
    if boxes is not None:
        if not isinstance(boxes, Mapping):
            raise ValueError(f"{fn}: boxes must be a dict {{kind: (B, 4) or (B, K, 4) pixel "
                             f"xyxy}}, got {type(boxes).__name__}.")
        for kind, b in boxes.items():
            if torch.as_tensor(b).dim() not in (2, 3) or len(b) != n:
                raise ValueError(f"{fn}: boxes[{kind!r}] has shape "
                                 f"{tuple(torch.as_tensor(b).shape)}; give (B, 4) or "
                                 f"(B, K, 4) with B = {n}, one row per image.")
    if titles is not None and (isinstance(titles, str) or len(titles) != n):
        raise ValueError(f"{fn}: titles must hold one string per image, {n}; got "
                         f"{1 if isinstance(titles, str) else len(titles)}.")
    labels = None if titles is None else [str(t) for t in titles]
    options = [(f"{i}: {labels[i]}" if labels else str(i), i) for i in range(n)]
    pick = w.Dropdown(options=options, value=index, description="image")
    level = w.Dropdown(options=level_names, value=level_names[0], description="level")
    method = w.Dropdown(options=method_names, value=method_names[0], description="method")

    def draw() -> Figure:
        i = int(pick.value)
        cam = compute(i, level.value, method.value)
        shown = {k: torch.as_tensor(b)[i:i + 1] for k, b in (boxes or {}).items()}  # (1, ...)
        return viz.draw_cams(batch[i:i + 1], {f"{level.value}, {method.value}": _one_map(
            fn, cam, batch.shape[-2:], (i, level.value, method.value))[None]},
            boxes=shown or None, row_labels=None if labels is None else [labels[i]],
            max_rows=1)

    image, redraw = figure_image(draw)
    for d in (pick, level, method):
        d.observe(redraw, names="value")
    return w.VBox([w.HBox([pick, level, method]), image])


def _one_map(fn: str, cam, size: torch.Size, call: tuple[int, str, str]) -> torch.Tensor:
    """What ``compute`` returned, as one ``(H, W)`` float map of the image's size."""
    t = cam.detach().cpu() if isinstance(cam, torch.Tensor) else torch.as_tensor(cam)
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]  # (H, W): one map given as a batch of one
    if tuple(t.shape) != tuple(size) or not t.is_floating_point():
        raise ValueError(f"{fn}: compute{call} returned shape {tuple(t.shape)} and dtype "
                         f"{t.dtype}; it must return one (H, W) = {tuple(size)} float map in "
                         "[0, 1] of that image.")
    return t
