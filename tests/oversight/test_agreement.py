"""Agreement between reviewers against answers worked out by hand: Cohen's kappa on the
classic 2x2 table, Krippendorff's alpha on a small nominal example, percent agreement, the
votes read from a real queue (newest decision, edit = accept, skips withdraw, adjudications
left out), and None where there is no overlap."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfimprove.oversight.agreement import NOT_ENOUGH_OVERLAP, agreement, agreement_of
from selfimprove.oversight.queue import Item, ReviewQueue


def test_cohen_kappa_of_the_classic_two_by_two_table() -> None:
    # 50 items: 20 both accept, 5 ann accepts and bob rejects, 10 the other way, 15 both reject.
    # observed p_o = (20 + 15) / 50 = 0.7; ann accepts 25/50, bob 30/50, so chance agreement
    # p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5 and kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    cells = [("accept", "accept")] * 20 + [("accept", "reject")] * 5
    cells += [("reject", "accept")] * 10 + [("reject", "reject")] * 15
    votes = {f"item-{i}": {"ann": a, "bob": b} for i, (a, b) in enumerate(cells)}
    result = agreement_of(votes, {})
    assert result.num_items == 50 and result.reviewers == ("ann", "bob")
    assert result.percent == pytest.approx(0.7)
    (pair,) = result.pairs
    assert (pair.first, pair.second, pair.num_items) == ("ann", "bob", 50)
    assert pair.kappa == pytest.approx(0.4)
    assert pair.percent == pytest.approx(0.7)
    assert result.problem == ""


# Three reviewers, four items (A accept, R reject, - no vote):
#
#   item   ann  bob  cat
#   1      A    A    A
#   2      A    A    R
#   3      R    R    -
#   4      A    -    R
#
# Krippendorff's coincidences: a unit with m votes adds 1/(m-1) for each ordered pair of
# votes in it.  item 1 (m=3): 6 ordered A-A pairs / 2 -> o_AA += 3.  item 2 (m=3): 2 A-A
# pairs / 2 -> o_AA += 1, 2 A-R and 2 R-A pairs / 2 -> o_AR += 1, o_RA += 1.  item 3: o_RR += 2.
# item 4: o_AR += 1, o_RA += 1.  So o_AA = 4, o_AR = o_RA = 2, o_RR = 2; n = 10 votes,
# n_A = 6, n_R = 4.  alpha = 1 - (n - 1) * (o_AR + o_RA) / (n_A n_R + n_R n_A)
#                         = 1 - 9 * 4 / 48 = 0.25.
# Percent: agreeing pairs / pairs = (3 + 1 + 1 + 0) / (3 + 3 + 1 + 1) = 5/8.
# Kappa per pair: ann-bob agree on items 1-3, both use both labels: p_o = 1 -> kappa 1.
# ann-cat on items 1, 2, 4: ann always accepts, so p_e = 1 * 1/3 = p_o = 1/3 -> kappa 0.
# bob-cat on items 1, 2: p_o = 1/2, p_e = 1 * 1/2 -> kappa 0.
TABLE = {
    "1": {"ann": "accept", "bob": "accept", "cat": "accept"},
    "2": {"ann": "accept", "bob": "accept", "cat": "reject"},
    "3": {"ann": "reject", "bob": "reject"},
    "4": {"ann": "accept", "cat": "reject"},
}


def test_krippendorff_alpha_percent_and_kappas_of_a_small_nominal_table() -> None:
    result = agreement_of(TABLE, {})
    assert result.num_items == 4 and result.reviewers == ("ann", "bob", "cat")
    assert result.alpha == pytest.approx(0.25)
    assert result.percent == pytest.approx(5 / 8)
    kappas = {(p.first, p.second): (p.num_items, p.kappa) for p in result.pairs}
    assert kappas == {
        ("ann", "bob"): (3, pytest.approx(1.0)),
        ("ann", "cat"): (3, pytest.approx(0.0)),
        ("bob", "cat"): (2, pytest.approx(0.0)),
    }


def _item(text: str, gold: str | None = None) -> Item:
    return Item.new(
        "rationale", "star", 1, {"prompt": "1+1=", "completion": text}, ("completion",),
        {"source": "synthetic"}, {"verifier/passed": True}, 3, gold,
    )  # fmt: skip


def test_a_queue_gives_the_same_answer_through_its_decisions(tmp_path: Path) -> None:
    one, two, three, four = (
        _item("2", "accept"), _item("3", "reject"), _item("4"), _item("5"),
    )  # fmt: skip
    with ReviewQueue.open(tmp_path) as queue:
        queue.add([one, two, three, four])
        for name in ("ann", "bob", "cat"):
            queue.decide(one.id, name, "accept")
        queue.decide(two.id, "ann", "accept")
        queue.decide(two.id, "bob", "edit", edit={"completion": "1+1=2"})  # edit = accept
        queue.decide(two.id, "cat", "reject", "incorrect")
        queue.decide(two.id, "dan", "accept", role="adjudicate")  # not an independent vote
        queue.decide(three.id, "ann", "reject", "incorrect")
        queue.decide(three.id, "bob", "reject", "incorrect")
        queue.decide(three.id, "cat", "accept")
        queue.decide(three.id, "cat", "skip")  # withdraws cat's vote
        queue.decide(four.id, "ann", "reject", "incorrect")
        queue.decide(four.id, "ann", "accept")  # the newest decision counts
        queue.decide(four.id, "cat", "reject", "low_quality")
        result = agreement(queue)
    assert result.num_items == 4 and result.reviewers == ("ann", "bob", "cat")
    assert result.alpha == pytest.approx(0.25) and result.percent == pytest.approx(5 / 8)
    # gold: item one is right to accept, item two right to reject
    assert result.accuracy == {"ann": (1, 2), "bob": (1, 2), "cat": (2, 2), "dan": (0, 1)}


def test_without_overlap_every_measure_is_none(tmp_path: Path) -> None:
    one, two = _item("2", "accept"), _item("3")
    with ReviewQueue.open(tmp_path) as queue:
        queue.add([one, two])
        queue.decide(one.id, "ann", "accept")
        queue.decide(two.id, "bob", "reject", "incorrect")
        queue.decide(two.id, "cat", "skip")  # a skip is no vote: still no overlap
        result = agreement(queue)
    assert (result.num_items, result.reviewers, result.pairs) == (0, (), ())
    assert result.percent is None and result.alpha is None
    assert result.problem == NOT_ENOUGH_OVERLAP
    assert result.accuracy == {"ann": (1, 1)}


def test_unanimous_votes_leave_kappa_and_alpha_undefined() -> None:
    votes = {str(i): {"ann": "accept", "bob": "accept"} for i in range(5)}
    result = agreement_of(votes, {})
    assert result.percent == 1.0
    assert result.alpha is None and result.pairs[0].kappa is None
