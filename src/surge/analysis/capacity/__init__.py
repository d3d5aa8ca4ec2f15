"""Capacity models: USL fit, knee detection, M/M/c (Erlang C) sizing, growth projection.

Pure functions on measured points; see docs/capacity.md. Modules:
``usl`` (fit_usl), ``knee`` (find_knee, Knee), ``erlang`` (erlang_c, size_instances),
``growth`` (project_growth), ``points`` (points from runs or a CSV).
"""

from surge.analysis.capacity.erlang import Sizing, erlang_b, erlang_c, size_instances
from surge.analysis.capacity.growth import Growth, project_growth
from surge.analysis.capacity.knee import Knee, find_knee
from surge.analysis.capacity.points import Point, points_from_csv, points_from_series
from surge.analysis.capacity.usl import USLFit, fit_usl

__all__ = [
    "Growth", "Knee", "Point", "Sizing", "USLFit", "erlang_b", "erlang_c", "find_knee", "fit_usl",
    "points_from_csv", "points_from_series", "project_growth", "size_instances",
]
