"""Evaluation of ELM outputs: exact facts, semantic/behavioural consistency, novel concepts."""
