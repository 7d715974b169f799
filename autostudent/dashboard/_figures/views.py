"""The catalogue of views in page order, and every view's figures for a list of studies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import plotly.graph_objects as go

from autostudent.dashboard._data import StudyData
from autostudent.dashboard._figures.architecture import architecture
from autostudent.dashboard._figures.baselines import baselines
from autostudent.dashboard._figures.curves import curves
from autostudent.dashboard._figures.front_table import front_table
from autostudent.dashboard._figures.hypervolume import hypervolume
from autostudent.dashboard._figures.importances import importances
from autostudent.dashboard._figures.parameters import parameters
from autostudent.dashboard._figures.pareto import pareto
from autostudent.dashboard._figures.timeline import timeline


@dataclass(frozen=True)
class View:
    key: str
    title: str
    help: str  # one sentence under the title: what the view shows
    draw: Callable[..., go.Figure]
    overlay: bool  # True: one figure for all studies; False: one per study


VIEWS: tuple[View, ...] = (
    View(
        "pareto",
        "Pareto front",
        "Accuracy against size on a log axis (buttons: params, "
        "FLOPs, latency); the front highlighted, dominated faded, pruned hollow, failed as "
        "crosses below, the teacher as a star.",
        pareto,
        overlay=True,
    ),
    View(
        "front",
        "Students on the front",
        "The non-dominated students, smallest first, "
        "against the teacher, with the command that exports each.",
        front_table,
        overlay=False,
    ),
    View(
        "baselines",
        "Against hand-designed students",
        "The front's students and hand-designed baselines (ResNet, MobileNetV2-style) of "
        "similar size, all retrained with export's recipe: test accuracy, mean ± sd over seeds.",
        baselines,
        overlay=True,
    ),
    View(
        "hypervolume",
        "Hypervolume",
        "How the front improved as trials finished.",
        hypervolume,
        overlay=True,
    ),
    View(
        "curves",
        "Learning curves",
        "Validation accuracy per epoch; pruned trials stop early.",
        curves,
        overlay=False,
    ),
    View(
        "architecture",
        "Architecture",
        "A front student's top, middle and bottom graphs (pick the trial in the menu).",
        architecture,
        overlay=False,
    ),
    View(
        "parameters",
        "Parameters",
        "Generator and KD parameters of complete trials against "
        "accuracy (drag along an axis to filter).",
        parameters,
        overlay=False,
    ),
    View(
        "importances",
        "Importances",
        "Which parameters drive accuracy and size (fANOVA).",
        importances,
        overlay=False,
    ),
    View(
        "timeline",
        "Timeline",
        "Trials on each Ray worker over time: idle gaps are overhead.",
        timeline,
        overlay=False,
    ),
)


def figures(studies: list[StudyData]) -> list[tuple[View, str, go.Figure]]:
    """Every view's figures in page order: (view, study name or '' for overlays, figure)."""
    out = []
    for view in VIEWS:
        if view.overlay:
            out.append((view, "", view.draw(studies)))
        else:
            out.extend((view, study.name, view.draw(study)) for study in studies)
    return out
