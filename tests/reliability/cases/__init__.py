"""Rows of the reliability catalogue, one module per concern."""
