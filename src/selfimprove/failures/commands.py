"""The task of the shift and forgetting loops: smart-home commands, classified by intent.

A template grammar writes clean canonical utterances ("turn on the kitchen lights", maybe
led by "hey", "ok" or "um") for 17 intents; an intent's answer is exact. Real users also
phrase requests informally ("its too dark in the kitchen", "kill the lights"): templates a
writer of synthetic data, asked for canonical requests, does not use. Every text the
grammar can write is enumerated once, and a fixed fifth of each intent's requests is held
out: a request is a body (the text without its lead) together with every body that spells
it in the users' slang ("call mom" and the informal "ring mom", `noise.standard`). Test sets
are written from held-out bodies alone and training data never is, so no test item's
canonical text, nor the same request with another lead or in slang, is ever trained on. The
messy test items are noised versions of held-out texts; had "call mom" been held out and
"ring mom" not, the users' slang would have turned test items into training texts. No typo
joins the two partitions either (a test follows every text the noise can make).

`PRIOR` is how often real users ask for each intent: the last three (cancel an alarm, order
a taxi, find the phone) are the rare tail, about 1% of traffic each, and each is easy to
confuse with a frequent neighbour (set an alarm, call someone, lights off).
"""

from __future__ import annotations

import itertools
import re
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np

from selfimprove.failures.noise import standard

SLOTS: dict[str, tuple[str, ...]] = {
    "room": ("kitchen", "bedroom", "living room", "bathroom", "office", "hallway", "garage"),
    "degrees": tuple(str(d) for d in range(16, 26)),
    "door": ("front", "back", "garage", "side"),
    "genre": ("jazz", "rock", "classical", "pop", "hip hop", "country", "blues"),
    "artist": ("taylor swift", "the beatles", "miles davis", "adele", "queen", "coldplay"),
    "time": ("7 am", "6 30", "noon", "8 pm", "9 15", "midnight", "5 45", "10 am"),
    "day": ("today", "tomorrow", "tonight", "this weekend", "on monday", "on friday"),
    "duration": ("5 minutes", "10 minutes", "20 minutes", "an hour", "30 seconds", "half an hour"),
    "city": ("london", "paris", "boston", "tokyo", "berlin", "chicago", "madrid"),
    "item": ("milk", "eggs", "bread", "coffee", "bananas", "dish soap", "rice"),
    "contact": ("mom", "dad", "alex", "sarah", "grandma", "john", "the office"),
    "status": ("late", "on my way", "home", "running late"),
    "place": ("the airport", "the station", "downtown", "the hotel", "work"),
}


@dataclass(frozen=True)
class Intent:
    """One intent: how often real users ask for it, the canonical phrasings a writer of
    synthetic data uses, and the informal ones only real users do."""

    name: str
    weight: float  # relative frequency among real users' requests
    templates: tuple[str, ...]
    informal: tuple[str, ...]


INTENTS: tuple[Intent, ...] = (
    Intent(
        "lights_on",
        12,
        (
            "turn on the {room} lights",
            "switch on the light in the {room}",
            "lights on in the {room}",
            "can you turn the lights on in the {room}",
            "please turn on the light",
        ),
        ("its too dark in the {room}", "i cant see a thing in the {room}", "need some light"),
    ),
    Intent(
        "lights_off",
        12,
        (
            "turn off the {room} lights",
            "switch off the light in the {room}",
            "lights off in the {room}",
            "can you turn the lights off in the {room}",
            "please turn off the light",
        ),
        ("kill the lights in the {room}", "lights out", "its too bright in the {room}"),
    ),
    Intent(
        "set_temperature",
        8,
        (
            "set the temperature to {degrees} degrees",
            "make it {degrees} degrees in the {room}",
            "change the thermostat to {degrees}",
            "set the {room} temperature to {degrees}",
        ),
        ("its freezing in the {room}", "way too hot in the {room}", "crank the heat to {degrees}"),
    ),
    Intent(
        "lock_door",
        5,
        ("lock the {door} door", "please lock the {door} door", "can you lock the {door} door"),
        ("did i leave the {door} door open", "secure the {door} door", "bolt the {door} door"),
    ),
    Intent(
        "play_music",
        12,
        (
            "play some {genre} music",
            "play {artist}",
            "put on some {genre} music in the {room}",
            "i want to hear {artist}",
        ),
        ("throw on some {genre}", "im in the mood for {artist}", "bump some {genre}"),
    ),
    Intent(
        "stop_music",
        6,
        ("stop the music", "pause the music", "stop playing {artist}", "turn the music off"),
        ("shh", "enough {artist} already", "kill the music", "shut that noise off"),
    ),
    Intent(
        "volume_up",
        5,
        ("turn the volume up", "make it louder", "volume up please", "turn it up in the {room}"),
        ("crank it up", "i cant hear it in the {room}", "pump it up"),
    ),
    Intent(
        "volume_down",
        5,
        (
            "turn the volume down",
            "make it quieter",
            "volume down please",
            "turn it down in the {room}",
        ),
        ("too loud", "keep it down in the {room}", "tone it down a notch"),
    ),
    Intent(
        "set_alarm",
        8,
        ("set an alarm for {time}", "wake me up at {time}", "i need an alarm at {time} {day}"),
        ("get me up at {time}", "i gotta be up at {time} {day}", "alarm {time}"),
    ),
    Intent(
        "set_timer",
        6,
        ("set a timer for {duration}", "start a {duration} timer", "remind me in {duration}"),
        ("ping me in {duration}", "{duration} countdown", "buzz me in {duration}"),
    ),
    Intent(
        "weather",
        8,
        (
            "what is the weather in {city}",
            "will it rain in {city} {day}",
            "what is the weather going to be like {day}",
            "do i need an umbrella {day}",
        ),
        ("is it cold out {day}", "how hot is it in {city}", "hows it looking outside {day}"),
    ),
    Intent(
        "add_to_list",
        5,
        (
            "add {item} to my shopping list",
            "put {item} on the shopping list",
            "we need {item}, add it to the list",
        ),
        ("we are out of {item}", "grab {item} next time", "running low on {item}"),
    ),
    Intent(
        "call_contact",
        6,
        ("call {contact}", "phone {contact} please", "can you call {contact} for me"),
        ("get {contact} on the line", "dial {contact}", "ring {contact}"),
    ),
    Intent(
        "send_message",
        5,
        (
            "send a message to {contact}",
            "text {contact} that i am {status}",
            "tell {contact} i am {status}",
        ),
        ("let {contact} know im {status}", "shoot {contact} a text", "msg {contact} {status}"),
    ),
    Intent(
        "cancel_alarm",
        1,
        ("cancel my {time} alarm", "turn off the alarm for {day}", "delete the alarm at {time}"),
        ("no alarm {day}", "scrap the {time} alarm", "i dont need the {time} alarm"),
    ),
    Intent(
        "order_taxi",
        1,
        (
            "book a taxi to {place}",
            "get me a taxi to {place} at {time}",
            "i need a taxi to {place}",
        ),
        ("i need a ride to {place}", "cab to {place}", "get me to {place} by {time}"),
    ),
    Intent(
        "find_phone",
        1,
        ("where is my phone", "help me find my phone", "make my phone ring", "call my phone"),
        ("lost my phone", "wheres my phone", "cant find my phone anywhere", "ring my phone"),
    ),
)
NAMES = tuple(intent.name for intent in INTENTS)
NUM_INTENTS = len(INTENTS)
PRIOR = np.array([i.weight for i in INTENTS]) / sum(i.weight for i in INTENTS)  # [C]
RARE = np.array([i.weight <= 1 for i in INTENTS])  # [C]: the rare tail
HELD_OUT_EVERY = 5  # every fifth request of an intent, in CRC-32 order, is held out
LEADS = ("", "hey ", "ok ", "um ")  # how a request may start; a body keeps its partition
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Texts:
    """Every canonical text of one intent in one partition, by template: `by_template[t]`."""

    by_template: tuple[tuple[str, ...], ...]


