"""The variant suffix of a config file (``--config=configs/movielens_elm.py:cpu_quick``),
checked so that a misspelt or unknown suffix is an error rather than silently ignored."""

from __future__ import annotations


def config_variant(arg: str | None, variants: tuple[str, ...], config_file: str) -> str:
    """The variant ``arg`` names: ``arg`` is what follows ':' after the config path (None or
    '' when nothing does) and ``variants`` the ones ``config_file`` knows, the first being
    the default. A config without variants passes ``()`` and gets ''.

    Raises:
      ValueError: ``arg`` is not one of ``variants``, naming it and the accepted ones (or
        saying that the config takes none).
    """
    if not arg:
        return variants[0] if variants else ""
    if arg not in variants:
        expected = (f" (the suffix after ':'); expected one of {variants}" if variants
                    else "; it takes no suffix after ':'")
        raise ValueError(f"unknown variant {arg!r} of {config_file}{expected}")
    return arg
