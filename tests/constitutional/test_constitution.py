import json
from pathlib import Path

import pytest

from selfimprove.constitutional.checkers import HELD_OUT_CHECKERS, TRAINING_CHECKERS
from selfimprove.constitutional.constitution import (
    Constitution,
    from_hf,
    load_constitution,
    shipped_constitutions,
)
from selfimprove.core.config import ConfigError

PRINCIPLE = (
    "  - id: {id}\n    critique_request: Is it harmful?\n    revision_request: Make it harmless.\n"
)


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line_error(source: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_constitution(source)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_default_ships_16_distinct_principles_with_short_requests() -> None:
    constitution = load_constitution("default")
    ids = [p.id for p in constitution.principles]
    assert shipped_constitutions() == ("default",)
    assert len(ids) == len(set(ids)) == 16
    for principle in constitution.principles:
        assert len(principle.critique_request) <= 200, principle.id
        assert len(principle.revision_request) <= 200, principle.id
        assert principle.choice_instruction, principle.id


def test_default_names_only_training_checkers_and_at_least_four() -> None:
    named = [p.checker for p in load_constitution("default").principles if p.checker]
    assert len(named) >= 4
    assert set(named) <= set(TRAINING_CHECKERS)
    assert not set(named) & set(HELD_OUT_CHECKERS)
    assert set(named) == set(TRAINING_CHECKERS)  # each training checker is used by some principle


def test_principle_lookup() -> None:
    constitution = load_constitution("default")
    assert constitution.principle("privacy").id == "privacy"
    with pytest.raises(KeyError, match="did you mean 'privacy'"):
        constitution.principle("privcy")


def test_a_user_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, "name: mine\nprinciples:\n" + PRINCIPLE.format(id="a"))
    constitution = load_constitution(str(path))
    assert constitution == Constitution.model_validate(
        {
            "name": "mine",
            "principles": [
                {
                    "id": "a",
                    "critique_request": "Is it harmful?",
                    "revision_request": "Make it harmless.",
                }
            ],
        }
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\nprinciples:\n" + PRINCIPLE.format(id="a") + "    severity: 3\n", "unknown key"),
        (
            "name: x\nprinciples:\n" + PRINCIPLE.format(id="a") + PRINCIPLE.format(id="a"),
            "id 'a' is given more than once",
        ),
        (
            "name: x\nprinciples:\n" + PRINCIPLE.format(id="a") + "    checker: no_complance\n",
            "unknown checker 'no_complance'; did you mean 'no_compliance'",
        ),
        (
            "name: x\nprinciples:\n" + PRINCIPLE.format(id="a") + "    checker: harmless\n",
            "unknown checker 'harmless'",  # held-out checkers cannot be named
        ),
        ("name: x\nprinciples: []\n", "principles"),
        ("name: x\nprinciples: [\n", "not valid YAML"),
    ],
)
def test_bad_files_are_one_line_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in one_line_error(str(write(tmp_path, text)))


def test_missing_file_and_unknown_name() -> None:
    assert "config file not found" in one_line_error("/nonexistent/constitution.yaml")
    assert "did you mean 'default'" in one_line_error("defualt")


HF = {
    "constitutions": [
        {"critic": "Say how the answer could be harmful.", "revision": "Rewrite it harmlessly."},
        {"critic": "Is the answer rude?", "revision": "Rewrite it politely."},
    ],
    "system_chat": [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]],
}


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_hf_importer_reads_their_format(tmp_path: Path, suffix: str) -> None:
    path = write(tmp_path, json.dumps(HF), f"hf{suffix}")  # JSON is YAML too
    constitution = from_hf(path)
    assert constitution.name == "hf"
    assert [p.id for p in constitution.principles] == ["hf-1", "hf-2"]
    assert constitution.principle("hf-2").critique_request == "Is the answer rude?"
    assert constitution.principle("hf-1").revision_request == "Rewrite it harmlessly."
    assert constitution.principle("hf-1").checker is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"system_chat": []}), "a list under 'constitutions'"),
        (json.dumps({"constitutions": [{"critic": "x"}]}), "critic and revision"),
        (json.dumps({"constitutions": []}), "principles"),
        (json.dumps({**HF, "extra": 1}), "unknown key 'extra'"),
    ],
)
def test_hf_importer_rejects_bad_files(tmp_path: Path, content: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as caught:
        from_hf(write(tmp_path, content, "hf.json"))
    assert "\n" not in str(caught.value)


def test_hf_importer_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        from_hf(tmp_path / "absent.json")
