"""Reporting: what the router did, for the tools that read it (Asterisk's ``queue_log``,
Prometheus)."""
