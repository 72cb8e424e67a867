"""callcenter/storage."""
