"""Printers: each renders the derivation model in one output language and does no maths."""
