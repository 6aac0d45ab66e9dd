"""A pretrained chat model with LoRA layers, for loops whose models are adapters on one
frozen base (SL-CAI, RL-CAI-lite): the base is loaded and wrapped once, `host` trains and
holds adapters, and `use(adapter)` answers with that adapter loaded (None: the zero adapter,
i.e. the pretrained model exactly)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from selfimprove.models.chat import HfTemplate, LocalChat, Template, tiny_random_chat
from selfimprove.models.lora import Adapter, AdapterHost, Device, LoraSettings

BaseName = Literal["packaged", "tiny-random"]


class AdapterChat:
    """The base network wrapped for LoRA and its chat front: a load, not a result, so a loop
    builds it once per process."""

    def __init__(self, model: BaseName, device: Device, lora: LoraSettings, batch: int) -> None:
        net: Any
        template: Template
        if model == "packaged":
            from selfimprove.models.packaged import load_packaged

            net, tokenizer = load_packaged(device=device)
            template = HfTemplate(tokenizer)
        else:
            tiny = tiny_random_chat(device)
            net, template = tiny.net, tiny.template
        self.host = AdapterHost(net, lora)
        self.chat = LocalChat(self.host.net, template, model, batch)
        self.zero = self.host.fresh(np.random.default_rng(0))  # B = 0: the base exactly

    def use(self, adapter: Adapter | None) -> LocalChat:
        """The chat model answering with `adapter` (None: the pretrained model)."""
        self.host.load(adapter or self.zero)
        return self.chat
