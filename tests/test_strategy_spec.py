"""Strategy values: field-by-field overrides, component swaps by name, JSON round trip."""

import json

import pytest

from fastvmt.strategies.presets import FASTVMT, NO_TRANSFER, PRESETS
from fastvmt.strategies.spec import Component


def test_option_override_keeps_other_options_and_the_preset_unchanged():
    changed = FASTVMT.override(**{"extractor.window": 11, "loss.lambda_win": 0.0})
    assert changed.extractor.options["window"] == 11 and changed.extractor.options["tile"] == (3, 4)
    assert changed.loss.options == {"lambda_amf": 5.0, "lambda_win": 0.0, "alpha": 0.2}
    assert FASTVMT.extractor.options["window"] == 21


def test_component_reads_as_its_name_and_options():
    assert str(Component("interval", {"every": 3, "guided_fraction": 0.2})) == "interval(every=3,guided_fraction=0.2)"
    assert str(Component("masked_mse")) == "masked_mse()"


def test_component_swapped_by_name_then_configured():
    changed = FASTVMT.override(scheduler="every", **{"scheduler.guided_fraction": 0.3})
    assert changed.scheduler == Component("every", {"guided_fraction": 0.3})
    swapped = FASTVMT.override(loss={"name": "masked_mse"})
    assert swapped.loss == Component("masked_mse")


@pytest.mark.parametrize("preset", PRESETS, ids=[preset.name for preset in PRESETS])
def test_json_round_trip(preset):
    assert type(preset).from_dict(json.loads(json.dumps(preset.to_dict()))) == preset


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"windw": 3}, "unknown strategy field 'windw'"),
        ({"block.x": 3}, "has no options"),
        ({"scheduler": 3}, "component name"),
        ({"inner_iterations": 0}, "inner_iterations"),
    ],
)
def test_bad_overrides_raise(changes, message):
    with pytest.raises(ValueError, match=message):
        FASTVMT.override(**changes)


def test_unguided_strategy_has_no_component_options():
    with pytest.raises(ValueError, match="has no options"):
        NO_TRANSFER.override(**{"extractor.window": 3})
    with pytest.raises(ValueError, match="all set or all None"):
        NO_TRANSFER.override(extractor="windowed_amf")


def test_components_named_without_options_take_the_fastvmt_preset_values():
    from fastvmt.strategies.components import build_components

    named = build_components(FASTVMT.override(extractor="windowed_amf", loss="amf_window", scheduler="interval"))
    explicit = build_components(FASTVMT)
    for part in ("extractor", "loss", "scheduler"):
        assert vars(getattr(named, part)) == vars(getattr(explicit, part)), part
