"""Generating text with a decoder or an ELM: the KV-cache sampler and batched answering."""
