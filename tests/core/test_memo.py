"""The one-slot memo that lets a run's arms share a teacher or a generation-0 model."""

from selfimprove.core.memo import Newest


def test_newest_builds_once_per_key_and_keeps_only_the_newest() -> None:
    calls: list[str] = []
    memo: Newest[str, str] = Newest()

    def build(key: str) -> str:
        calls.append(key)
        return key.upper()

    assert memo.get("a", lambda: build("a")) == "A"
    assert memo.get("a", lambda: build("a")) == "A"
    assert memo.get("b", lambda: build("b")) == "B"
    assert memo.get("a", lambda: build("a")) == "A"  # "a" was dropped for "b": built again
    assert calls == ["a", "b", "a"]
