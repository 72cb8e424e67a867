"""callcenter/asterisk."""
