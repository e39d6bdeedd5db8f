"""DDP under torchrun: two CPU processes (gloo), launched with ``--standalone``
(torchrun picks a free port, so parallel test runs do not collide)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from conftest import ROOT

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this build")


def torchrun(script: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``script`` on two CPU ranks; fail with the ranks' stderr if it fails."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), *args]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


DDP_SCRIPT = textwrap.dedent("""
    import os, sys, torch, torch.distributed as dist
    from torch import nn
    from torch.utils.data import TensorDataset
    from hmglib import engine

    engine.seed_everything(int(os.environ["RANK"]) + 7)  # different init on each rank
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    dist.init_process_group("gloo")  # DDP broadcasts rank 0's weights when it wraps the model
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 6, generator=g); y = (x[:, 0] > 0).long()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    engine.fit(model, lambda o, t: nn.functional.cross_entropy(o, t), TensorDataset(x, y),
               epochs=1, optimizer=opt, batch_size=8, progress=False, seed=3,
               out_dir=sys.argv[1])
    assert dist.is_initialized()  # fit leaves a group it did not create alone
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(2)]
    dist.all_gather(gathered, flat)
    assert torch.equal(gathered[0], gathered[1]), "ranks diverged"
    if dist.get_rank() == 0:
        print("IDENTICAL", flat.norm().item(), flush=True)
    dist.destroy_process_group()
""")


def test_ddp_two_cpu_processes_end_identical(tmp_path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    run = torchrun(script, str(tmp_path / "ckpt"))
    assert "IDENTICAL" in run.stdout
    ckpt = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 0  # written by rank 0


# fit creates the process group itself; the data carry random augmentation drawn
# from each rank's own generator, so a resumed run matches only if every rank's
# random state is restored
HRN_SCRIPT = textwrap.dedent("""
    import os, sys, time, torch, torch.distributed as dist
    from torch.utils.data import Dataset
    from hmglib import LabelTree, engine
    from hmglib.losses import HRNLoss
    from hmglib.models import HRN
    from hmglib.models.backbones import SmallCNN

    TREE = LabelTree.from_paths([("a", "x"), ("a", "y"), ("b", "z"), ("b", "w")],
                                ["top", "leaf"])
    g = torch.Generator().manual_seed(0)
    IMAGES = torch.rand(32, 3, 16, 16, generator=g)
    TARGETS = torch.randint(0, TREE.num_nodes, (32,), generator=g)  # coarse and leaf labels

    class Noisy(Dataset):
        def __len__(self):
            return len(IMAGES)

        def __getitem__(self, i):
            x = IMAGES[i] + 0.1 * torch.randn(IMAGES[i].shape)
            return (x.flip(2) if torch.rand(()) < 0.5 else x), TARGETS[i]

    def run(out, **kw):
        rank = int(os.environ["RANK"])
        engine.seed_everything(rank + 7)  # different init and random streams on each rank
        model = HRN(TREE, backbone=SmallCNN(width=4), feature_dim=8, bn_momentum=0.1)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        engine.fit(model, HRNLoss(TREE), Noisy(),
                   epochs=2, optimizer=opt, batch_size=4, progress=False, seed=3, out_dir=out,
                   **kw)
        assert not dist.is_initialized(), "fit must destroy the group it created"
        torch.save(model.state_dict(), os.path.join(out, f"rank{rank}.pt"))

    mode, root = sys.argv[1], sys.argv[2]
    if mode == "first":
        run(os.path.join(root, "full"))  # uninterrupted, 2 epochs
        # a second group in the same process; rank 1 comes late, so rank 0 must not
        # take the first group's addresses (still in the store) for rank 1's new ones
        if os.environ["RANK"] == "1":
            time.sleep(2)
        run(os.path.join(root, "cut"), stop_after=1)  # interrupted after epoch 0
    else:
        run(os.path.join(root, "cut"), resume=True)  # a new launch resumes to 2 epochs
""")


def test_ddp_fit_creates_the_group_and_resumes_exactly(tmp_path) -> None:
    script = tmp_path / "hrn_ddp.py"
    script.write_text(HRN_SCRIPT)
    t0 = time.perf_counter()
    torchrun(script, "first", str(tmp_path))
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["epoch"] == 0
    torchrun(script, "resume", str(tmp_path))
    print(f"two torchrun launches: {time.perf_counter() - t0:.1f} s")
    ckpt = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and len(ckpt["rng_ranks"]) == 2
    full = [torch.load(tmp_path / "full" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    resumed = [torch.load(tmp_path / "cut" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for k, v in full[0].items():
        assert torch.equal(v, full[1][k]), f"ranks diverged in {k} (uninterrupted)"
        assert torch.equal(resumed[0][k], resumed[1][k]), f"ranks diverged in {k} (resumed)"
        assert torch.equal(v, resumed[0][k]), f"resumed run differs in {k}"
