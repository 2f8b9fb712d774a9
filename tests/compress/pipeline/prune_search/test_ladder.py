import pytest

from compress.core.errors import ConfigError
from compress.passes.prune_spec import parse_prune
from compress.pipeline.prune_search.config import PruneSearchConfig
from compress.pipeline.prune_search.ladder import chain, ladder


def test_the_ladder_removes_a_half_then_a_third_of_the_layers_then_prunes_within_them():
    assert ladder(6) == ("layers=3,ffn=0.5", "layers=3", "layers=2,ffn=0.5", "layers=2", "heads=0.33,ffn=0.5,scope=global", "ffn=0.5,scope=global")
    assert ladder(2) == ("layers=1,ffn=0.5", "layers=1", "heads=0.33,ffn=0.5,scope=global", "ffn=0.5,scope=global")
    assert ladder(1) == ("heads=0.33,ffn=0.5,scope=global", "ffn=0.5,scope=global")  # a single layer stays
    for spec in ladder(12):
        assert parse_prune(spec)  # every rung is a spec a user could type


def test_the_chain_removes_a_third_of_the_layers_then_down_to_half_the_layers_then_half_the_ffn_then_heads():
    assert chain(6) == ("layers=2", "layers=1", "ffn=0.5", "heads=0.33,scope=global")
    assert chain(12) == ("layers=4", "layers=2", "ffn=0.5", "heads=0.33,scope=global")
    assert chain(2) == ("layers=1", "ffn=0.5", "heads=0.33,scope=global")
    assert chain(1) == ("ffn=0.5", "heads=0.33,scope=global")  # a single layer stays
    for spec in chain(12):
        assert parse_prune(spec)


@pytest.mark.parametrize("field, value, message", [("strategy", "random", "unknown pruning search strategy"), ("checks", 0, "check"),
("budget_s", 0, "budget"), ("pruning_share", 0, "share"), ("max_drop", 1.5, "fraction"),
                                                   ("rounds", 0, "round"), ("candidates", ("legs=2",), "not understood")])
def test_the_search_config_refuses_bad_values_with_a_fix(field, value, message):
    with pytest.raises(ConfigError, match=message):
        PruneSearchConfig(**{field: value})
