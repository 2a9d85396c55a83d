"""log_model's native formats for PyTorch, and the original Lab's argument order."""

from __future__ import annotations

import pytest
import torch

import lab
from conftest import read_run


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x)


def test_torch_module_and_state_dict(project):
    torch.manual_seed(0)
    net = Net()
    e = lab.Experiment("torch")
    with e.start_run():
        e.log_model("net", net)
        e.log_model(net.state_dict(), "weights")
    run = read_run(e)
    for name in ("net", "weights"):
        info = run.models[name]
        assert info["format"] == "torch.pt" and info["path"].endswith(f"{name}.torch.pt")
        assert info["library"] == "torch" and info["library_version"] == torch.__version__
    x = torch.randn(5, 3)
    loaded = lab.load_model(run, "net")
    assert torch.equal(loaded(x), net(x))
    fresh = Net()
    fresh.load_state_dict(lab.load_model(run, "weights"))
    assert torch.equal(fresh(x), net(x))
    # The file is torch.save's: torch loads it without Lab.
    assert set(torch.load(run.models["weights"]["path"])) == {"fc.weight", "fc.bias"}


def test_a_changed_file_is_refused(project):
    e = lab.Experiment("torch")
    with e.start_run():
        e.log_model("net", Net())
    run = read_run(e)
    with open(run.models["net"]["path"], "ab") as f:
        f.write(b"x")
    with pytest.raises(lab.ModelIntegrityError, match="has changed since it was logged"):
        lab.load_model(run, "net")
