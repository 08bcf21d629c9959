"""Request bodies: the one place pydantic meets untrusted HTTP input. Each model converts
into the frozen value the use cases take (``to_value``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ideamine.service import MAX_IDEA_CHARS
from ideamine.service_api import RunRequest

__all__ = ["AnswerBody", "CancelBody", "ConstraintsBody", "RunBody", "WaiveBody"]

Compliance = Literal["GDPR", "SOC2", "HIPAA", "PCI-DSS", "ISO27001"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConstraintsBody(_Body):
    """Optional constraints on the product (SPEC §3, IdeaSpec.constraints)."""

    budget_usd: float | None = Field(default=None, ge=0, description="Product budget in USD.")
    timeline_days: int | None = Field(default=None, ge=1, description="Days to launch.")
    compliance: list[Compliance] = Field(default_factory=list, max_length=5)
    tech_preferences: list[str] = Field(default_factory=list, max_length=20)


class RunBody(_Body):
    """A new run."""

    idea: str = Field(min_length=3, max_length=MAX_IDEA_CHARS, description="The idea in prose.")
    project: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Groups runs of one product (release versions derive within a project).",
    )
    constraints: ConstraintsBody = Field(default_factory=ConstraintsBody)
    model: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_-]*:.+$",
        description="Run every agent on this provider:model (like --model).",
    )

    def to_value(self) -> RunRequest:
        constraints = {
            key: value
            for key, value in self.constraints.model_dump().items()
            if value not in (None, [])
        }
        return RunRequest(
            idea=self.idea, project=self.project, constraints=constraints, model=self.model
        )


class CancelBody(_Body):
    reason: str = Field(default="cancelled over the API", min_length=1, max_length=2000)


class AnswerBody(_Body):
    """A person's answer to an open question (``ideamine answer``)."""

    text: str = Field(min_length=1, max_length=20_000)


class WaiveBody(_Body):
    """Waive a failed gate with a justification that expires (SPEC §5)."""

    justification: str = Field(min_length=10, max_length=5000)
    expires_at: datetime
