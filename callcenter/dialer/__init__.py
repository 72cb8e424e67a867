"""callcenter/dialer."""
