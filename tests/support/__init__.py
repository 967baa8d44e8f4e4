"""Shared test support: collection checks and tool requirements (no tests here)."""
