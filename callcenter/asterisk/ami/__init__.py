"""callcenter/asterisk/ami."""
