"""Peer implementations that launch.benchmark measures elc against, each run in its own
process (they need frameworks elc itself never imports)."""
