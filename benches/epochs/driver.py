"""One measurement of benches/epochs/run.py: trains a small model for a few
epochs in this process with one tracker hooked in (or none) and prints each
epoch's wall time as JSON.

    python driver.py FRAMEWORK TRACKER EPOCHS WORKDIR

FRAMEWORK is `keras` or `lightning`; TRACKER is `none`, `lab`, `lab-batch`
(Lab's callback logging every batch too), `mlflow` (MLflow's autolog) or
`wandb` (W&B's callback or logger, offline). Runs in the tracker's own
environment, which sees the frameworks of .venv-int.
"""

from __future__ import annotations

import json
import os
import sys
import time

FRAMEWORK, TRACKER, EPOCHS, WORK = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.chdir(WORK)
os.environ["KERAS_BACKEND"] = "torch"
os.environ["LAB_PROJECT"] = WORK
os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///" + os.path.join(WORK, "mlflow.db")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_DIR", WORK)

import numpy as np
import torch

# The same work every time: 16,384 samples of 64 features, an MLP of two
# hidden layers of 256, batches of 64 (256 steps an epoch: 0.4 to 0.8 s on
# one core of the machine of docs/benchmarks.md when it is quiet). One
# thread, so that the other core's load moves the numbers less.
torch.set_num_threads(1)
N, D, H, C, BATCH = 16_384, 64, 256, 10, 64
rng = np.random.default_rng(0)
X = rng.normal(size=(N, D)).astype("float32")
y = (X[:, :C].argmax(axis=1)).astype("int64")

times: list = []
# Seconds spent inside Lab's hooks during each epoch (Lab's trackers only):
# the cost itself, which the machine's noise does not hide.
inside: list = []
_inside = [0.0]


def timed(obj, *names):
    """Wraps the methods `names` of `obj` to add the time they take to _inside."""
    for name in names:
        method = getattr(obj, name)

        def wrapper(*args, _m=method, **kwargs):
            t = time.perf_counter()
            try:
                return _m(*args, **kwargs)
            finally:
                _inside[0] += time.perf_counter() - t

        setattr(obj, name, wrapper)


def keras_main() -> None:
    import keras

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()
            _inside[0] = 0.0

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)
            inside.append(_inside[0])

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((D,)), keras.layers.Dense(H, activation="relu"), keras.layers.Dense(H, activation="relu"), keras.layers.Dense(C)]
    )
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    # The timer goes last: the epoch's time then holds a tracker's per-batch
    # work and its end-of-epoch work.
    callbacks: list = []
    if TRACKER in ("lab", "lab-batch"):
        from lab.keras import Experiment, LabCallback

        e = Experiment("bench")
        with e.start_run():
            cb = LabCallback(e, log_every_batch=TRACKER == "lab-batch", model_name=None)
            timed(cb, "on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end")
            callbacks = [cb, Timer()]
            model.fit(X, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, callbacks=callbacks)
        return
    if TRACKER == "mlflow":
        import mlflow

        mlflow.keras.autolog(log_models=False)
        with mlflow.start_run():
            model.fit(X, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, callbacks=[Timer()])
        return
    if TRACKER == "wandb":
        import wandb

        # W&B's Keras callbacks (wandb.integration.keras) import TensorFlow
        # and do not run on Keras 3's PyTorch backend: this is what their
        # WandbMetricsLogger(log_freq="epoch") does, by hand.
        class WandbEpochs(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                wandb.log({f"epoch/{k}": v for k, v in (logs or {}).items()} | {"epoch/epoch": epoch})

        run = wandb.init(project="bench", mode="offline")
        model.fit(X, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, callbacks=[WandbEpochs(), Timer()])
        run.finish()
        return
    model.fit(X, y, epochs=EPOCHS, batch_size=BATCH, verbose=0, callbacks=[Timer()])


def lightning_main() -> None:
    try:
        import lightning.pytorch as pl
    except ImportError:
        import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    class Timer(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            self.t = time.perf_counter()
            _inside[0] = 0.0

        def on_train_epoch_end(self, trainer, module):
            times.append(time.perf_counter() - self.t)
            inside.append(_inside[0])

    class MLP(pl.LightningModule):
        def __init__(self, hidden: int = H, lr: float = 1e-3):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(D, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, C)
            )

        def training_step(self, batch, batch_idx):
            x, t = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), t)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), batch_size=BATCH, shuffle=True)
    logger: object = False
    if TRACKER == "lab":
        from lab.lightning import LabLogger

        logger = LabLogger(log_checkpoints=False)
        timed(logger, "log_metrics", "log_hyperparams")
    elif TRACKER == "wandb":
        logger = pl.loggers.WandbLogger(project="bench", offline=True)
    elif TRACKER == "mlflow":
        import mlflow

        mlflow.pytorch.autolog(log_models=False)
    # Lightning logs every 50 steps by default: what a user gets.
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Timer()],
        accelerator="cpu",
        devices=1,
    )
    if TRACKER == "mlflow":
        import mlflow

        with mlflow.start_run():
            trainer.fit(MLP(), data)
    else:
        trainer.fit(MLP(), data)
    if TRACKER == "wandb":
        import wandb

        wandb.finish()


{"keras": keras_main, "lightning": lightning_main}[FRAMEWORK]()
print(json.dumps({"epoch_s": times, "inside_s": inside}))
