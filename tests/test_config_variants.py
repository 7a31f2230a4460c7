"""Every config in configs/ refuses a variant suffix it does not know, naming it."""

import os

import pytest

from elc.config_variants import config_variant

from helpers import ROOT, load_config

CONFIGS = sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, "configs"))
                 if name.endswith(".py"))


@pytest.mark.parametrize("name", CONFIGS)
def test_an_unknown_suffix_is_an_error_naming_it(name):
    with pytest.raises(ValueError, match=rf"unknown variant 'cpu_quik' of configs/{name}\.py"):
        load_config(name, "cpu_quik")


def test_the_error_names_the_accepted_variants_or_none():
    with pytest.raises(ValueError, match=r"expected one of \('auto', 'full', 'cpu_quick'\)"):
        load_config("movielens_elm", "fast")
    with pytest.raises(ValueError, match=r"of configs/tiny_elm\.py; it takes no suffix after ':'"):
        load_config("tiny_elm", "fast")


def test_no_suffix_is_the_default_variant():
    assert config_variant(None, ("auto", "full"), "c.py") == "auto"
    assert config_variant("", ("auto", "full"), "c.py") == "auto"
    assert config_variant("full", ("auto", "full"), "c.py") == "full"
    assert config_variant(None, (), "c.py") == ""
    assert load_config("movielens_elm", "cpu_quick").variant == "cpu_quick"
