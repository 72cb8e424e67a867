"""callcenter/asterisk/ari."""
