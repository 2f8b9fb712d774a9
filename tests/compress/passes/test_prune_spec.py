import pytest

from compress.core.errors import ConfigError
from compress.passes.prune_channels import ChannelPruneConfig
from compress.passes.prune_heads import HeadPruneConfig
from compress.passes.prune_spec import parse_prune
from compress.passes.prune_unstructured import (
    MagnitudePruneConfig,
    SemiStructuredConfig,
)


def test_parse_prune_makes_one_config_per_kind():
    assert parse_prune("heads=0.33,ffn=0.5") == [HeadPruneConfig(heads=0.33, ffn=0.5)]
    assert parse_prune("ffn=0.5,importance=magnitude") == [HeadPruneConfig(ffn=0.5, importance="magnitude")]
    assert parse_prune("channels=0.5") == [ChannelPruneConfig(ratio=0.5)]
    assert parse_prune("2:4") == [SemiStructuredConfig(n=2, m=4)]
    assert parse_prune("sparsity=0.6") == [MagnitudePruneConfig(sparsity=0.6)]


@pytest.mark.parametrize("spec, message", [("heads=1.2", "outside [0, 1)"), ("heads=-0.1", "outside [0, 1)"),
                                           ("legs=0.5", "not understood"), ("heads=half", "fraction"), ("2:x", "n:m")])
def test_parse_prune_refuses_bad_spec_with_a_fix(spec, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(")", r"\)")):
        parse_prune(spec)
