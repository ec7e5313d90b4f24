"""Payments: every way money comes in and goes back (CONTRACT.md, payments section)."""
