"""callcenter."""
