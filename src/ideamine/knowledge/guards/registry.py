"""Every shipped guard by type: the table :func:`~ideamine.knowledge.guards.base.guard_for`
reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ideamine.knowledge.guards.architecture import check_scalability, check_security
from ideamine.knowledge.guards.base import Guard, GuardInput, GuardReport
from ideamine.knowledge.guards.beta import (
    check_canary_validation,
    check_deployment_health,
    check_monitoring,
)
from ideamine.knowledge.guards.brand import check_brand_compliance
from ideamine.knowledge.guards.build import check_compilation, check_lint, check_test_coverage
from ideamine.knowledge.guards.clarity import check_clarity
from ideamine.knowledge.guards.completeness import check_completeness
from ideamine.knowledge.guards.contradictions import Contradictions
from ideamine.knowledge.guards.coverage import check_coverage
from ideamine.knowledge.guards.critique import check_assumption_validation, check_risk_coverage
from ideamine.knowledge.guards.design import check_design_consistency
from ideamine.knowledge.guards.feasibility import check_feasibility
from ideamine.knowledge.guards.qa import (
    check_accessibility,
    check_performance,
    check_test_pass_rate,
)
from ideamine.knowledge.guards.release import check_release_completeness, check_version_validation
from ideamine.knowledge.guards.responsive import check_responsive_design
from ideamine.knowledge.guards.scans import (
    check_cve_count,
    check_sbom_completeness,
    check_secrets_detected,
)
from ideamine.knowledge.guards.schema import check_schema
from ideamine.knowledge.guards.stories import check_acceptance_tests, check_story_completion
from ideamine.knowledge.guards.viability import check_financial_viability

__all__ = ["GUARDS", "RuleGuard"]


@dataclass(slots=True)
class RuleGuard:
    """A guard whose check is a pure function of its input (every guard but contradictions,
    which may await the model judge)."""

    type: str
    rule: Callable[[GuardInput], GuardReport]

    async def check(self, given: GuardInput) -> GuardReport:
        """Apply the rule; see its module for what it checks."""
        return self.rule(given)


_RULES: Mapping[str, Callable[[GuardInput], GuardReport]] = {
    "completeness": check_completeness,
    "clarity": check_clarity,
    "feasibility": check_feasibility,
    "risk_coverage": check_risk_coverage,
    "assumption_validation": check_assumption_validation,
    "coverage": check_coverage,
    "financial_viability": check_financial_viability,
    "scalability": check_scalability,
    "security": check_security,
    "compilation": check_compilation,
    "test_coverage": check_test_coverage,
    "lint": check_lint,
    "cve_count": check_cve_count,
    "secrets_detected": check_secrets_detected,
    "sbom_completeness": check_sbom_completeness,
    "story_completion": check_story_completion,
    "acceptance_tests": check_acceptance_tests,
    "test_pass_rate": check_test_pass_rate,
    "performance": check_performance,
    "accessibility": check_accessibility,
    "design_consistency": check_design_consistency,
    "responsive_design": check_responsive_design,
    "brand_compliance": check_brand_compliance,
    "release_completeness": check_release_completeness,
    "version_validation": check_version_validation,
    "deployment_health": check_deployment_health,
    "monitoring": check_monitoring,
    "canary_validation": check_canary_validation,
    "schema": check_schema,
}

GUARDS: Mapping[str, Guard] = {
    **{name: RuleGuard(name, rule) for name, rule in _RULES.items()},
    "contradictions": Contradictions(),
}
