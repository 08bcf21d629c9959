"""Content guards of intake … architecture on hand-made artifacts: each passes on a sound input
and fails, naming what is wrong, on a broken one."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from ideamine.knowledge.guards import GuardReport

Check = Callable[..., GuardReport]


def idea_spec() -> dict[str, Any]:
    return {
        "title": "Harvest Link",
        "description": "Harvest Link lets local farmers list produce and lets nearby restaurants "
        "order it for next-day delivery.",
        "problem_statement": "Restaurants phone farmers one by one.",
        "target_users": ["farmers", "restaurants"],
        "success_criteria": [
            "A first-time farmer lists produce in under 3 minutes.",
            "95% of API requests complete in 1000 ms or less at 100 requests per second.",
        ],
        "constraints": {
            "budget_usd": 5000,
            "timeline_days": 30,
            "compliance": [],
            "tech_preferences": ["Python"],
        },
        "assumptions": [{"id": "A-01", "field": "title", "statement": "s", "reason": "r"}],
    }


def ideation() -> dict[str, Any]:
    return {
        "IdeationResult": {
            "strategy": {"vision": "The first place farmers sell to restaurants."},
            "features": [
                {"id": "F-01", "priority": "must"},
                {"id": "F-02", "priority": "must"},
                {"id": "F-03", "priority": "could"},
            ],
        },
        "CompetitiveAnalysis": {"competitors": [{"name": "Phone calls"}]},
        "TechStackProposal": {
            "tech_stack": {
                "backend": "Python 3.11 with FastAPI",
                "database": "SQLite, then PostgreSQL",
                "frontend": "Plain HTML and JavaScript",
                "infrastructure": "One container behind HTTPS",
                "testing": "pytest and coverage.py",
            },
            "dependencies": [
                {"name": "fastapi", "version": "0.115.0"},
                {"name": "pytest", "version": "8.3.2"},
            ],
            "preferences_applied": ["Python"],
            "rationale": ["A small stack one developer can run end to end."],
        },
        "Personas": {"personas": [{"id": "P-01", "name": "Farah"}]},
    }


# --- completeness --------------------------------------------------------------------------


def test_completeness_passes_when_every_field_is_present_and_substantive(check: Check) -> None:
    report = check(
        "completeness",
        ideation(),
        config={"fields": ["strategy", "competitors", "tech_stack", "personas"]},
    )
    assert report.passed and report.scores == {"completeness": 1.0}
    assert "strategy (IdeationResult.strategy)" in report.reasons[0]


def test_completeness_finds_fields_by_alias_and_by_artifact_type(check: Check) -> None:
    artifacts = {
        "OpenAPI": {"paths": {"/farmers": {"get": {"summary": "List farmers"}}}},
        "UserStories": {"stories": [1]},
    }
    config = {"fields": ["api_design", "user_stories"], "aliases": {"api_design": "OpenAPI.paths"}}
    report = check("completeness", artifacts, config=config)
    assert report.passed, report.reasons


def test_completeness_fails_on_missing_and_thin_fields_naming_agents(check: Check) -> None:
    artifacts = ideation()
    artifacts["IdeationResult"]["strategy"] = "TBD"
    del artifacts["Personas"]
    report = check(
        "completeness",
        artifacts,
        config={"fields": ["strategy", "competitors", "tech_stack", "personas"]},
        producers={
            "IdeationResult": ("StrategyAgent",),
            "Personas": ("PersonaAgent",),
            "CompetitiveAnalysis": ("CompetitiveAgent",),
        },
    )
    assert not report.passed
    assert report.score == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    assert any(
        "strategy (IdeationResult.strategy) is the placeholder 'TBD'" in r for r in report.reasons
    )
    assert any("field personas is missing" in r for r in report.reasons)
    (issue,) = report.issues
    assert issue.kind == "coverage"
    assert issue.missing_agents == ("StrategyAgent", "PersonaAgent")


def test_completeness_thin_rules(check: Check) -> None:
    artifacts = {"IdeaSpec": {"title": "App", "target_users": ["", " "], "constraints": {"a": []}}}
    config = {"fields": ["title", "target_users", "constraints", "description"], "min_words": {}}
    report = check("completeness", artifacts, config=config)
    text = " ".join(report.reasons)
    assert "title (IdeaSpec.title) has 3 characters, fewer than 5" in text
    assert "target_users (IdeaSpec.target_users) has 0 substantive item(s)" in text
    assert "constraints (IdeaSpec.constraints) is an object with no content" in text
    assert "field description is missing" in text
    words = check(
        "completeness",
        {"IdeaSpec": {"description": "An app for things."}},
        config={"fields": ["description"], "min_words": {"description": 10}},
    )
    assert not words.passed and "has 4 words, fewer than 10" in words.reasons[1]


# --- clarity -------------------------------------------------------------------------------


def test_clarity_passes_a_precise_idea_spec(check: Check) -> None:
    report = check("clarity", {"IdeaSpec": idea_spec()})
    assert report.passed and report.scores["clarity"] == pytest.approx(1.0)


def test_clarity_fails_vague_unmeasurable_criteria(check: Check) -> None:
    spec = idea_spec()
    spec["description"] = "A fast, user-friendly and seamless app."
    spec["success_criteria"] = ["Users find it easy.", "It is quickly adopted by many people."]
    report = check("clarity", {"IdeaSpec": spec})
    assert not report.passed and report.score < 0.7
    text = " ".join(report.reasons)
    assert "2 of 2 success criteria state no number to measure" in text
    assert "description uses 'fast'" in text and "success_criteria[1] uses 'quickly'" in text
    assert "description has 6 words, fewer than 10" in text
    assert report.issues[0].kind == "ambiguity"


def test_clarity_fails_without_an_idea_spec(check: Check) -> None:
    report = check("clarity", {})
    assert not report.passed and "artifact IdeaSpec is missing" in report.reasons


# --- feasibility ---------------------------------------------------------------------------


def test_feasibility_passes_a_pinned_full_stack_that_fits(check: Check) -> None:
    report = check("feasibility", ideation(), upstream={"IdeaSpec": idea_spec()})
    assert report.passed and report.scores == {"feasibility": 1.0}


def test_feasibility_fails_an_open_stack_with_too_many_musts(check: Check) -> None:
    artifacts = ideation()
    stack = artifacts["TechStackProposal"]
    stack["tech_stack"] = {"backend": "Python"}
    stack["dependencies"] = [{"name": "fastapi", "version": ">=0.100"}]
    stack["rationale"] = []
    artifacts["IdeationResult"]["features"] = [
        {"id": f"F-{i}", "priority": "must"} for i in range(12)
    ]
    spec = idea_spec()
    spec["constraints"]["tech_preferences"] = ["Rust"]
    report = check("feasibility", artifacts, upstream={"IdeaSpec": spec})
    assert not report.passed
    text = " ".join(report.reasons)
    assert "tech_stack leaves 4 of 5 layers open" in text
    assert "1 of 1 dependencies are not pinned: fastapi >=0.100" in text
    assert "12 must-have features do not fit 30 days at 5 days each (capacity 6.0)" in text
    assert "not reflected in the proposal: Rust" in text
    assert report.issues[0].kind == "scope"


# --- critique ------------------------------------------------------------------------------


def risks(*categories: str) -> dict[str, Any]:
    return {
        "risks": [
            {"id": f"R-0{i}", "category": c, "mitigation": "Interview ten farmers", "owner": "pm"}
            for i, c in enumerate(categories, 1)
        ]
    }


def test_risk_coverage_passes_three_categories(check: Check) -> None:
    report = check("risk_coverage", {"RiskRegister": risks("technical", "business", "user")})
    assert report.passed and report.scores == {"risk_coverage": 1.0}


def test_risk_coverage_fails_few_risks_one_category_and_bare_ones(check: Check) -> None:
    register = risks("technical", "technical")
    register["risks"][1]["mitigation"] = ""
    report = check(
        "risk_coverage", {"RiskRegister": register}, producers={"RiskRegister": ("RiskAgent",)}
    )
    assert not report.passed
    text = " ".join(report.reasons)
    assert "RiskRegister lists 2 risks, fewer than 3" in text
    assert "no risk in categories business, user" in text
    assert "1 risk(s) lack a mitigation or an owner: R-02" in text
    assert report.issues[0].missing_agents == ("RiskAgent",)


def revised(count: int, *, sources: tuple[str, ...] = ("A-01",)) -> dict[str, Any]:
    return {
        "assumptions": [
            {
                "id": f"RA-{i:02}",
                "status": "challenged",
                "challenge": "Farmers may not want this at all.",
                "validation_method": "Interview eight farmers.",
                "source": sources[i % len(sources)],
            }
            for i in range(count)
        ]
    }


def test_assumption_validation_passes_five_challenged(check: Check) -> None:
    report = check(
        "assumption_validation",
        {"RevisedAssumptions": revised(5)},
        upstream={"IdeaSpec": idea_spec()},
    )
    assert report.passed and report.scores == {"assumption_quality": 1.0}


def test_assumption_validation_fails_few_untestable_and_dropped(check: Check) -> None:
    doc = revised(3, sources=("IdeationResult",))
    doc["assumptions"][0]["validation_method"] = ""
    report = check(
        "assumption_validation", {"RevisedAssumptions": doc}, upstream={"IdeaSpec": idea_spec()}
    )
    assert not report.passed
    text = " ".join(report.reasons)
    assert "3 assumptions challenged, fewer than 5" in text
    assert "1 challenged assumption(s) say not how to validate them: RA-00" in text
    assert "intake assumptions no revised assumption takes up: A-01" in text


# --- coverage ------------------------------------------------------------------------------


def prd(stories: int = 5, nfrs: int = 3, traced: int | None = None) -> dict[str, Any]:
    ids = [f"US-{i:03}" for i in range(1, stories + 1)]
    return {
        "UserStories": {"stories": [{"id": i} for i in ids]},
        "NFRs": {"nfrs": [{"id": f"NFR-0{i}"} for i in range(nfrs)]},
        "RTM": {
            "traceability_matrix": [
                {"story_id": i} for i in ids[: len(ids) if traced is None else traced]
            ]
        },
    }


def test_coverage_passes_with_enough_stories_and_nfrs_all_traced(check: Check) -> None:
    report = check("coverage", prd(), config={"min_stories": 5, "min_nfrs": 3})
    assert report.passed and report.scores == {"coverage": 1.0}


def test_coverage_names_the_agents_of_short_artifacts(check: Check) -> None:
    producers = {
        "UserStories": ("StoryCutterAgent",),
        "NFRs": ("NFRsAgent",),
        "RTM": ("TraceMatrixAgent",),
        "PRD": ("PRDWriterAgent",),
    }
    report = check(
        "coverage", prd(stories=3, traced=2), config={"min_stories": 5}, producers=producers
    )
    assert not report.passed
    assert report.score == pytest.approx((3 / 5 + 1 + 2 / 3) / 3)
    text = " ".join(report.reasons)
    assert "UserStories.stories has 3 stories, fewer than 5" in text
    assert "1 of 3 stories have no RTM row: US-003" in text
    assert report.issues[0].missing_agents == ("StoryCutterAgent", "TraceMatrixAgent")


# --- financial viability -------------------------------------------------------------------


def bizdev() -> dict[str, Any]:
    return {
        "BusinessPlan": {
            "business_model": {"revenue_streams": ["Commission on orders"]},
            "cost_structure": [
                {"item": "Hosting", "monthly_usd": 40, "basis": "small plan"},
                {"item": "Build effort", "monthly_usd": 5000, "basis": "one-off build"},
            ],
            "unit_economics": {"revenue_per_customer_month_usd": 25, "cost_to_serve_month_usd": 5},
            "viability": {"break_even_customers": 2, "budget_fit": True},
        },
        "PricingModel": {
            "tiers": [
                {"name": "Free", "price_usd_month": 0},
                {"name": "Pro", "price_usd_month": 12},
            ],
            "pricing_strategy": {"rationale": "Core stays free; power users pay for volume."},
            "experiments": [{"hypothesis": "h", "success_metric": "upgrade rate >= 5%"}],
        },
        "GTMStrategy": {"budget_share_usd": 500},
    }


def test_financial_viability_passes_a_plan_that_adds_up(check: Check) -> None:
    report = check("financial_viability", bizdev(), upstream={"IdeaSpec": idea_spec()})
    assert report.passed and report.scores == {"viability": 1.0}


def test_financial_viability_fails_a_plan_that_loses_money(check: Check) -> None:
    artifacts = bizdev()
    plan = artifacts["BusinessPlan"]
    plan["business_model"]["revenue_streams"] = []
    plan["unit_economics"]["cost_to_serve_month_usd"] = 30
    plan["viability"]["budget_fit"] = False
    artifacts["PricingModel"]["tiers"] = [{"name": "Free", "price_usd_month": 0}]
    artifacts["PricingModel"]["experiments"] = []
    artifacts["GTMStrategy"]["budget_share_usd"] = 9000
    report = check("financial_viability", artifacts, upstream={"IdeaSpec": idea_spec()})
    assert not report.passed and report.score < 0.7
    text = " ".join(report.reasons)
    assert "no revenue stream and no paid pricing tier" in text
    assert "revenue per customer $25/month does not exceed the cost to serve $30/month" in text
    assert "GTMStrategy.budget_share_usd $9000 exceeds the budget $5000" in text
    assert "no pricing experiment is planned" in text


def test_financial_viability_checks_break_even_against_running_costs(check: Check) -> None:
    artifacts = bizdev()
    artifacts["BusinessPlan"]["cost_structure"][0]["monthly_usd"] = 400
    report = check("financial_viability", artifacts)
    assert (
        "break_even_customers 2 cannot cover $400/month at $20 margin each (needs 20)"
        in " ".join(report.reasons)
    )


# --- architecture --------------------------------------------------------------------------


def architecture() -> dict[str, Any]:
    return {
        "ArchitectureDoc": {
            "scalability": {
                "strategy": "Stateless containers scale horizontally behind a load balancer.",
                "bottlenecks": ["Write contention on orders"],
                "targets": {"p95_latency_ms": 800, "throughput_rps": 150},
            },
            "deployment_architecture": {"runtime": "uvicorn, 2 instances minimum"},
        },
        "OpenAPI": {
            "paths": {
                "/farmers": {
                    "get": {
                        "parameters": [{"name": "limit", "in": "query"}],
                        "responses": {
                            "200": {"content": {"application/json": {"schema": {"type": "array"}}}}
                        },
                    }
                }
            }
        },
        "SecurityControls": {
            "compliance": ["GDPR"],
            "controls": [
                {
                    "id": f"CTL-0{i}",
                    "category": c,
                    "description": f"A control for {c} of every request.",
                }
                for i, c in enumerate(
                    ["authentication", "authorization", "input-validation", "transport", "logging"]
                )
            ],
            "threat_model": [{"threat": "spoofing", "control_ids": ["CTL-00"]}],
        },
    }


NFRS = {
    "nfrs": [
        {"metric": "p95 API latency", "target": "<= 1000 ms"},
        {"metric": "sustained throughput", "target": ">= 100 requests per second"},
    ]
}


def test_scalability_passes_a_scaled_paginated_design(check: Check) -> None:
    report = check("scalability", architecture(), upstream={"NFRs": NFRS})
    assert report.passed and report.scores == {"scalability": 1.0}


def test_scalability_fails_one_instance_loose_targets_and_false_pagination(check: Check) -> None:
    artifacts = architecture()
    doc = artifacts["ArchitectureDoc"]
    doc["scalability"] = {
        "strategy": "One process; reads are paginated everywhere so it is fine.",
        "bottlenecks": [],
        "targets": {"p95_latency_ms": 3000},
    }
    doc["deployment_architecture"] = {"runtime": "uvicorn, 1 instance"}
    artifacts["OpenAPI"]["paths"]["/farmers"]["get"]["parameters"] = []
    report = check("scalability", artifacts, upstream={"NFRs": NFRS})
    assert not report.passed
    text = " ".join(report.reasons)
    assert "scalability.bottlenecks has 0 substantive item(s)" in text
    assert "scalability.targets lacks throughput_rps" in text
    assert "target p95 3000 ms is looser than the NFR's 1000 ms" in text
    assert "runs one instance" in text
    assert "says lists are paginated, but 1 of 1 list endpoints take no page parameter" in text


def test_security_passes_five_mapped_controls(check: Check) -> None:
    spec = idea_spec()
    spec["constraints"]["compliance"] = ["GDPR"]
    report = check(
        "security", architecture(), upstream={"IdeaSpec": spec}, config={"min_controls": 5}
    )
    assert report.passed and report.scores == {"security": 1.0}


def test_security_reads_compliance_mappings(check: Check) -> None:
    artifacts = architecture()
    artifacts["SecurityControls"]["compliance"] = [
        {"regime": "HIPAA", "control_ids": ["CTL-00", "CTL-01"]},
        {"regime": "PCI-DSS", "control_ids": ["CTL-00", "CTL-42"]},
    ]
    spec = idea_spec()
    spec["constraints"]["compliance"] = ["HIPAA", "PCI-DSS"]
    report = check("security", artifacts, upstream={"IdeaSpec": spec})
    assert not report.passed and report.scores == {"security": pytest.approx(0.9)}
    assert "compliance maps controls that do not exist: PCI-DSS → CTL-42" in report.reasons[1]


def test_security_fails_few_controls_and_dangling_threats(check: Check) -> None:
    artifacts = architecture()
    doc = artifacts["SecurityControls"]
    doc["controls"] = doc["controls"][2:]
    doc["threat_model"][0]["control_ids"] = ["CTL-00", "CTL-09"]
    spec = idea_spec()
    spec["constraints"]["compliance"] = ["HIPAA"]
    report = check(
        "security",
        artifacts,
        upstream={"IdeaSpec": spec},
        producers={"SecurityControls": ("SecurityArchitectAgent",)},
    )
    assert not report.passed
    text = " ".join(report.reasons)
    assert "SecurityControls lists 3 controls, fewer than 5" in text
    assert "no control for authentication, authorization" in text
    assert "threat_model names controls that do not exist: CTL-00, CTL-09" in text
    assert "no controls address compliance with HIPAA" in text
    assert report.issues[0].missing_agents == ("SecurityArchitectAgent",)


@pytest.fixture
def check(guard_check: Check) -> Check:
    """Each test gets its own copies: guards must not mutate their input."""

    def run(type_: str, artifacts: dict[str, Any], **kwargs: Any) -> GuardReport:
        before = copy.deepcopy(artifacts)
        report = guard_check(type_, artifacts, **kwargs)
        assert artifacts == before
        return report

    return run
