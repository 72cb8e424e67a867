"""Helpers for testing against a real Asterisk: sipp callers."""
