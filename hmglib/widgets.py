"""Thin ipywidgets explorers over :mod:`hmglib.viz`.

Every explorer redraws a figure of :mod:`hmglib.viz`; the book shows the same
figure statically before each widget, so a page read without a kernel loses
nothing but the interaction.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

from hmglib import viz
from hmglib.hierarchy import LabelTree

__all__ = ["tree_explorer"]


def tree_explorer(tree: LabelTree, node: int | None = None):
    """Pick a node of ``tree``: see its path, its subtree and its legal states.

    Returns an ``ipywidgets.VBox`` (a dropdown over the nodes and the figure of
    :func:`hmglib.viz.draw_node_view`).
    """
    import ipywidgets as w  # optional dependencies (the `book` extra)
    from IPython.display import display

    options = [
        (f"{tree.level_names[int(tree.level_of[n])]}: {tree.names[n]}", n)
        for n in range(tree.num_nodes)
    ]
    pick = w.Dropdown(options=options, value=options[0][1] if node is None else int(node),
                      description="node")
    out = w.Output()

    def redraw(*_):
        with out:
            out.clear_output()  # not wait=True: headless execution can stall on it
            fig = viz.draw_node_view(tree, pick.value)
            display(fig)
            plt.close(fig)

    pick.observe(redraw, names="value")
    redraw()
    return w.VBox([pick, out])
