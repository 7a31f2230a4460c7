"""Keeps the console to elc's own messages: drops INFO chatter of orbax and JAX internals."""

import logging

_NOISY = ("/orbax/", "/jax/_src/")


class _DropThirdPartyInfo(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not any(
            part in record.pathname for part in _NOISY)


def quiet_third_party_logs() -> None:
    """Installs the filter on absl's handler (call from a launcher's main)."""
    from absl import logging as absl_logging
    absl_logging.get_absl_handler().addFilter(_DropThirdPartyInfo())
