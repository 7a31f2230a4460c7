"""Embedding models and the tools around them (e.g. the all-MiniLM-L6-v2 sentence encoder)."""
