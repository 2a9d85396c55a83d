"""Seed example 4: log a TensorBoard-style log folder as an artifact.

The user guide trains a Keras model with a TensorBoard callback. This version
needs neither Keras nor TensorFlow: it trains a small softmax classifier on iris
with numpy and writes its per-epoch scalars into a temporary log folder the way
a TensorBoard callback would (one file per split). Lab copies the folder into
the run when the run ends.
"""

import os
import tempfile

import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split

from lab.experiment import Experiment

e = Experiment()


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


@e.start_run
def train():
    iris = datasets.load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.25, random_state=42)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

    # Create a temporary directory for tensorboard logs
    output_dir = dirpath = tempfile.mkdtemp()
    print("Writing TensorBoard events locally to %s\n" % output_dir)
    os.makedirs(os.path.join(output_dir, "train"))
    os.makedirs(os.path.join(output_dir, "validation"))

    epochs, learning_rate = 30, 0.5
    e.log_parameter("epochs", epochs)
    e.log_parameter("learning_rate", learning_rate)
    w = np.zeros((x_train.shape[1], 3))
    b = np.zeros(3)
    onehot = np.eye(3)[y_train]
    for epoch in range(epochs):
        p = softmax(x_train @ w + b)
        loss = -np.mean(np.log(p[np.arange(len(y_train)), y_train]))
        grad = (p - onehot) / len(y_train)
        w -= learning_rate * x_train.T @ grad
        b -= learning_rate * grad.sum(axis=0)
        val_acc = float(np.mean(softmax(x_test @ w + b).argmax(axis=1) == y_test))
        # Six decimals: the last bits of a float product differ between
        # numpy builds, and the files' sizes show in `lab show`.
        for split, name, value in (("train", "loss", loss), ("validation", "accuracy", val_acc)):
            with open(os.path.join(output_dir, split, "scalars.csv"), "a") as f:
                f.write(f"{epoch},{name},{value:.6f}\n")
        e.log_metric("loss", loss, step=epoch)
        e.log_metric("val_accuracy", val_acc, step=epoch)

    # Log tensorboard artifact
    e.log_artifact('tensorboard', output_dir)
