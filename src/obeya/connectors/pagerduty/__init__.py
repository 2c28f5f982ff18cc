"""PagerDuty: incidents with their log entries (acknowledgement and resolution times) and responders."""
