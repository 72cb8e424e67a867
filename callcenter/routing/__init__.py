"""callcenter/routing."""
