"""The tour: run each study of the shipped `tour.yaml` (or a tour file of one's own) and write
one page of the chapter's claims.

A tour file lists studies, each a config path (relative to the tour file), a title, and the
`quick` overrides that `--quick` applies; a study marked `full_only` (one whose effect needs
its full settings to show) is left out of a quick tour, and the page says so.
"""

from __future__ import annotations

import html
from pathlib import Path

from pydantic import Field

from selfimprove.core.config import ConfigError, ConfigModel, read_yaml, validate
from selfimprove.core.engine import Progress
from selfimprove.core.records import Claim
from selfimprove.core.store import RunStore, now
from selfimprove.experiments import claims_for, load_config, parse_config, start_run
from selfimprove.reports.html import (
    Study,
    anchor_of,
    study,
    tally,
    write_page,
    write_run_report,
)


class TourStudy(ConfigModel):
    title: str = Field(description="section heading")
    config: Path = Field(description="recipe, relative to the tour file")
    quick: tuple[str, ...] = Field((), description="overrides applied with --quick")
    full_only: bool = Field(False, description="left out of --quick (needs its full settings)")


class TourConfig(ConfigModel):
    title: str = "selfimprove tour"
    intro: str = ""
    studies: tuple[TourStudy, ...] = Field(min_length=1)


def run_tour(
    tour_file: Path,
    runs_dir: Path,
    quick: bool,
    progress: Progress | None = None,
    only: str | None = None,
) -> tuple[Path, list[tuple[str, list[Claim]]]]:
    """Run every study (with `only`, those whose recipe or title contains it); returns the
    tour page's path and each study's claims."""
    tour = validate(TourConfig, read_yaml(tour_file), str(tour_file))
    studies = [s for s in tour.studies if not (quick and s.full_only)]
    if only is not None:
        chosen = [s for s in studies if only.lower() in f"{s.config} {s.title}".lower()]
        if not chosen:
            names = ", ".join(str(s.config.with_suffix("")) for s in studies)
            raise ConfigError(f"tour --only {only!r}: no study matches (its studies: {names})")
        studies = chosen
    configs = [
        load_config(tour_file.parent / study.config, list(study.quick) if quick else [])
        for study in studies
    ]  # validate every recipe before running any
    runs = [start_run(config, runs_dir, progress).run_dir for config in configs]
    return write_tour_page(tour, list(zip(studies, runs, strict=True)), runs_dir, quick)


def write_tour_page(
    tour: TourConfig, runs: list[tuple[TourStudy, Path]], runs_dir: Path, quick: bool
) -> tuple[Path, list[tuple[str, list[Claim]]]]:
    """The tour's page from its finished runs: contents (failing claims first), then a
    section per study with its claims, their figures and tables; each run's own report
    (written beside its store) holds every other figure, so the page stays small."""
    sections: list[Study] = []
    results: list[tuple[str, list[Claim]]] = []
    for index, (tour_study, run_dir) in enumerate(runs, start=1):
        store = RunStore.open(run_dir)
        try:
            info = store.info()
            claims = claims_for(parse_config(info.config, run_dir.name), store)
            anchor = anchor_of(tour_study.title, index)
            report = write_run_report(store, claims)  # every figure, one click away
            figures_at = report.relative_to(runs_dir).as_posix()
            sections.append(study(store, claims, tour_study.title, anchor, figures_at))
        finally:
            store.close()
        results.append((tour_study.title, claims))
    every = [c for _, cs in results for c in cs]
    mode = "quick settings" if quick else "full settings"
    intro = f"<p>{html.escape(tour.intro)}</p><p><b>{tally(every)}</b> ({mode}, {now()}).</p>"
    ran = [r[0] for r in runs]
    full_only = [s.title for s in tour.studies if s not in ran and quick and s.full_only]
    not_chosen = [s.title for s in tour.studies if s not in ran and s.title not in full_only]
    if full_only:
        intro += (
            "<p>Left out of the quick tour (they need their full settings): "
            + html.escape("; ".join(full_only))
            + ". Run <code>selfimprove tour</code> for them.</p>"
        )
    if not_chosen:
        intro += (
            "<p>Left out by <code>--only</code>: " + html.escape("; ".join(not_chosen)) + ".</p>"
        )
    stamp = now().replace(":", "").replace("-", "")
    path = write_page(runs_dir / f"tour-{stamp}.html", tour.title, sections, intro)
    return path, results
