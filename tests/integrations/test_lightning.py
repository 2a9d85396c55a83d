"""lab.lightning.LabLogger against real PyTorch Lightning."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

try:
    import lightning.pytorch as pl
except ImportError:
    import pytorch_lightning as pl

import lab
from conftest import read_run
from lab.lightning import LabLogger


class Regressor(pl.LightningModule):
    def __init__(self, hidden: int = 8, lr: float = 0.05, fail_at: int = -1, interrupt_at: int = -1):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        if self.global_step == self.hparams.fail_at:
            raise ValueError("exploded")
        if self.global_step == self.hparams.interrupt_at:
            raise KeyboardInterrupt
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=g)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])
    ds = TensorDataset(X, y)
    return DataLoader(ds, batch_size=16), DataLoader(ds, batch_size=32), X


def trainer(tmp_path, logger, **kwargs):
    return pl.Trainer(
        max_epochs=kwargs.pop("max_epochs", 3),
        logger=logger,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=tmp_path,
        **kwargs,
    )


def test_logger_owns_a_run_hparams_metrics_checkpoints(project, tmp_path, no_lab_warnings):
    train, val, X = loaders()
    e = lab.Experiment("lightning")
    module = Regressor(hidden=8, lr=0.05)
    t = trainer(tmp_path, LabLogger(e))
    t.fit(module, train, val)
    run = read_run(e)
    assert run.status == "finished"
    assert run.params["hidden"] == 8 and run.params["lr"] == 0.05
    history = run.metric_history("train_loss")
    # 4 batches an epoch, 3 epochs, one point per step.
    assert [p[0] for p in history] == list(range(12))
    assert run.metric_summaries["val_loss"]["count"] == 3
    assert run.metric_summaries["epoch"]["count"] >= 3
    # Each file the checkpoint callback saved, taken in as a model when saved.
    assert set(run.models) == {"epoch=0-step=4", "epoch=1-step=8", "epoch=2-step=12"}
    name = "epoch=2-step=12"
    info = run.models[name]
    assert info["format"] == "ckpt" and info["path"].endswith(".ckpt")
    assert info["library_version"] == pl.__version__
    checkpoint = lab.load_model(run, name)
    assert checkpoint["global_step"] == 12
    reloaded = Regressor.load_from_checkpoint(info["path"])
    reloaded.eval()
    module.eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(X), module(X))


def test_logger_inside_a_users_run_leaves_it_open(project, tmp_path):
    train, val, _ = loaders()
    e = lab.Experiment("lightning")
    with e.start_run():
        trainer(tmp_path, LabLogger(e, log_checkpoints=False), max_epochs=1).fit(Regressor(), train, val)
        e.log_metric("after_fit", 1.0)
    run = read_run(e)
    assert run.status == "finished"
    assert run.metrics["after_fit"] == 1.0
    assert "train_loss" in run.metrics and run.models == {}


def test_a_failing_training_step_fails_the_run(project, tmp_path):
    train, val, _ = loaders()
    e = lab.Experiment("lightning")
    with pytest.raises(ValueError, match="exploded"):
        trainer(tmp_path, LabLogger(e)).fit(Regressor(fail_at=5), train, val)
    run = read_run(e)
    assert run.status == "failed"
    assert run.error["type"] == "ValueError" and run.error["message"] == "exploded"
    assert run.metric_summaries["train_loss"]["count"] == 5


def test_ctrl_c_interrupts_the_run(project, tmp_path):
    # Lightning turns Ctrl-C into a graceful stop and then `exit(1)`.
    train, val, _ = loaders()
    e = lab.Experiment("lightning")
    with pytest.raises(SystemExit):
        trainer(tmp_path, LabLogger(e)).fit(Regressor(interrupt_at=3), train, val)
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    run = read_run(e)
    assert run.status == "interrupted"


def test_a_second_fit_is_a_second_run(project, tmp_path):
    train, val, _ = loaders()
    e = lab.Experiment("lightning")
    logger = LabLogger(e, log_checkpoints=False)
    trainer(tmp_path, logger, max_epochs=1).fit(Regressor(), train, val)
    first = e.run_id
    trainer(tmp_path, logger, max_epochs=1).fit(Regressor(), train, val)
    assert e.run_id != first
    assert read_run(e).status == "finished"
    assert lab.get_run(first).status == "finished"
