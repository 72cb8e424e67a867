"""callcenter/asterisk/agi."""
