"""Tools agents call, each behind the ToolRouter's decision and its own breaker."""
