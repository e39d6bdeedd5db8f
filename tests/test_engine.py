"""The training engine: exact resume, validation-only selection, bad losses, predict
(DDP runs under torchrun are in test_ddp.py)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

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


class NoisyData(Dataset):
    """``make_data`` with random augmentation drawn from torch's generator inside
    ``__getitem__``: in a DataLoader worker, it runs on the worker's seed."""

    def __init__(self, n: int = 32) -> None:
        self.base = make_data(n)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.base[i]
        x = x + 0.3 * torch.randn(x.shape)  # (6,) noise
        if torch.rand(()) < 0.5:  # a random "flip" of the feature order
            x = x.flip(0)
        return x, y


def test_resume_with_workers_and_random_augmentation(tmp_path) -> None:
    data = NoisyData()
    kw = {"epochs": 3, "batch_size": 8, "num_workers": 1, "progress": False, "seed": 4}
    model, opt, sched = make_run()
    engine.fit(model, ce, data, optimizer=opt, scheduler=sched, out_dir=tmp_path / "full", **kw)
    reference = {k: v.clone() for k, v in model.state_dict().items()}

    model, opt, sched = make_run()
    engine.fit(model, ce, data, optimizer=opt, scheduler=sched, out_dir=tmp_path / "cut",
               stop_after=2, **kw)
    torch.manual_seed(777)  # a fresh process: new objects, another global RNG state
    model, opt, sched = make_run(seed=5)
    resumed = engine.fit(model, ce, data, optimizer=opt, scheduler=sched,
                         out_dir=tmp_path / "cut", resume=True, **kw)
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]
    for k, v in model.state_dict().items():
        assert torch.equal(v, reference[k]), k


def test_missing_select_metric_is_caught_before_training(tmp_path) -> None:
    model, opt, _ = make_run()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"select=\('accuracy', 'max'\) names a metric that "
                                         r"evaluate does not return; evaluate\(model, val_data\) "
                                         r"returns \['acc'\]\. Pick one of those"):
        engine.fit(model, ce, make_data(), epochs=2, optimizer=opt, batch_size=8,
                   val_data=make_data(16, seed=5), evaluate=accuracy,
                   select=("accuracy", "max"), out_dir=tmp_path, progress=False)
    for k, v in model.state_dict().items():  # no training step, no checkpoint
        assert torch.equal(v, before[k]), k
    assert not (tmp_path / "last.pt").exists()
    assert opt.state_dict()["state"] == {}


def test_select_check_changes_nothing_and_reads_a_resumed_history(tmp_path) -> None:
    def run(**kw):
        model, opt, _ = make_run()
        engine.fit(model, ce, make_data(), epochs=2, optimizer=opt, batch_size=8,
                   val_data=make_data(16, seed=5), evaluate=accuracy, progress=False, **kw)
        return model.state_dict()

    plain = run()
    selected = run(select=("acc", "max"), out_dir=tmp_path)
    for k, v in plain.items():  # the check before training consumes no random numbers
        assert torch.equal(v, selected[k]), k
    calls = []

    def counting(model, data):
        calls.append(1)
        return accuracy(model, data)

    model, opt, _ = make_run()
    with pytest.raises(ValueError, match=r"returns \['acc'\]"):
        engine.fit(model, ce, make_data(), epochs=3, optimizer=opt, batch_size=8,
                   val_data=make_data(16, seed=5), evaluate=counting, select=("f1", "max"),
                   out_dir=tmp_path, resume=True, progress=False)
    assert calls == []  # the resumed history named the metrics


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, bad) -> None:
    steps_per_epoch = 48 // 8
    calls = []

    def turns_bad(output, targets):
        calls.append(1)
        loss = ce(output, targets)
        return loss * bad if len(calls) == steps_per_epoch + 3 else loss  # epoch 1, step 2

    snapshots = {}

    def keep(epoch, row):
        snapshots[epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    model, opt, sched = make_run()
    with pytest.raises(FloatingPointError, match=rf"the training loss is {bad} at epoch 1, "
                                                 r"step 2 \(both 0-based\).*last\.pt holds "
                                                 r"epoch 0, the last good one"):
        engine.fit(model, turns_bad, make_data(), epochs=3, optimizer=opt, scheduler=sched,
                   batch_size=8, out_dir=tmp_path, progress=False, on_epoch_end=keep)
    assert list(snapshots) == [0]
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 0 and len(ckpt["history"]) == 1
    for k, v in ckpt["model"].items():
        assert torch.equal(v, snapshots[0][k]), k
    assert all(torch.isfinite(p).all() for p in model.parameters())  # no step taken with it
    assert len(json.loads((tmp_path / "history.json").read_text())) == 1


def test_non_finite_loss_in_the_first_epoch_says_there_is_no_checkpoint(tmp_path) -> None:
    model, opt, _ = make_run()
    with pytest.raises(FloatingPointError, match=r"epoch 0, step 0 .*no epoch finished"):
        engine.fit(model, lambda o, t: ce(o, t) * math.nan, make_data(), epochs=1,
                   optimizer=opt, batch_size=8, out_dir=tmp_path, progress=False)
    assert not (tmp_path / "last.pt").exists()


def test_a_loss_refusing_its_input_names_the_epoch_and_step(tmp_path) -> None:
    steps_per_epoch = 48 // 8
    calls = []

    def refuses(output, targets):  # as HRNLoss refuses NaN logits
        calls.append(1)
        if len(calls) == steps_per_epoch + 3:
            raise ValueError("leaf_logits holds 4 NaN or infinite values")
        return ce(output, targets)

    model, opt, _ = make_run()
    with pytest.raises(ValueError, match=r"at epoch 1, step 2 \(both 0-based\): leaf_logits "
                                         r"holds 4 NaN.*last\.pt holds epoch 0"):
        engine.fit(model, refuses, make_data(), epochs=3, optimizer=opt, batch_size=8,
                   out_dir=tmp_path, progress=False)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 0
