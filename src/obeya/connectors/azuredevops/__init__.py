"""Azure DevOps (Services and Server): pull requests, builds with their timelines, work items."""
