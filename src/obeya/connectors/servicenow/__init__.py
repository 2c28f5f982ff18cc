"""ServiceNow: incidents and change requests through the Table API."""
