"""The dashboard's views: pure functions from loaded studies to Plotly figures.

The static report and the live app render the same figures. ``VIEWS`` lists them in page order;
a view either overlays every study (the Pareto front, the hypervolume) or draws one study.

One module per view (``pareto``, ``front_table``, ``baselines``, ``hypervolume``, ``curves``,
``architecture``, ``parameters``, ``importances``, ``timeline``), what they share in ``style``
(colours, layout) and ``text`` (hover text, sizes in words), and the catalogue in ``views``.
"""

from autostudent.dashboard._figures.architecture import architecture
from autostudent.dashboard._figures.baselines import baselines
from autostudent.dashboard._figures.curves import curves
from autostudent.dashboard._figures.front_table import front_table, front_trials
from autostudent.dashboard._figures.hypervolume import hypervolume
from autostudent.dashboard._figures.importances import importances
from autostudent.dashboard._figures.parameters import parameters
from autostudent.dashboard._figures.pareto import pareto
from autostudent.dashboard._figures.style import (
    BASE_LAYOUT,
    FAILED,
    PRUNED,
    STATE_COLOURS,
    STATE_WORDS,
    STUDY_COLOURS,
    TEACHER,
)
from autostudent.dashboard._figures.text import hover_text, kd_text
from autostudent.dashboard._figures.timeline import timeline
from autostudent.dashboard._figures.views import VIEWS, View, figures

__all__ = [
    "BASE_LAYOUT",
    "FAILED",
    "PRUNED",
    "STATE_COLOURS",
    "STATE_WORDS",
    "STUDY_COLOURS",
    "TEACHER",
    "VIEWS",
    "View",
    "architecture",
    "baselines",
    "curves",
    "figures",
    "front_table",
    "front_trials",
    "hover_text",
    "hypervolume",
    "importances",
    "kd_text",
    "parameters",
    "pareto",
    "timeline",
]
