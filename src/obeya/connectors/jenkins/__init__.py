"""Jenkins: builds of jobs (folders and multibranch projects too), their Pipeline stages and deployments."""
