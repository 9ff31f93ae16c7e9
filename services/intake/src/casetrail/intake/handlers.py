"""Intake consumes no events yet: every case starts at its HTTP API."""
