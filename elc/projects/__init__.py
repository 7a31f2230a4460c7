"""Projects built on the generic ELM core, one package each."""
