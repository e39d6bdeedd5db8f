"""L_Hier forward + backward: the tree recursion against the dense formulations.

For a batch of B = 64 random sigmoid energies and leaf targets, times
``marginal_nll`` (forward and backward) on the CUB tree and on synthetic
3-level trees of about 10^3, 10^4 and 10^5 nodes, in three exact formulations:

* ``loop``: the dense (N + 1) x N legal-state matrix and a Python loop over the
  samples (per sample: the states' energies, then the logsumexp of the states
  with y_target = 1 minus the logsumexp of all states), as the official HRN
  code computes it;
* ``dense``: the same matrix, vectorised over the batch (one matrix product
  and a masked logsumexp over all N + 1 states): ``method="dense"``;
* ``recursion``: the O(N) tree recursion, one level at a time:
  ``method="recursion"``.

``auto`` is what ``marginal_nll`` does by default (dense up to
``hmglib.probability.DENSE_MAX_NODES`` nodes, the recursion above). The dense
formulations are skipped where the float32 state matrix would exceed 2 GiB.
Prints the median time of repeated calls, the speed-up over the loop, the peak
memory the forward + backward allocates (PyTorch's profiler, tensors only) and
the memory of the precomputed state each formulation keeps.

    .venv/bin/python benchmarks/bench_marginals.py [--repeats 5] [--batch 64] [--threads 1]

On a machine shared with other busy processes, pass ``--threads 1``: threads
that wait for a busy core can make small operations a hundred times slower.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from hmglib import LabelTree, hierarchies
from hmglib import probability as prob
from hmglib.losses import marginal_nll

DENSE_LIMIT_BYTES = 2 * 2**30  # skip dense formulations above a 2 GiB state matrix


def synthetic(n_nodes: int) -> LabelTree:
    """A 3-level tree with branching b, b, b and about ``n_nodes`` nodes."""
    b = max(2, round(n_nodes ** (1 / 3)))
    paths = [(f"o{i}", f"f{i}.{j}", f"s{i}.{j}.{k}")
             for i in range(b) for j in range(b) for k in range(b)]
    return LabelTree.from_paths(paths, ["order", "family", "species"])


def loop_nll(energies: torch.Tensor, targets: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """The official-style L_Hier: a per-sample loop over the dense state matrix.

    Args:
        energies: (B, N) float; targets: (B,) node indices; states: (N + 1, N) float 0/1.
    """
    total = energies.new_zeros(())
    for b in range(energies.shape[0]):
        scores = states @ energies[b]  # (N + 1,): f^T y for every legal y
        with_target = scores[states[:, targets[b]] > 0]  # the states with y_target = 1
        total = total + torch.logsumexp(scores, 0) - torch.logsumexp(with_target, 0)
    return total / energies.shape[0]


def median_seconds(step: Callable[[], None], repeats: int, min_seconds: float = 1.0) -> float:
    """The median of at least ``repeats`` timed calls, and of as many more as fit
    in ``min_seconds`` (at most 500): fast steps get enough samples to be stable."""
    step()  # warm-up: caches, allocator
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_seconds and len(times) < 500):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_mib(step: Callable[[], None]) -> float:
    """Peak bytes of tensors alive during ``step`` beyond those alive before it."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as p:
        step()
    events = sorted((e.start_ns(), e.nbytes()) for e in p.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    running = itertools.accumulate(n for _, n in events)
    return max(0, *running) / 2**20


def kept_bytes(
    method: str, tree: LabelTree, like: torch.Tensor, states: torch.Tensor | None
) -> int:
    """What a formulation keeps between calls: the loop its float state matrix, the
    dense formulation the library's cached matrix and its bool transpose, the
    recursion its per-tree index tensors."""
    if method == "loop":
        return states.nbytes
    idx = prob._index(tree, like)
    if method == "dense":
        return sum(t.nbytes for t in idx.dense_states())
    return sum(t.nbytes for t in [*idx.parent_local, idx.ancestor_at, idx.strict_index,
                                  idx.strict_mask])


def run_tree(name: str, tree: LabelTree, batch: int, repeats: int) -> list[dict]:
    n = tree.num_nodes
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(batch, n, generator=g).requires_grad_()  # (B, N)
    targets = tree.leaves[torch.randint(len(tree.leaves), (batch,), generator=g)]  # (B,)
    state_bytes = (n + 1) * n * 4
    fits = state_bytes <= DENSE_LIMIT_BYTES

    def step_of(method: str, states: torch.Tensor | None = None) -> Callable[[], None]:
        def step() -> None:
            logits.grad = None
            f = torch.sigmoid(logits)  # (B, N): HRN's energies
            if method == "loop":
                loss = loop_nll(f, targets, states)
            else:
                loss = marginal_nll(f, targets, tree, method=method)
            loss.backward()
        return step

    rows = []
    auto = "dense" if n <= prob.DENSE_MAX_NODES else "recursion"
    states = tree.legal_states().float() if fits else None  # (N + 1, N)
    for method in ("loop", "dense", "recursion"):
        row = {"tree": name, "nodes": n, "method": method + (" (auto)" if method == auto else "")}
        if method != "recursion" and not fits:
            rows.append({**row, "skipped": True})
            continue
        step = step_of(method, states)
        row["seconds"] = median_seconds(step, repeats if method != "loop" or n < 5000 else 2)
        logits.grad = None  # freed before profiling starts
        row["peak_mib"] = peak_mib(step)
        row["state_mib"] = kept_bytes(method, tree, logits, states) / 2**20
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: every core this process may use)")
    parser.add_argument("--sizes", type=float, nargs="*", default=[1e3, 1e4, 1e5],
                        help="node counts of the synthetic trees")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(args.threads or cores or 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"median of >= {args.repeats} calls (2 for the loop above 5,000 nodes); "
          "forward + backward")

    cases = [("cub200", hierarchies.load("cub200"))]
    cases += [(f"~{int(s):.0e}".replace("+0", ""), synthetic(int(s))) for s in args.sizes]
    rows: list[dict] = []
    header = (f"{'tree':>8} {'nodes':>7}  {'formulation':<18} {'ms':>10} {'vs loop':>8} "
              f"{'peak MiB':>9} {'state MiB':>10}")
    print(header)
    print("-" * len(header))
    for name, tree in cases:
        tree_rows = run_tree(name, tree, args.batch, args.repeats)
        loop = next((r["seconds"] for r in tree_rows if r["method"].startswith("loop")
                     and "seconds" in r), math.nan)
        for r in tree_rows:
            if r.get("skipped"):
                print(f"{r['tree']:>8} {r['nodes']:7d}  {r['method']:<18} skipped (memory: the "
                      f"state matrix needs {(r['nodes'] + 1) * r['nodes'] * 4 / 2**30:.0f} GiB)")
                continue
            ratio = loop / r["seconds"]
            ratio_s = f"{ratio:7.1f}x" if math.isfinite(ratio) else f"{'—':>8}"
            print(f"{r['tree']:>8} {r['nodes']:7d}  {r['method']:<18} {r['seconds'] * 1e3:10.2f} "
                  f"{ratio_s} {r['peak_mib']:9.1f} {r['state_mib']:10.2f}")
        rows += tree_rows

    rec = [r for r in rows if r["method"].startswith("recursion")]
    print("\nrecursion, time per node and sample (linear in N if flat):")
    for r in rec:
        per = r["seconds"] / (r["nodes"] * args.batch) * 1e9
        print(f"{r['tree']:>8} {r['nodes']:7d}  {per:7.2f} ns")


if __name__ == "__main__":
    main()
