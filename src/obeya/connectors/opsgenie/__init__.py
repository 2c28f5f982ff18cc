"""Opsgenie: incidents, impacted services, teams and users."""
