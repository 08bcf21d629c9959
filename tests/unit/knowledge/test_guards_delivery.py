"""Guards of aesthetic, release and beta (and the optional schema guard) on hand-made
artifacts; beta's evidence gaps with and without strict evidence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ideamine.knowledge.guards import GuardReport

Check = Callable[..., GuardReport]

FLOWS = {"UXFlows": {"screens": [{"id": "SCR-01"}, {"id": "SCR-02"}]}}
SPEC = {"IdeaSpec": {"title": "Harvest Link", "target_users": ["farmers", "restaurants"]}}


def aesthetic() -> dict[str, Any]:
    return {
        "DesignSystem": {
            "tokens": {
                "color": {
                    "primary": "#0d47a1",
                    "secondary": "#01579b",
                    "background": "#ffffff",
                    "text": "#1a1a1a",
                    "error": "#b00020",
                },
                "typography": {
                    "scale": {"h1": "2rem", "h2": "1.5rem", "body": "1rem", "small": "14px"}
                },
                "spacing": {"xs": "0.25rem", "s": "0.5rem", "m": "1rem"},
            },
            "motion": {
                "durations_ms": {"fast": 120, "slow": 300},
                "easings": {"standard": "ease"},
                "transitions": [{"name": "toast", "duration_ms": 200, "easing": "standard"}],
            },
            "components": [{"name": "Button", "used_in": ["SCR-01", "SCR-02"]}],
        },
        "StyleGuide": {
            "brand": {
                "name": "Harvest Link",
                "voice": "Plain words",
                "tagline": "Fresh, simply.",
                "personality": ["warm"],
            },
            "color_usage": [{"token": "primary", "hex": "#0D47A1", "use": "buttons"}],
            "tone_by_audience": {"farmers": "brief", "restaurants": "brief"},
            "dos": ["Confirm every action."],
            "donts": ["No jargon."],
        },
        "VisualAssets": {
            "assets": [{"name": "logo-mark", "format": "svg"}],
            "logo_svg": '<svg role="img" aria-label="Harvest Link"><rect fill="#0d47a1"/>'
            '<text fill="#ffffff">H</text></svg>',
            "breakpoints": [
                {"name": "mobile", "min_width_px": 0, "max_width_px": 599, "columns": 1},
                {"name": "tablet", "min_width_px": 600, "max_width_px": 1023, "columns": 2},
                {"name": "desktop", "min_width_px": 1024, "max_width_px": None, "columns": 3},
            ],
            "layouts": [
                {
                    "screen_id": screen,
                    "mobile": "single column, action at the bottom",
                    "tablet": "two columns: list and form",
                    "desktop": "three columns with navigation",
                }
                for screen in ("SCR-01", "SCR-02")
            ],
        },
    }


@pytest.mark.parametrize(
    ("type_", "rubric"),
    [
        ("design_consistency", "consistency"),
        ("responsive_design", "responsiveness"),
        ("brand_compliance", "branding"),
    ],
)
def test_a_consistent_design_passes(guard_check: Check, type_: str, rubric: str) -> None:
    report = guard_check(type_, aesthetic(), upstream={**FLOWS, **SPEC})
    assert report.passed, report.reasons
    assert report.scores == {rubric: 1.0}


def test_design_consistency_fails_off_palette_and_out_of_order(guard_check: Check) -> None:
    artifacts = aesthetic()
    system = artifacts["DesignSystem"]
    system["tokens"]["typography"]["scale"]["h2"] = "3rem"
    system["tokens"]["spacing"]["m"] = "2px"
    system["motion"]["transitions"].append(
        {"name": "slide", "duration_ms": 900, "easing": "bouncy"}
    )
    system["components"][0]["used_in"].append("SCR-99")
    artifacts["StyleGuide"]["color_usage"][0]["hex"] = "#ff0000"
    artifacts["VisualAssets"]["logo_svg"] = '<svg><rect fill="#123456"/></svg>'
    report = guard_check("design_consistency", artifacts, upstream=FLOWS)
    assert not report.passed and report.score < 0.85
    text = " ".join(report.reasons)
    assert "primary #ff0000" in text
    assert "logo colours are not palette tokens: #123456" in text
    assert "h1 2rem vs h2 3rem" in text
    assert "s 0.5rem vs m 2px" in text
    assert "slide easing 'bouncy' undefined" in text
    assert "Button → SCR-99" in text


def test_responsive_design_fails_missing_breakpoint_layout_and_columns(guard_check: Check) -> None:
    artifacts = aesthetic()
    assets = artifacts["VisualAssets"]
    assets["breakpoints"] = assets["breakpoints"][:2]
    assets["breakpoints"][1]["min_width_px"] = 700
    assets["layouts"][0]["tablet"] = "three columns everywhere"
    del assets["layouts"][1]["mobile"]
    report = guard_check(
        "responsive_design",
        artifacts,
        upstream=FLOWS,
        producers={"VisualAssets": ("ResponsiveAgent",)},
    )
    assert not report.passed
    text = " ".join(report.reasons)
    assert "breakpoints undefined: desktop" in text
    assert "mobile ends at 599 but tablet starts at 700" in text
    assert "1 of 6 screen layouts are missing: SCR-02 at mobile" in text
    assert "SCR-01 at tablet says 3 column(s), the breakpoint has 2" in text
    assert report.issues[0].missing_agents == ("ResponsiveAgent",)


def test_brand_compliance_fails_low_contrast_and_wrong_name(guard_check: Check) -> None:
    artifacts = aesthetic()
    artifacts["DesignSystem"]["tokens"]["color"]["text"] = "#cccccc"
    artifacts["StyleGuide"]["brand"] = {"name": "Other Brand"}
    artifacts["StyleGuide"]["tone_by_audience"] = {}
    artifacts["VisualAssets"]["logo_svg"] = "<svg/>"
    report = guard_check("brand_compliance", artifacts, upstream=SPEC)
    assert not report.passed and report.score < 0.8
    text = " ".join(report.reasons)
    assert "brand name 'Other Brand' is not the product title 'Harvest Link'" in text
    assert "text on background 1.61:1 < 4.5:1" in text
    assert "brand traits unstated: voice, tagline, personality" in text
    assert "target users without a tone of voice: farmers, restaurants" in text
    assert "logo SVG has no role=img and aria-label" in text


# --- release -------------------------------------------------------------------------------

README = (
    "# Harvest Link\n\n"
    + "Lets farmers sell to restaurants. " * 8
    + "\n\n## Quick start\n\n```sh\npip install .\n```\n"
)


def release() -> dict[str, Any]:
    return {
        "ReleaseNotes": {
            "version": "0.1.0",
            "stories": [{"id": "US-001"}],
            "changelog": {"version": "0.1.0", "markdown": "## [Unreleased]\n\n## [0.1.0]\n- Added"},
        },
        "DeploymentPlan": {
            "version": "0.1.0",
            "steps": ["Deploy the canary"],
            "health_checks": ["GET /health"],
        },
        "RollbackPlan": {"triggers": ["canary abort"], "steps": ["Route traffic back"]},
        "Documentation": {
            "readme": README,
            "api_reference": [{"method": "GET", "path": "/farmers", "summary": "List"}],
            "operations": {
                "deploy": "Build and sign the image",
                "monitoring": "Alert on 1% errors",
                "rollback": "Route traffic back",
            },
        },
    }


RELEASE_UP = {
    "UserStories": {"stories": [{"id": "US-001"}]},
    "OpenAPI": {"paths": {"/farmers": {"get": {}}}},
}


def test_a_complete_release_passes_both_rubrics(guard_check: Check) -> None:
    report = guard_check("release_completeness", release(), upstream=RELEASE_UP)
    assert report.passed, report.reasons
    assert report.scores == {"completeness": 1.0, "documentation": 1.0}
    version = guard_check("version_validation", release())
    assert version.passed and version.reasons == ("4 version(s) stated: 0.1.0",)


def test_release_completeness_fails_missing_parts_and_undocumented_api(guard_check: Check) -> None:
    artifacts = release()
    del artifacts["RollbackPlan"]
    artifacts["Documentation"]["readme"] = "TBD"
    artifacts["ReleaseNotes"]["stories"] = []
    upstream = {**RELEASE_UP, "OpenAPI": {"paths": {"/farmers": {"get": {}, "post": {}}}}}
    report = guard_check(
        "release_completeness",
        artifacts,
        upstream=upstream,
        producers={"RollbackPlan": ("DeploymentAgent",)},
    )
    assert not report.passed
    text = " ".join(report.reasons)
    assert "field rollback_plan is missing" in text
    assert "user stories missing from the release notes: US-001" in text
    assert "rollback parts missing: RollbackPlan.triggers, RollbackPlan.steps" in text
    assert "Documentation.readme is missing or thin" in text
    assert "API operations undocumented: POST /farmers" in text
    assert report.issues[0].missing_agents == ("DeploymentAgent",)


def test_version_validation_fails_invalid_and_disagreeing_versions(guard_check: Check) -> None:
    artifacts = release()
    artifacts["DeploymentPlan"]["version"] = "v1.0"
    artifacts["ReleaseNotes"]["changelog"]["version"] = "0.2.0"
    report = guard_check("version_validation", artifacts)
    assert not report.passed and report.severity == "high"
    text = " ".join(report.reasons)
    assert "DeploymentPlan.version 'v1.0'" in text and "versions disagree" in text


# --- beta ----------------------------------------------------------------------------------

OFFLINE_BETA = {
    "DeploymentReport": {
        "executed": False,
        "status": "planned",
        "health": None,
        "reason": "Nothing has been deployed",
    },
    "MonitoringDashboard": {
        "dashboards": [
            {"name": name, "query": f"rate({name}[5m])", "threshold": 1}
            for name in ("error_rate", "latency", "throughput", "availability")
        ],
        "data": None,
    },
    "CanaryResults": {
        "executed": False,
        "decision": "pending",
        "observed": None,
        "rule": {"duration_minutes": 15, "max_error_rate": 0.01},
    },
}


@pytest.mark.parametrize("type_", ["deployment_health", "monitoring", "canary_validation"])
def test_nothing_deployed_is_an_evidence_gap_that_passes(guard_check: Check, type_: str) -> None:
    report = guard_check(type_, OFFLINE_BETA)
    assert report.passed and report.evidence_gap
    assert report.reasons[0].startswith("evidence gap (passes with a warning)")


@pytest.mark.parametrize("type_", ["deployment_health", "monitoring", "canary_validation"])
def test_nothing_deployed_fails_critical_under_strict_evidence(
    guard_check: Check, type_: str
) -> None:
    report = guard_check(type_, OFFLINE_BETA, strict_evidence=True)
    assert not report.passed and report.evidence_gap and report.severity == "critical"
    assert "fails under --strict-evidence" in report.reasons[0]


def test_monitoring_still_scores_the_dashboards_it_can_see(guard_check: Check) -> None:
    report = guard_check("monitoring", OFFLINE_BETA)
    assert report.scores == {"monitoring": 1.0}
    board = {
        **OFFLINE_BETA["MonitoringDashboard"],
        "dashboards": OFFLINE_BETA["MonitoringDashboard"]["dashboards"][:2],
    }
    short = guard_check("monitoring", {"MonitoringDashboard": board})
    assert not short.passed and not short.evidence_gap
    assert short.scores == {"monitoring": 0.5}
    assert "missing or incomplete: throughput, availability" in short.reasons[1]


def test_a_canary_rule_laxer_than_the_config_fails_even_offline(guard_check: Check) -> None:
    results = {
        **OFFLINE_BETA["CanaryResults"],
        "rule": {"duration_minutes": 5, "max_error_rate": 0.05},
    }
    report = guard_check("canary_validation", {"CanaryResults": results})
    assert not report.passed and not report.evidence_gap
    assert "CanaryResults.rule lasts 5 minutes, shorter than 15" in report.reasons
    assert "CanaryResults.rule tolerates error rate 0.05, above 0.01" in report.reasons


def envelope() -> dict[str, Any]:
    return {"tool": "deploy", "executed": True, "timed_out": False, "duration_ms": 1.0}


def test_measured_beta_passes_and_fails_on_its_numbers(guard_check: Check) -> None:
    healthy = {
        "executed": True,
        "status": "deployed",
        "health": {"passed": 19, "total": 20},
        "evidence": envelope(),
    }
    assert guard_check("deployment_health", {"DeploymentReport": healthy}).passed
    sick = {**healthy, "health": {"checks": [{"passed": True}, {"passed": False}]}}
    report = guard_check("deployment_health", {"DeploymentReport": sick})
    assert not report.passed and report.scores == {"deployment_health": 0.5}
    canary = {
        "executed": True,
        "decision": "promoted",
        "rule": {"duration_minutes": 15},
        "evidence": envelope(),
    }
    good = guard_check(
        "canary_validation",
        {"CanaryResults": {**canary, "observed": {"duration_minutes": 15, "error_rate": 0.002}}},
    )
    assert good.passed and good.scores == {"canary": 1.0}
    bad = guard_check(
        "canary_validation",
        {"CanaryResults": {**canary, "observed": {"duration_minutes": 5, "error_rate": 0.04}}},
    )
    assert (
        not bad.passed
        and "canary observed 5 minutes (minimum 15) at error rate 0.04" in bad.reasons[0]
    )


def test_measured_monitoring_needs_data_for_every_dashboard(guard_check: Check) -> None:
    board = dict(OFFLINE_BETA["MonitoringDashboard"])
    data = {"error_rate": 0.001, "latency": 0.2, "throughput": 140, "availability": 1.0}
    live = {**board, "data": data, "evidence": envelope()}
    report = guard_check("monitoring", {"MonitoringDashboard": live})
    assert report.passed and not report.evidence_gap and report.scores == {"monitoring": 1.0}
    quiet = {**live, "data": {"error_rate": 0.001}}
    report = guard_check("monitoring", {"MonitoringDashboard": quiet})
    assert not report.passed and report.scores == {"monitoring": pytest.approx(0.625)}
    assert "no data for: latency, throughput, availability" in report.reasons
    unproven = guard_check("monitoring", {"MonitoringDashboard": {**board, "data": data}})
    assert not unproven.passed and unproven.reasons[0].startswith("no evidence")


def test_a_claimed_deployment_without_evidence_is_no_evidence(guard_check: Check) -> None:
    claimed = {"executed": True, "status": "deployed", "health": 1.0}
    report = guard_check("deployment_health", {"DeploymentReport": claimed})
    assert not report.passed and not report.evidence_gap
    assert report.reasons[0].startswith("no evidence: DeploymentReport has no evidence envelope")


# --- schema --------------------------------------------------------------------------------


def test_schema_guard_checks_only_what_is_configured(guard_check: Check) -> None:
    idle = guard_check("schema", {"PRD": {}})
    assert idle.passed and "no schemas configured" in idle.reasons[0]
    config = {"schemas": {"PRD": {"type": "object", "required": ["title"]}}, "required": ["RTM"]}
    assert guard_check("schema", {"PRD": {"title": "x"}, "RTM": {}}, config=config).passed
    report = guard_check("schema", {"PRD": {"version": 1}}, config=config)
    assert not report.passed and report.score == 0.0
    assert "PRD breaks its schema: (root): 'title' is a required property" in report.reasons
    assert "RTM is missing" in report.reasons
