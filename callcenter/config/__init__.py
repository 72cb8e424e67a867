"""callcenter/config."""
