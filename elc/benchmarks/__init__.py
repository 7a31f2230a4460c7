"""Speed and memory measurements of elc against peers (see launch/benchmark.py)."""
