"""How LabelTree scales: build time, lift throughput, dense matrices.

Prints one row per tree: the CUB tree, then synthetic 3-level trees of about
10^3, 10^4 and 10^5 nodes. The dense (N + 1) x N legal-state matrix is built
only where it fits in 1 GiB (it is for teaching and brute force; the marginal
recursion of chapter 2 never needs it).

    .venv/bin/python benchmarks/bench_label_tree.py
"""

from __future__ import annotations

import torch
from _timing import timed

from hmglib import LabelTree, hierarchies


def synthetic(n_nodes: int) -> LabelTree:
    """A 3-level tree with branching b, b, b and about n_nodes nodes."""
    b = max(2, round(n_nodes ** (1 / 3)))
    paths = [(f"o{i}", f"f{i}.{j}", f"s{i}.{j}.{k}")
             for i in range(b) for j in range(b) for k in range(b)]
    return LabelTree.from_paths(paths, ["order", "family", "species"])


def main() -> None:
    torch.manual_seed(0)
    print(f"{'tree':>10} {'nodes':>8} {'build s':>9} {'lift M/s':>9} {'states s':>9}"
          f" {'states MiB':>11}")
    cases = [("cub200", lambda: hierarchies.load("cub200"))]
    cases += [(f"~1e{e}", lambda e=e: synthetic(10**e)) for e in (3, 4, 5)]
    for name, make in cases:
        build = timed(make, repeat=1)
        tree = make()
        targets = tree.leaves[torch.randint(len(tree.leaves), (1_000_000,))]
        lift = timed(lambda tree=tree, targets=targets: tree.lift(targets, 0))
        n = tree.num_nodes
        mib = (n + 1) * n / 2**20  # bool bytes
        if mib <= 1024:
            states = f"{timed(tree.legal_states, repeat=1):9.3f}"
        else:
            states = f"{'skipped':>9}"
        print(f"{name:>10} {n:8d} {build:9.3f} {1.0 / lift:9.1f} {states} {mib:11.1f}")


if __name__ == "__main__":
    main()
