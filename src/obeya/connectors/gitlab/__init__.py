"""The GitLab connector: merge requests, issues, pipelines, deployments and members of GitLab projects."""
