"""Local git repositories: commits with their parents and paths, and tags, read with the `git` command."""