def _bodies(template: str) -> list[str]:
    slots = _SLOT.findall(template)
    return [
        template.format(**dict(zip(slots, values, strict=True)))
        for values in itertools.product(*(SLOTS[s] for s in slots))
    ]


@cache
def held_out_bodies(intent: int) -> frozenset[str]:
    """The held-out bodies (texts without their lead) of `intent`, canonical and informal:
    those whose request (the body spelled out, `noise.standard`) has a rank, in the order of
    a CRC-32 of its text (the same on every machine), that is a multiple of five."""
    every = INTENTS[intent].templates + INTENTS[intent].informal
    bodies = {b for t in every for b in _bodies(t)}
    requests = sorted({standard(b) for b in bodies}, key=lambda r: (zlib.crc32(r.encode()), r))
    hidden = set(requests[::HELD_OUT_EVERY])
    return frozenset(b for b in bodies if standard(b) in hidden)


def held_out(intent: int, text: str) -> bool:
    """Whether a canonical text of `intent` belongs to the held-out partition."""
    body = next(text.removeprefix(lead) for lead in (*LEADS[1:], "") if text.startswith(lead))
    return body in held_out_bodies(intent)


@cache
def texts(intent: int, test: bool, informal: bool = False) -> Texts:
    """The texts of `intent`'s canonical (or `informal`) templates in the held-out partition
    (`test`) or the training one, each body with every lead; templates with no body in a
    partition are left out."""
    hidden = held_out_bodies(intent)
    groups = []
    chosen_templates = INTENTS[intent].informal if informal else INTENTS[intent].templates
    for template in chosen_templates:
        chosen = [b for b in _bodies(template) if (b in hidden) == test]
        if chosen:
            groups.append(tuple(lead + b for b in chosen for lead in LEADS))
    return Texts(tuple(groups))


def write(
    intents: np.ndarray, test: bool, rng: np.random.Generator, informal: float = 0.0
) -> list[str]:
    """One text per entry of `intents` `[N]`: a template of the intent at random, informal
    with probability `informal`, then a filling of its slots at random (as a writer asked
    for that intent would), from the held-out partition when `test`, else the training one."""
    picks = rng.random((len(intents), 3))  # [N, 3]: informal, template, filling
    out = []
    for intent, (i, a, b) in zip(intents.tolist(), picks, strict=True):
        groups = texts(intent, test, bool(i < informal)).by_template
        group = groups[int(a * len(groups))]
        out.append(group[int(b * len(group))])
    return out


def draw_intents(
    num: int, rng: np.random.Generator, allowed: np.ndarray | None = None, balanced: bool = False
) -> np.ndarray:
    """`num` intents `[N]` as real users ask for them (`PRIOR`), restricted to `allowed`
    (a boolean mask `[C]`) when given; `balanced`: every allowed intent equally often."""
    weights = np.ones(NUM_INTENTS) if balanced else PRIOR.copy()
    if allowed is not None:
        weights = np.where(allowed, weights, 0.0)
    return rng.choice(NUM_INTENTS, size=num, p=weights / weights.sum())
