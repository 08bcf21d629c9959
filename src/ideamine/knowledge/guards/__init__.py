"""Guards: plug-ins that check a phase attempt's artifacts before its gate scores them.

One :class:`~ideamine.knowledge.guards.base.Guard` protocol; :func:`guard_for` finds the
guard of a phase YAML's ``guards[].type``. Each module's docstring states its rules:

=====================================================  ======================================
module                                                 guards
=====================================================  ======================================
completeness, clarity, feasibility, critique           intake, ideation and critique content
contradictions (quantities, references), coverage      prd consistency and coverage
viability, architecture                                bizdev and architecture content
build, scans, stories, qa                              tool evidence (docs/evidence.md)
design, responsive, brand, release, beta               aesthetic, release and beta
schema                                                 optional phase-level JSON Schemas
=====================================================  ======================================

Shared pieces: ``base`` (the types), ``settings`` (config with typo checks), ``reading``
(paths, thinness), ``evidence`` (tool envelopes, gaps), ``verdict`` (scored checks),
``colors`` (WCAG contrast), ``registry`` (type → guard).
"""

from ideamine.knowledge.guards.base import (
    GUARD_TYPES,
    Guard,
    GuardInput,
    GuardReport,
    Issue,
    Severity,
    guard_for,
)

__all__ = ["GUARD_TYPES", "Guard", "GuardInput", "GuardReport", "Issue", "Severity", "guard_for"]
