"""How `obeya.yaml` declares a connection to Jenkins (``tool: jenkins``) and which builds are deployments."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from obeya.connectors.config_checks import check_url, check_variable


class JenkinsDeployRule(BaseModel):
    """Which builds or stages are deployments, of what service, to which environment.

    - ``job`` alone: every build of that job (a full name such as ``payments/deploy-prod``, or a glob
      such as ``payments/deploy-*``) is one deployment;
    - ``stage`` (a regular expression, case-insensitive, searched in the stage's name), optionally limited
      to the jobs matching ``job``: each stage that matches *and really ran* is one deployment. The
      environment is ``environment``, else the pattern's ``(?P<environment>...)`` group.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    job: str | None = None
    stage: str | None = None
    service: Annotated[str, Field(min_length=1)]
    environment: str | None = None

    @field_validator("stage")
    @classmethod
    def _pattern(cls, stage: str | None) -> str | None:
        if stage is not None:
            try:
                re.compile(stage)
            except re.error as error:
                raise ValueError(f"{stage!r} is not a regular expression: {error}") from None
        return stage

    @model_validator(mode="after")
    def _complete(self) -> JenkinsDeployRule:
        if self.job is None and self.stage is None:
            raise ValueError("a deploy rule needs `job` (its builds deploy) or `stage` (a stage pattern)")
        if self.environment is None and (self.stage is None or "(?P<environment>" not in self.stage):
            raise ValueError(
                "a deploy rule needs `environment`, or a `stage` pattern with a (?P<environment>...) group"
            )
        return self


class JenkinsConnectionConfig(BaseModel):
    """A connection to a Jenkins controller and the jobs it syncs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
    tool: Literal["jenkins"] = "jenkins"
    base_url: str
    user_env: str = "JENKINS_USER"
    token_env: str = "JENKINS_TOKEN"
    jobs: Annotated[list[str], Field(min_length=1)]
    deploy_jobs: list[JenkinsDeployRule] = Field(default_factory=list)
    value_stream: str | None = None

    @field_validator("user_env", "token_env")
    @classmethod
    def _variable_name(cls, variable: str) -> str:
        return check_variable(variable)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return check_url(url, "e.g. https://jenkins.example.com")

    @field_validator("jobs")
    @classmethod
    def _job_paths(cls, jobs: list[str]) -> list[str]:
        for job in jobs:
            if not job.strip("/") or "//" in job or job.startswith("job/"):
                raise ValueError(f"{job!r} is not a job: write its full name, e.g. folder/sub/job")
        return [job.strip("/") for job in jobs]
