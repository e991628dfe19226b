"""Figures: plotting helpers for phantoms, maps and results."""
