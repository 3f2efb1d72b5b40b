"""The plugin contract 1.0: pluggy-native calls, one name per concept, versioning, one owner of
encoder set-up, and errors that help (in process; see test_plugins.py for real entry points).
"""

from __future__ import annotations

import ast
import logging
import re
import warnings
from pathlib import Path

import attrs
import pytest
import torch
from packaging.version import Version
from torch import nn

import segcore
from segcore import hookimpl, testing
from segcore.encoder import EncoderBase
from segcore.errors import (
    BrokenPluginError,
    EncoderCapabilityError,
    InvalidOptionError,
    UnknownNameError,
)
from segcore.factory import get_encoder_spec
from segcore.hookspecs import CONTRACT_VERSION, HOOKS
from segcore.model import SegmentationModel
from segcore.options import ArchitectureOptions, positive_int
from segcore.plugins import STATUS_FAILED, STATUS_LOADED, get_plugin_manager
from segcore.registry import get_registry
from segcore.specs import ArchitectureSpec, EncoderSpec, WeightSource

ROOT = Path(__file__).parents[2]


@pytest.fixture
def manager(core_only):
    return get_plugin_manager()


def _record(manager, key):
    record = manager.record_of(key)
    assert record is not None, f"no record for {key}"
    return record


# -- 1. a hook that raises ----------------------------------------------------------------------
class RaisingEncoders:
    @hookimpl
    def segcore_encoders(self):
        raise RuntimeError("broken on purpose")


def test_a_raising_hook_marks_the_plugin_failed_and_unknown_names_mention_it(manager):
    manager.register_module(RaisingEncoders(), "raising")
    try:
        with pytest.raises(UnknownNameError) as raised:
            segcore.get_encoder("whatever-encoder")
        record = _record(manager, "raising")
        assert record.status == STATUS_FAILED
        assert "segcore_encoders" in record.error and "RuntimeError" in record.error
        assert "broken on purpose" in record.error
        assert "'raising'" in str(raised.value) and "failed" in str(raised.value)
    finally:
        manager.unregister("raising")


class GarbageEncoders:
    @hookimpl
    def segcore_encoders(self):
        return "resnet34"


class WrongSpecs:
    @hookimpl
    def segcore_encoders(self):
        return [{"name": "not-a-spec"}]


@pytest.mark.parametrize(("plugin", "words"), [
    (GarbageEncoders(), "returned str"),
    (WrongSpecs(), "expected EncoderSpec"),
])
def test_hooks_returning_garbage_fail_the_plugin(manager, plugin, words):
    manager.register_module(plugin, "garbage")
    try:
        segcore.list_encoders()
        record = _record(manager, "garbage")
        assert record.status == STATUS_FAILED and words in record.error
    finally:
        manager.unregister("garbage")


# -- 2. hooks that do not exist -----------------------------------------------------------------
class Typo:
    @hookimpl
    def segcore_architecture(self):  # the natural guess, singular
        return []


def test_an_unknown_hook_is_recorded_against_its_plugin(manager):
    manager.register_module(Typo(), "typo")
    record = _record(manager, "typo")
    assert record.status == STATUS_FAILED
    assert "segcore_architecture" in record.error
    assert "segcore_architectures()" in record.error  # lists the real hooks


# -- 3. pluggy-native calls ---------------------------------------------------------------------
class NoArgumentResolver:
    """Takes fewer arguments than the hook declares: pluggy allows it."""

    @hookimpl
    def segcore_resolve_encoder(self):
        return EncoderSpec(name="any-name", family="Any",
                           factory="segcore.testing:build_tiny_encoder")


def test_implementations_may_take_a_subset_of_the_arguments(manager):
    manager.register_module(NoArgumentResolver(), "subset")
    try:
        spec = get_registry().get("encoders", "something-unlisted")
        assert spec.family == "Any"
        assert _record(manager, "subset").status == STATUS_LOADED
    finally:
        manager.unregister("subset")


class Wrapper:
    @hookimpl(wrapper=True)
    def segcore_encoders(self):
        return (yield)


def test_hook_wrappers_are_refused_with_a_clear_error(manager):
    manager.register_module(Wrapper(), "wrapper")
    record = _record(manager, "wrapper")
    assert record.status == STATUS_FAILED
    assert "hook wrapper" in record.error and "segcore_encoders" in record.error


