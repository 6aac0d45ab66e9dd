from collections import Counter

import pytest

from selfimprove.constitutional.prompts import (
    HELD_OUT_ACTS,
    HELD_OUT_TEMPLATES,
    RED_TEAM_ACTS,
    RED_TEAM_TEMPLATES,
    number_words,
    prompt_set,
    select,
)
from selfimprove.data.capitals import capitals


def count(kind: str, split: str) -> int:
    return sum(1 for p in prompt_set() if p.kind == kind and p.split == split)


def test_counts() -> None:
    categories, acts, templates = 8, 8, 8
    train_acts, train_templates = acts - HELD_OUT_ACTS, templates - HELD_OUT_TEMPLATES
    assert len(RED_TEAM_ACTS) == categories
    assert all(len(a) == acts for a in RED_TEAM_ACTS.values())
    assert len(RED_TEAM_TEMPLATES) == templates
    assert count("red_team", "train") == categories * train_acts * train_templates == 288
    assert count("red_team", "test") == categories * HELD_OUT_ACTS * templates == 128
    assert count("helpful", "train") == 297
    assert count("helpful", "test") == 99


def test_ids_and_texts_are_unique() -> None:
    prompts = prompt_set()
    assert len({p.id for p in prompts}) == len(prompts)
    assert len({p.text for p in prompts}) == len(prompts)


def test_fields_fit_the_kind() -> None:
    for p in prompt_set():
        if p.kind == "red_team":
            assert len(p.topic) >= 2 and not p.answers, p.id
        else:
            assert p.answers and not p.topic, p.id
        assert all(w == w.lower() for w in (*p.topic, *p.answers)), p.id


def test_red_team_test_split_is_held_out_by_content() -> None:
    train = [p.text for p in prompt_set() if p.kind == "red_team" and p.split == "train"]
    test = [p.text for p in prompt_set() if p.kind == "red_team" and p.split == "test"]
    assert not set(test) & set(train)
    held_out_acts = [act for acts in RED_TEAM_ACTS.values() for act, _ in acts[-HELD_OUT_ACTS:]]
    for act in held_out_acts:
        assert not any(act in text for text in train), act
        assert sum(act in text for text in test) == len(RED_TEAM_TEMPLATES)
    for template in RED_TEAM_TEMPLATES[-HELD_OUT_TEMPLATES:]:
        wrapper = template.split("{act}")[0]
        assert not any(text.startswith(wrapper) for text in train), template
        assert any(text.startswith(wrapper) for text in test), template


def test_helpful_test_split_is_held_out_by_item() -> None:
    helpful = [p for p in prompt_set() if p.kind == "helpful"]
    train = {p.text for p in helpful if p.split == "train"}
    assert not {p.text for p in helpful if p.split == "test"} & train
    # an item (country, operand pair, fact) lives in one split, with all its phrasings
    items: dict[str, set[str]] = {}
    for p in helpful:
        item = p.id.rsplit("-p", 1)[0] if p.category in {"facts", "looks_risky"} else p.id
        items.setdefault(item, set()).add(p.split)
    assert all(len(splits) == 1 for splits in items.values())
    # a held-out sum is not a trained sum with its operands swapped
    pairs = {
        split: {
            (p.id.split("-")[2], frozenset(p.id.split("-")[3:]))
            for p in helpful
            if p.category == "arithmetic" and p.split == split
        }
        for split in ("train", "test")
    }
    assert not pairs["train"] & pairs["test"]


def test_capital_prompts_cover_the_offline_table() -> None:
    table = capitals()
    found = {p.id.removeprefix("hp-capitals-"): p for p in prompt_set() if p.category == "capitals"}
    assert len(found) == len(table)
    assert found["france"].answers == ("paris",)
    assert found["south-africa"].answers == (table["south_africa"].replace("_", " "),)
    assert "the United Kingdom" in found["united-kingdom"].text


def test_known_answers() -> None:
    by_id = {p.id: p for p in prompt_set()}
    assert by_id["hp-facts-week-p0"].answers == ("7", "seven")
    sums = [p for p in prompt_set() if p.id.startswith("hp-arithmetic-sum-")]
    for p in sums:
        a, b = map(int, p.id.split("-")[3:])
        assert p.answers == (str(a + b), number_words(a + b))
    assert number_words(42) == "forty-two"
    assert number_words(147) == "one hundred forty-seven"
    assert number_words(0) == "zero"
    with pytest.raises(ValueError):
        number_words(1000)


def test_every_category_in_both_splits() -> None:
    for kind in ("red_team", "helpful"):
        train = {p.category for p in prompt_set() if p.kind == kind and p.split == "train"}
        test = {p.category for p in prompt_set() if p.kind == kind and p.split == "test"}
        assert train == test
    assert len({p.category for p in prompt_set() if p.kind == "red_team"}) >= 8


def test_select_is_balanced_and_deterministic() -> None:
    chosen = select("red_team", "test", limit=40, seed=3)
    assert len(chosen) == 40
    assert set(Counter(p.category for p in chosen).values()) == {5}
    assert select("red_team", "test", limit=40, seed=3) == chosen
    assert select("red_team", "test", limit=40, seed=4) != chosen
    assert all(p.kind == "red_team" and p.split == "test" for p in chosen)


def test_select_balances_helpful_categories_of_unequal_size() -> None:
    chosen = select("helpful", "test", limit=40)
    counts = Counter(p.category for p in chosen)
    assert counts == {"capitals": 10, "arithmetic": 10, "facts": 10, "looks_risky": 10}


def test_select_without_limit_and_beyond_the_set() -> None:
    everything = select("helpful", "train")
    assert len(everything) == count("helpful", "train")
    assert len(set(select("helpful", "train", limit=10_000))) == len(everything)
    assert select("helpful", "train", limit=0) == ()
    with pytest.raises(ValueError):
        select("helpful", "train", limit=-1)


def test_prompt_set_is_cached_and_rebuilds_identically() -> None:
    first = prompt_set()
    assert prompt_set() is first
    prompt_set.cache_clear()
    assert prompt_set() == first
