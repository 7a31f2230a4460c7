"""Tokenizers: the Gemma SentencePiece tokenizer, its rebuild from GGUF metadata, and a byte-level one for tests."""