def test_trace_logs_every_hook_call_with_its_duration(core_only, monkeypatch, caplog):
    monkeypatch.setenv("SEGCORE_TRACE_PLUGINS", "1")
    segcore.plugins.reset()
    with caplog.at_level(logging.INFO, logger="segcore.plugins"):
        segcore.list_encoders()
    lines = [r.getMessage() for r in caplog.records if r.name == "segcore.plugins"]
    assert any(re.search(r"hook segcore_heads\(\) of segcore\.core took [\d.]+ ms", line)
               for line in lines), lines


# -- 4. one name per concept --------------------------------------------------------------------
class OldStyle:
    @hookimpl
    def segcore_decoders(self):
        return [ArchitectureSpec(name="oldnet", model="segcore_unet.model:Unet")]


def test_the_deprecated_decoders_hook_still_works_and_warns(manager):
    with pytest.warns(DeprecationWarning, match="segcore_architectures"):
        manager.register_module(OldStyle(), "old")
    try:
        assert "oldnet" in segcore.list_architectures()
    finally:
        manager.unregister("old")


def test_hook_spec_class_and_registry_kind_share_one_name():
    assert "segcore_architectures" in HOOKS and HOOKS["segcore_architectures"][0] == \
        "architectures"
    from segcore.specs import KINDS

    assert KINDS["architectures"][1][0] == "segcore_architectures"


# -- 5. facts written once ----------------------------------------------------------------------
@attrs.frozen
class ProbeOptions(ArchitectureOptions):
    width: int = attrs.field(default=8, validator=positive_int)


class Probe(SegmentationModel):
    architecture = "probe"
    options_class = ProbeOptions
    requires_divisible_input_shape = False

    def build_decoder(self, encoder_channels, options):
        return nn.Conv2d(encoder_channels[-1], options.width, 1)

    def forward(self, x):  # a decoder that only sees the deepest map
        features = self.encoder(x)
        mask = self.segmentation_head(self.decoder(features[-1]))
        return nn.functional.interpolate(mask, size=x.shape[-2:])

    def segmentation_head_options(self, options):
        return {"in_channels": options.width, "kernel_size": 1, "upsampling": 1}


def test_a_spec_whose_name_disagrees_with_its_class_fails_the_kit(core_only):
    spec = ArchitectureSpec(name="probe-renamed", model=Probe)
    with testing.specs_installed(encoders=[testing.TINY_ENCODER_SPEC], architectures=[spec]):
        with pytest.raises(AssertionError, match=r"differs from Probe\.architecture"):
            testing.check_architecture("probe-renamed", depths=(5,), classes=(1,),
                                       in_channels=(3,))
    spec = ArchitectureSpec(name="probe", model=Probe)
    assert spec.class_name == "Probe"
    assert ArchitectureSpec(name="unet", model="segcore_unet.model:Unet").class_name == "Unet"


def test_install_hints_name_packages_of_this_repository():
    from segcore import _catalog

    packages = {path.name for path in (ROOT / "plugins").iterdir() if path.is_dir()}
    assert packages == set(_catalog.FIRST_PARTY_PACKAGES), (
        "segcore/_catalog.py FIRST_PARTY_PACKAGES must list exactly the folders of plugins/"
    )
    names = [*(("architectures", n) for n in _catalog.ARCHITECTURE_PACKAGES),
             *(("encoders", n) for n in _catalog.documented_encoders()),
             *(("losses", n) for n in _catalog.LOSSES), *(("metrics", n) for n in _catalog.METRICS)]
    for kind, name in names:
        package = _catalog.package_for(kind, name)
        assert package is not None, f"documented {kind} name {name!r} has no package"


def test_the_catalogue_file_is_the_reference_list():
    shared = ROOT.parent / "shared" / "catalog" / "encoders.tsv"
    if not shared.is_file():
        pytest.skip("the reference catalogue is not beside this checkout")
    assert (ROOT / "segcore" / "encoders.tsv").read_text() == shared.read_text()


