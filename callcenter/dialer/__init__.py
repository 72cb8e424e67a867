"""Outbound dialer: pacing (pure) and the campaign runner (I/O). Roadmap step 3."""
