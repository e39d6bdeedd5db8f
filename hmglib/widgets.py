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
from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from hmglib import probability, viz
from hmglib.hierarchy import LabelTree

__all__ = ["figure_png", "figure_image", "tree_explorer", "marginals_explorer"]


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
