import re
from pathlib import Path

from selfimprove.tour import run_tour
from tests.conftest import CONFIGS


def test_tour_runs_each_study_and_writes_one_page_of_claims(tmp_path: Path) -> None:
    tour = tmp_path / "tour.yaml"
    tour.write_text(
        f"""
title: a tiny tour
studies:
  - title: "E4 small"
    config: {CONFIGS / "collapse/regression.yaml"}
    quick: [num_seeds=200, generations=10]
  - title: "E6 small"
    config: {CONFIGS / "collapse/zipf.yaml"}
    quick: [num_seeds=8, generations=6]
  - title: "E1 in full only"
    config: {CONFIGS / "collapse/gaussian.yaml"}
    full_only: true
"""
    )
    page, results = run_tour(tour, tmp_path / "runs", quick=True)
    assert [title for title, _ in results] == ["E4 small", "E6 small"]
    assert all(claims for _, claims in results)
    text = page.read_text()
    held = sum(c.holds is True for _, cs in results for c in cs)
    assert f"{held} of {sum(len(cs) for _, cs in results)} claims hold" in text
    assert text.count("<section id=") == 2 and "quick settings" in text
    assert text.index("<h2>Contents</h2>") < text.index("<section id=")
    assert "Left out of the quick tour (they need their full settings): E1 in full only" in text
    # every metric's figure is in each run's own report, linked from its section
    links = re.findall(r"<a href='([^']+/report\.html)'>the run's own report</a>", text)
    assert len(links) == 2 and all((page.parent / link).is_file() for link in links)
    assert "All metrics (" not in text and "All metrics (" in (page.parent / links[0]).read_text()


def test_only_picks_studies_and_tour_text_is_shown_escaped(tmp_path: Path) -> None:
    """A tour file is text someone wrote: its intro and titles land in the page escaped."""
    tour = tmp_path / "tour.yaml"
    tour.write_text(
        f"""
title: a hostile tour
intro: "<script>alert('intro')</script>"
studies:
  - title: "E4 <img src=x onerror=alert(1)>"
    config: {CONFIGS / "collapse/regression.yaml"}
    quick: [num_seeds=200, generations=5]
  - title: "E6 <script>alert('left out')</script>"
    config: {CONFIGS / "collapse/zipf.yaml"}
"""
    )
    page, results = run_tour(tour, tmp_path / "runs", quick=True, only="regression")
    assert [title for title, _ in results] == ["E4 <img src=x onerror=alert(1)>"]
    text = page.read_text()
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "Left out by <code>--only</code>: E6 &lt;script&gt;" in text
