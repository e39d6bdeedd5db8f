"""The training engine: exact resume, validation-only selection, DDP, predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from conftest import ROOT
from hmglib import engine


def make_data(n: int = 48, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return TensorDataset(x, y)


def make_run(seed: int = 0):
    engine.seed_everything(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2),
                          nn.Linear(16, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3)
    return model, opt, sched


def ce(output, targets):
    return nn.functional.cross_entropy(output, targets)


def accuracy(model, data):
    out, y = engine.predict(model, data, batch_size=16)
    return {"acc": float((out.argmax(1) == y).float().mean())}


def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path) -> None:
    data = make_data()
    model, opt, sched = make_run()
    full = engine.fit(model, ce, data, epochs=3, optimizer=opt, scheduler=sched, batch_size=8,
                      out_dir=tmp_path / "full", progress=False, seed=1)
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    model, opt, sched = make_run()
    part = engine.fit(model, ce, data, epochs=3, optimizer=opt, scheduler=sched, batch_size=8,
                      out_dir=tmp_path / "cut", progress=False, seed=1, stop_after=1)
    assert len(part.history) == 1
    # a fresh process would rebuild everything: new objects, different global RNG
    torch.manual_seed(12345)
    model, opt, sched = make_run(seed=99)
    resumed = engine.fit(model, ce, data, epochs=3, optimizer=opt, scheduler=sched,
                         batch_size=8, out_dir=tmp_path / "cut", resume=True, progress=False,
                         seed=1)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    for k, v in model.state_dict().items():
        assert torch.equal(v, reference[k]), k
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in full.history]
    saved = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert len(saved) == 3


def test_best_epoch_is_picked_on_validation(tmp_path) -> None:
    model, opt, sched = make_run()
    res = engine.fit(model, ce, make_data(), epochs=3, optimizer=opt, batch_size=8,
                     val_data=make_data(32, seed=5), evaluate=accuracy, select=("acc", "max"),
                     out_dir=tmp_path, progress=False)
    accs = [h["val/acc"] for h in res.history]
    assert res.best_epoch == max(range(3), key=lambda e: (accs[e], -e))
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["epoch"] == res.best_epoch


def test_loss_parts_are_logged() -> None:
    from typing import NamedTuple

    class Parts(NamedTuple):
        total: torch.Tensor
        ce: torch.Tensor

    model, opt, _ = make_run()
    res = engine.fit(model, lambda o, t: Parts(ce(o, t), ce(o, t).detach()), make_data(),
                     epochs=1, optimizer=opt, batch_size=8, progress=False)
    assert res.history[0]["ce"] == pytest.approx(res.history[0]["loss"])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"epochs": 0}, "epochs must be >= 1"),
    ({"epochs": 1, "select": ("acc", "max")}, "never on the test set"),
    ({"epochs": 1, "resume": True}, "resume=True needs out_dir"),
    ({"epochs": 1, "batch_size": 100}, "fewer than batch_size=100"),
    ({"epochs": 1, "amp": True, "batch_size": 8}, "amp=True needs a cuda device"),
])
def test_bad_arguments(kwargs, message) -> None:
    model, opt, _ = make_run()
    with pytest.raises(ValueError, match=message):
        engine.fit(model, ce, make_data(), optimizer=opt, progress=False, **kwargs)


def test_bad_loss_return() -> None:
    model, opt, _ = make_run()
    with pytest.raises(TypeError, match="scalar tensor or an object with a tensor `.total`"):
        engine.fit(model, lambda o, t: 1.0, make_data(), epochs=1, optimizer=opt,
                   batch_size=8, progress=False)


def test_predict_concatenates_dataclass_outputs() -> None:
    from hmglib import LabelTree
    from hmglib.models import HRN
    from hmglib.models.backbones import SmallCNN

    tree = LabelTree.from_paths([("a", "x"), ("a", "y"), ("b", "z")], ["top", "leaf"])
    model = HRN(tree, backbone=SmallCNN(width=4), feature_dim=8)
    data = TensorDataset(torch.rand(5, 3, 16, 16), torch.tensor([2, 3, 4, 2, 3]))
    out, y = engine.predict(model, data, batch_size=2)
    assert [t.shape for t in out.level_logits] == [(5, 2), (5, 3)]
    assert out.leaf_logits.shape == (5, 3) and y.tolist() == [2, 3, 4, 2, 3]
    assert model.training  # predict restores the mode


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
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                "--master_port=29517", str(script), str(tmp_path / "ckpt")]
    run = subprocess.run(torchrun, env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "IDENTICAL" in run.stdout
    ckpt = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 0  # written by rank 0
