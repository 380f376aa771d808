"""The ``nas-genome`` model plugin: conformance, the 1-D search space, ALBAND as a genome."""

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from streamal import plugins
from streamal.data.space import ParameterSpace
from streamal.train.model_checks import check_model
from streamal_nas.genome import MacroGenome, genome_from_key
from streamal_nas.genome_model import NasGenomeModel, NasGenomeOptions
from streamal_nas.models import count_flops, count_parameters
from streamal_nas.reference import alband_genome, alband_options

PROFILE = (2806,)


def _space() -> ParameterSpace:
    return ParameterSpace.from_dict(
        {
            "param_names": ["a", "c"],
            "classes": [
                {"name": "cubic", "bounds": {"a": [3.5, 4.5]}, "tied": {"c": "a"}},
                {"name": "tetragonal", "bounds": {"a": [3.8, 4.2], "c": [3.8, 4.2]}},
            ],
            "units": {"a": "Å", "c": "Å"},
        }
    )


def test_entry_point_and_conformance_on_a_long_profile() -> None:
    assert plugins.load("models", "nas-genome") is NasGenomeModel
    options = {
        "genome": "macro:2x3:1011-0011",
        "channels": [4, 8],
        "network": {"stem_kernels": [7, 5], "strides": [2, 1], "pool": 4, "pool_last": True},
    }
    check_model(NasGenomeModel, _space(), (256,), options=options)
    model = NasGenomeModel(_space(), PROFILE, **options)
    out = model.build()(torch.zeros(3, *PROFILE))
    assert out.shape == (3, 2 + 2 + 1)  # 2 logits, 2 values, one shared log σ²


def test_per_parameter_variance_and_2d_inputs() -> None:
    net = {"variance": "per_parameter"}
    options = {"genome": "macro:1x2:11", "channels": 4, "network": net}
    check_model(NasGenomeModel, _space(), (1, 8, 8), options=options)
    model = NasGenomeModel(_space(), (1, 8, 8), **options)
    assert model.dims == 2 and model.heads == [2, 4]


@pytest.mark.parametrize(
    ("options", "where"),
    [
        ({"genome": "macro:2x3:01"}, "genome"),
        ({"genome": "macro:2x3:0001-0001", "channels": [4]}, "channels"),
        ({"genome": "macro:1x2:11", "network": {"empty_phases": "conv"}}, "stem_kernels"),
        ({"genome": "macro:1x2:11", "encoder": {"name": "nope"}}, "nope"),
        ({"genome": "macro:1x2:11", "encoder": {"options": {"hiden": [2]}}}, "hiden"),
    ],
)
def test_bad_options_name_what_is_wrong(options, where) -> None:
    with pytest.raises(ValidationError, match=where):
        NasGenomeOptions.model_validate(options)


def test_genome_key_round_trip() -> None:
    g = MacroGenome.random(np.random.default_rng(3), 3, 4)
    assert genome_from_key(g.key()) == g
    with pytest.raises(ValueError, match="genome key"):
        genome_from_key("macro:3x4")


def _shapes(net: torch.nn.Module) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in net.parameters()]


def _layers(net: torch.nn.Module) -> list[str]:
    kinds = (torch.nn.Conv1d, torch.nn.Linear, torch.nn.LeakyReLU, torch.nn.MaxPool1d)
    return [type(m).__name__ for m in net.modules() if isinstance(m, kinds)]


@pytest.mark.parametrize(
    "cnn", [{}, {"channels": [8, 16, 32], "kernels": [5, 3], "hidden": 64}], ids=["default", "3"]
)
def test_alband_cnn_is_one_genome(cnn) -> None:
    """Same layer sequence, parameter shapes (hence count) and output width as
    diffraction-cnn, and equal outputs once diffraction-cnn's weights are loaded."""
    space = _space()
    reference = plugins.load("models", "diffraction-cnn")(space, PROFILE, **cnn)
    names = {"channels": "channels", "kernels": "kernels", "hidden": "hidden"}
    kw = {names[k]: v for k, v in cnn.items()}
    genome = NasGenomeModel(space, PROFILE, **alband_options(**kw))
    assert genome.genome == alband_genome(len(cnn.get("channels", [16, 32])))
    ref_net, net = reference.build(), genome.build()
    assert _layers(net) == _layers(ref_net)
    assert _shapes(net) == _shapes(ref_net)
    assert count_parameters(net) == count_parameters(ref_net)
    assert count_flops(net, PROFILE) == count_flops(ref_net, PROFILE)
    net.load_state_dict(dict(zip(net.state_dict(), ref_net.state_dict().values(), strict=True)))
    x = torch.as_tensor(reference.encode_inputs(np.random.default_rng(0).random((2, 2806))))
    ref_net.eval(), net.eval()
    assert torch.allclose(net(x), ref_net(x), atol=1e-5)
    assert np.allclose(genome.encode_inputs(x.numpy()), reference.encode_inputs(x.numpy()))
