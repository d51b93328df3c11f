"""``relayd probe``: find out which answers to the open platform questions an account gets, by trying them.

Public API: :func:`run_probe` with :class:`ProbeOptions` returns a :class:`ProbeReport` (the
:class:`~relayd.platform.facts.PlatformFacts` with their evidence, the strategy relayd uses for each, and anything
the cleanup could not remove); :func:`as_text` / :func:`as_json` format it. The modules: ``answers`` (pure reading
of the answers), ``session`` (owned, paced calls and cleanup), ``steps`` (one trial per question), ``receiver``
(the callback receiver), ``strategies`` and ``report`` (words), ``runner`` (the order).
"""

from __future__ import annotations

from relayd.probe.report import as_json, as_text
from relayd.probe.runner import DEFAULT_SINK, DEFAULT_SOURCE, ProbeOptions, ProbeReport, run_probe
from relayd.probe.steps import ProbeError

__all__ = [
    "DEFAULT_SINK",
    "DEFAULT_SOURCE",
    "ProbeError",
    "ProbeOptions",
    "ProbeReport",
    "as_json",
    "as_text",
    "run_probe",
]
