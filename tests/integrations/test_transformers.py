"""lab.transformers.LabCallback against a real Transformers Trainer.

The model is a 2-layer BERT built from a config with a 40-token vocabulary:
nothing is downloaded."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

import lab
from conftest import read_run
from lab.transformers import LabCallback


def tiny_bert() -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def dataset(n: int = 32):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 40, (n, 8), generator=g)
    labels = (ids[:, 0] > 20).long()
    return [{"input_ids": ids[i], "attention_mask": torch.ones(8, dtype=torch.long), "labels": labels[i]} for i in range(n)]


def test_callback_logs_args_logs_and_the_model(project, tmp_path, no_lab_warnings):
    model = tiny_bert()
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        num_train_epochs=2,
        learning_rate=1e-3,
        logging_steps=1,
        eval_strategy="epoch",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
    )
    e = lab.Experiment("hf")
    with e.start_run():
        trainer = Trainer(model=model, args=args, train_dataset=dataset(), eval_dataset=dataset(16), callbacks=[LabCallback(e)])
        trainer.train()
    run = read_run(e)
    assert run.params["learning_rate"] == 1e-3
    assert run.params["num_train_epochs"] == 2
    assert run.params["per_device_train_batch_size"] == 8
    assert run.params["model.num_hidden_layers"] == 2
    assert run.params["model.vocab_size"] == 40
    history = run.metric_history("loss")
    # 4 steps an epoch, logged each step.
    assert [p[0] for p in history] == list(range(1, 9))
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert [p[2] for p in history] == pytest.approx(logged)
    assert [p[0] for p in run.metric_history("eval_loss")] == [4, 8]
    assert "train_runtime" in run.metrics
    info = run.models["model"]
    assert info["format"] == "transformers.zip" and info["library"] == "transformers"
    loaded = lab.load_model(run, "model")
    assert isinstance(loaded, BertForSequenceClassification)
    batch = torch.stack([d["input_ids"] for d in dataset(4)])
    model.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=batch).logits, model(input_ids=batch).logits, atol=1e-6)


def test_log_model_of_a_gpt2(project):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=30, n_positions=16, n_embd=16, n_layer=2, n_head=2))
    e = lab.Experiment("hf")
    with e.start_run():
        e.log_model("gpt2", model)
    loaded = lab.load_model(read_run(e), "gpt2")
    ids = torch.tensor([[1, 2, 3, 4]])
    model.eval()
    loaded.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-6)
