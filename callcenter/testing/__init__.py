"""Helpers for testing against a real Asterisk: sipp callers, a baresip softphone."""