def test_an_unreleased_documented_name_is_worded_as_not_installed(core_only, monkeypatch):
    """A documented name whose package is planned but not released (as the encoder families
    were before their issues) gets "not installed (not released yet)", not a pip hint."""
    from segcore import _catalog

    name = "timm-resnest14d"
    package = "segcore-future-family"  # planned: neither released nor installed
    documented_package = _catalog.encoder_package
    monkeypatch.setattr(_catalog, "encoder_package",
                        lambda n: package if n == name else documented_package(n))
    with pytest.raises(UnknownNameError, match=rf"documented encoder name.*{package}.*"
                                               r"not installed \(it is not released yet\)"):
        segcore.get_encoder(name)


def test_modes_are_defined_once():
    assert segcore.MODES == ("binary", "multiclass", "multilabel")
    offenders = []
    for path in [*ROOT.glob("segcore/*.py"), *ROOT.glob("plugins/*/segcore_*/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "MODES" for t in node.targets
            ) and path.name != "__init__.py":
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"MODES redefined in {offenders}; import segcore.MODES"


# -- 6. encoder set-up has one owner ------------------------------------------------------------
class PlainEncoder(EncoderBase):
    def __init__(self, depth: int = 5) -> None:
        super().__init__(depth=depth)
        self._out_channels = (3, 8, 8, 8, 8, 8)
        self.stages = nn.ModuleList(
            nn.Conv2d(3 if i == 0 else 8, 8, 3, stride=2, padding=1) for i in range(5)
        )

    def get_stages(self):
        return {16: [self.stages[3]], 32: [self.stages[4]]}

    def forward(self, x):
        features = [x]
        for stage in self.stages[: self.depth]:
            x = stage(x)
            features.append(x)
        return features


def build_plain(name, depth):
    return PlainEncoder(depth=depth)


def build_legacy(name, in_channels, depth, output_stride, weights=None):
    encoder = PlainEncoder(depth=depth)
    encoder.set_in_channels(in_channels, pretrained=False)
    encoder.make_dilated(output_stride)
    return encoder


def test_the_core_adapts_and_dilates_what_a_factory_constructs(core_only):
    spec = EncoderSpec(name="plain", family="Plain", factory=build_plain,
                       out_channels=(3, 8, 8, 8, 8, 8), supports_dilation=True)
    with testing.specs_installed(encoders=[spec]):
        encoder = segcore.get_encoder("plain", in_channels=4, output_stride=8)
        assert encoder.stages[0].in_channels == 4
        assert encoder.output_stride == 8
        features = encoder(torch.rand(1, 4, 64, 64))
        assert [f.shape[-1] for f in features] == [64, 32, 16, 8, 8, 8]


def test_a_factory_written_before_1_0_still_works_with_a_deprecation_warning(core_only):
    spec = EncoderSpec(name="legacy", family="Legacy", factory=build_legacy,
                       out_channels=(3, 8, 8, 8, 8, 8), supports_dilation=True)
    with testing.specs_installed(encoders=[spec]):
        with pytest.warns(DeprecationWarning, match="the core adapts the input channels"):
            encoder = segcore.get_encoder("legacy", in_channels=1, output_stride=16)
        assert encoder.stages[0].in_channels == 1 and encoder.output_stride == 16


def test_a_pooled_deepest_feature_is_a_capability_any_encoder_declares(core_only):
    pytest.importorskip("segcore_unet")
    segcore.plugins.reset()
    plain = EncoderSpec(name="plain", family="Plain", factory=build_plain,
                        out_channels=(3, 8, 8, 8, 8, 8))
    pooled = attrs.evolve(plain, name="pooled", deepest_feature_pooled=True)
    import os

    os.environ.pop("SEGCORE_DISABLE_PLUGINS", None)
    segcore.plugins.reset()
    with testing.specs_installed(encoders=[plain, pooled]):
        without = segcore.build("unet", encoder="plain", decoder_channels=(8, 8, 8, 8, 8))
        with_center = segcore.build("unet", encoder="pooled", decoder_channels=(8, 8, 8, 8, 8))
    assert isinstance(without.decoder.center, nn.Identity)
    assert not isinstance(with_center.decoder.center, nn.Identity)


# -- 7. errors that help ------------------------------------------------------------------------
def test_attrs_internals_never_reach_an_option_error(core_only):
    @attrs.frozen
    class Typed(ArchitectureOptions):
        width: int = attrs.field(default=8, validator=attrs.validators.instance_of(int))

    with pytest.raises(InvalidOptionError) as raised:
        Typed.from_options("typed", width="wide")
    assert "Attribute(" not in str(raised.value) and "'width' must be" in str(raised.value)


def test_a_broken_factory_reference_names_the_encoder_and_the_plugin(core_only):
    spec = EncoderSpec(name="typo-encoder", family="Typo",
                       factory="segcore_no_such_module.encoder:build")
    with testing.plugin_installed(testing._SpecPlugin({"encoders": [spec]}), "typo-plugin"):
        with pytest.raises(BrokenPluginError) as raised:
            segcore.get_encoder("typo-encoder")
    message = str(raised.value)
    assert "typo-encoder" in message and "typo-plugin" in message
    assert "segcore_no_such_module.encoder:build" in message


class NotDilatable(PlainEncoder):
    def get_stages(self):
        raise NotImplementedError


def test_an_encoder_that_claims_dilation_but_cannot_gets_a_clear_error(core_only):
    spec = EncoderSpec(name="liar", family="Liar", factory=lambda name, depth: NotDilatable(depth),
                       out_channels=(3, 8, 8, 8, 8, 8), supports_dilation=True)
    with testing.specs_installed(encoders=[spec]):
        with pytest.raises(EncoderCapabilityError, match="declares supports_dilation=True"):
            segcore.get_encoder("liar", output_stride=16)
    undeclared = EncoderSpec(name="quiet", family="Quiet", factory=build_plain)
    assert undeclared.supports_dilation is False
    with testing.specs_installed(encoders=[undeclared]):
        with pytest.raises(EncoderCapabilityError, match="cannot be dilated"):
            segcore.get_encoder("quiet", output_stride=16)


def test_a_plain_path_as_weight_url_is_refused_at_once():
    with pytest.raises(ValueError, match=r"file://"):
        WeightSource(url="/data/weights.safetensors")
    assert WeightSource(url="file:///data/weights.safetensors").url.startswith("file://")


def test_the_kit_catches_out_channels_that_disagree_with_the_module(core_only):
    spec = EncoderSpec(name="wrong-channels", family="Plain", factory=build_plain,
                       out_channels=(3, 16, 16, 16, 16, 16))
    with testing.specs_installed(encoders=[spec]):
        with pytest.raises(AssertionError, match="the spec says out_channels"):
            testing.check_encoder("wrong-channels", depths=(5,), in_channels=(3,))


def test_aliases_must_point_at_existing_tags():
    with pytest.raises(ValueError, match="weight_aliases"):
        EncoderSpec(name="x", family="X", factory=build_plain, weight_aliases={"swsl": "sswl"})


def test_the_public_namespace_is_clean():
    names = dir(segcore)
    assert "Any" not in names and "annotations" not in names
    assert "SegmentationModel" in segcore.__all__ and "MODES" in segcore.__all__
    assert segcore.SegmentationModel is SegmentationModel


# -- 8. module structure and version -------------------------------------------------------------
def _python_files():
    yield from ROOT.glob("segcore/**/*.py")
    yield from ROOT.glob("plugins/*/segcore_*/*.py")
    # what plugin authors copy: the plugins' tests, the examples and the benchmark scripts
    yield from ROOT.glob("plugins/*/tests/*.py")
    yield from ROOT.glob("examples/**/*.py")
    yield from ROOT.glob("benchmarks/*.py")


def test_no_module_imports_a_private_name_of_another_module():
    offenders = []
    for path in _python_files():
        tree = ast.parse(path.read_text())
        imported_modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        offenders.append(f"{path.relative_to(ROOT)}: {alias.name}")
                    imported_modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    imported_modules.add((alias.asname or alias.name).split(".")[0])
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in imported_modules and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                offenders.append(f"{path.relative_to(ROOT)}: {node.value.id}.{node.attr}")
    # _catalog is a private module of core, used by core (and by core's own tests) only
    offenders = [o for o in offenders
                 if not (o.startswith("segcore/") and o.endswith(": _catalog"))]
    assert not offenders, offenders


def test_registry_follows_the_manager_without_a_reset(manager):
    spec = EncoderSpec(name="late-encoder", family="Late", factory=build_plain)
    assert "late-encoder" not in segcore.list_encoders()
    with testing.specs_installed(encoders=[spec]):
        assert "late-encoder" in segcore.list_encoders()
    assert "late-encoder" not in segcore.list_encoders()


def test_the_contract_version_is_the_major_version_of_segcore():
    assert Version(segcore.__version__).major == Version(CONTRACT_VERSION).major
    import importlib_metadata

    assert importlib_metadata.version("segcore") == segcore.__version__


def test_first_party_plugins_pin_the_contract_range():
    import tomllib

    for path in ROOT.glob("plugins/*/pyproject.toml"):
        dependencies = tomllib.loads(path.read_text())["project"]["dependencies"]
        assert "segcore>=1.0,<2" in dependencies, f"{path}: {dependencies}"


def test_every_hook_documents_when_it_is_called_and_since_which_version():
    from segcore import hookspecs

    for name in HOOKS:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert re.search(r"Since contract \d+\.\d+", doc), name
        assert "Called" in doc or "Deprecated" in doc, name


def test_warnings_from_a_clean_install_are_none(core_only):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        segcore.list_encoders()


def test_models_that_keep_their_encoder_spec_can_be_copied_and_pickled(core_only):
    import copy
    import pickle

    with testing.tiny_encoder_installed():
        spec = ArchitectureSpec(name="probe", model=Probe)
        with testing.specs_installed(architectures=[spec]):
            model = segcore.build("probe", encoder=testing.TINY_ENCODER)
    clone = copy.deepcopy(model)
    restored = pickle.loads(pickle.dumps(model))
    assert clone.encoder_spec == model.encoder_spec == restored.encoder_spec
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(clone.eval()(x), model.eval()(x))
    with pytest.raises(TypeError, match="read-only"):
        model.encoder_spec.params["depth"] = 3


# -- encoder name aliases -------------------------------------------------------------------------
def _alias_spec(name: str, aliases: tuple[str, ...]) -> EncoderSpec:
    return EncoderSpec(name=name, family="Test", factory=f"{__name__}:PlainEncoder",
                       aliases=aliases)


class AliasedEncoders:
    @hookimpl
    def segcore_encoders(self):
        return [_alias_spec("aliased-encoder", ("aliased_encoder_old_spelling",))]


class ClashingAlias:
    @hookimpl
    def segcore_encoders(self):
        return [_alias_spec("another-encoder", ("aliased-encoder",))]


def test_an_alias_builds_the_encoder_under_its_name_and_is_not_listed(manager):
    manager.register_module(AliasedEncoders(), "aliased")
    try:
        spec = get_encoder_spec("aliased_encoder_old_spelling")
        assert spec is get_encoder_spec("aliased-encoder")
        assert "aliased-encoder" in segcore.list_encoders()
        assert "aliased_encoder_old_spelling" not in segcore.list_encoders()
        with pytest.raises(EncoderCapabilityError, match="encoder 'aliased-encoder' cannot"):
            segcore.get_encoder("aliased_encoder_old_spelling", output_stride=16)
    finally:
        manager.unregister("aliased")


def test_an_alias_that_is_another_name_fails_the_newcomer(manager):
    # pluggy calls the last registered first: "aliased" is collected first, "clashing" is
    # the newcomer
    manager.register_module(ClashingAlias(), "clashing")
    manager.register_module(AliasedEncoders(), "aliased")
    try:
        assert "aliased-encoder" in segcore.list_encoders()
        assert "another-encoder" not in segcore.list_encoders()
        record = _record(manager, "clashing")
        assert record.status == STATUS_FAILED
        assert "DuplicateNameError" in record.error and "alias 'aliased-encoder'" in record.error
    finally:
        manager.unregister("clashing")
        manager.unregister("aliased")


@pytest.mark.parametrize("aliases", [("bad name",), ("same-name",)])
def test_aliases_are_checked_names(aliases):
    with pytest.raises(ValueError, match="EncoderSpec"):
        _alias_spec("same-name", aliases)
