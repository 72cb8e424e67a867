"""callcenter/web."""
