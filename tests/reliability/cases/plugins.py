"""Broken, hostile and careless plugins; unknown names; settings (items 17-25, issue 6).

Broken plugins never raise in normal mode (they are recorded); these rows turn strict mode on
so the recorded failure comes out as ``PluginLoadError`` with its reason.
"""

from __future__ import annotations

from typing import Any

from catalogue import Case, Context

from segcore.errors import (
    BrokenPluginError,
    ConfigurationWarning,
    EncoderCapabilityError,
    InvalidOptionError,
    PluginLoadError,
    UnknownNameError,
    UnknownOptionError,
)
from segcore.hookspecs import hookimpl

LIST_HOOKS = ("segcore_encoders", "segcore_architectures", "segcore_heads", "segcore_losses",
              "segcore_metrics", "segcore_commands")


def _plugin(hook: str, body: Any) -> Any:
    """An object implementing ``hook`` with ``body`` (a callable taking no argument)."""

    def implementation() -> Any:
        return body()

    implementation.__name__ = hook
    namespace = type("Plugin", (), {hook: staticmethod(hookimpl(implementation))})
    return namespace()


def _strict_with(plugin: Any) -> Any:
    def call(context: Context) -> None:
        from segcore import plugins

        context.monkeypatch.setenv("SEGCORE_STRICT_PLUGINS", "1")
        context.monkeypatch.setenv("SEGCORE_DISABLE_PLUGINS",
                                   "unet,deeplab,resnet,timm,losses,metrics")
        plugins.reset()
        manager = plugins.get_plugin_manager(strict=False)
        manager.register_module(plugin, "hostile")
        try:
            import segcore

            segcore.list_encoders()
        finally:
            manager.unregister("hostile")

    return call


def _raise(error: BaseException) -> Any:
    def body() -> Any:
        raise error

    return body


CASES: list[Case] = []

for hook in LIST_HOOKS:
    for label, error, word in (
        ("runtime-error", RuntimeError("hook exploded"), "hook exploded"),
        ("system-exit", SystemExit(3), "sys.exit(3)"),
        ("import-error", ImportError("no module named torchvision_extra"), "torchvision_extra"),
    ):
        CASES.append(Case(
            id=f"hook-{hook.removeprefix('segcore_')}-raises-{label}",
            item="7.17",
            description=f"{hook} raises {type(error).__name__}",
            call=_strict_with(_plugin(hook, _raise(error))),
            error=PluginLoadError,
            words=("hostile", hook, word),
        ))
    for label, answer, word in (
        ("a-string", "resnet34", "returned str"),
        ("a-dict", {"name": "x"}, "returned dict"),
        ("ints", [1, 2, 3], "returned int"),
        ("dicts", [{"name": "x"}], "returned dict"),
    ):
        CASES.append(Case(
            id=f"hook-{hook.removeprefix('segcore_')}-returns-{label}",
            item="7.17",
            description=f"{hook} returns {label.replace('-', ' ')}",
            call=_strict_with(_plugin(hook, lambda answer=answer: answer)),
            error=PluginLoadError,
            words=("hostile", word),
        ))

for typo in ("segcore_architecture", "segcore_encoder", "segcore_loss", "segcore_metric",
             "segcore_decoder", "segcore_command", "segcore_resolve", "segcore_preprocessing"):
    CASES.append(Case(
        id=f"unknown-hook-{typo.replace('_', '-')}",
        item="6.2",
        description=f"a plugin implements {typo}(), which the contract does not define",
        call=_strict_with(_plugin(typo, list)),
        error=PluginLoadError,
        words=("hostile", typo, "segcore_architectures()"),
    ))


def _bad_spec(make: Any) -> Any:
    def body() -> list[Any]:
        return [make()]

    return body


def _spec_rows() -> list[Case]:
    from segcore.specs import ArchitectureSpec, EncoderSpec, WeightSource

    tiny = "segcore.testing:build_tiny_encoder"
    bad = {
        "spec-url-is-a-plain-path": (
            "segcore_encoders",
            lambda: EncoderSpec(name="p", family="P", factory=tiny,
                                weights={"x": WeightSource(url="/tmp/w.safetensors")}),
            ("file://",)),
        "spec-sha256-not-hex": (
            "segcore_encoders",
            lambda: EncoderSpec(name="p", family="P", factory=tiny,
                                weights={"x": WeightSource(url="https://x/w", sha256="abc")}),
            ("sha256 must be 64",)),
        "spec-alias-to-missing-tag": (
            "segcore_encoders",
            lambda: EncoderSpec(name="p", family="P", factory=tiny, weight_aliases={"a": "b"}),
            ("weight_aliases",)),
        "spec-out-channels-wrong-length": (
            "segcore_encoders",
            lambda: EncoderSpec(name="p", family="P", factory=tiny, out_channels=(3, 8)),
            ("out_channels must be 6",)),
        "spec-factory-not-a-reference": (
            "segcore_encoders",
            lambda: EncoderSpec(name="p", family="P", factory="no colon here"),
            ("module:attribute",)),
        "spec-name-with-spaces": (
            "segcore_encoders",
            lambda: EncoderSpec(name="my encoder", family="P", factory=tiny),
            ("must be a non-empty name",)),
        "spec-weights-not-sources": (
            "segcore_encoders",
            lambda: EncoderSpec(name="p", family="P", factory=tiny, weights={"x": "https://x"}),
            ("must be a WeightSource",)),
        "architecture-spec-old-fields": (
            "segcore_architectures",
            lambda: ArchitectureSpec(name="a", class_name="A", model="m:A"),
            ("class_name",)),
        "architecture-spec-bad-model": (
            "segcore_architectures",
            lambda: ArchitectureSpec(name="a", model="segcore_a.model.A"),
            ("module:attribute",)),
    }
    return [
        Case(id=row_id, item="6.7", description=f"{hook} builds an invalid spec",
             call=_strict_with(_plugin(hook, _bad_spec(make))), error=PluginLoadError,
             words=("hostile", *words))
        for row_id, (hook, make, words) in bad.items()
    ]


CASES.extend(_spec_rows())


class _Wrapper:
    @hookimpl(wrapper=True)
    def segcore_encoders(self) -> Any:
        return (yield)


class _DuplicateHeads:
    @hookimpl
    def segcore_heads(self) -> list[Any]:
        from segcore.specs import HeadSpec

        return [HeadSpec(name="segmentation", factory="segcore.heads:SegmentationHead")]


CASES += [
    Case(id="hook-wrapper-refused", item="6.3", description="a plugin uses a hook wrapper",
         call=_strict_with(_Wrapper()), error=PluginLoadError,
         words=("hook wrapper", "segcore_encoders")),
    Case(id="duplicate-name-fails-the-newcomer", item="7.19",
         description="a plugin provides a head name the core already provides",
         call=_strict_with(_DuplicateHeads()), error=PluginLoadError,
         words=("hostile", "DuplicateNameError", "segmentation", "segcore.core")),
]


# -- resolvers -------------------------------------------------------------------------------
class _ExplodingResolver:
    @hookimpl
    def segcore_resolve_encoder(self, name: str) -> Any:
        raise RuntimeError("resolver exploded")


def _resolver_row(context: Context) -> None:
    from segcore import plugins

    context.monkeypatch.setenv("SEGCORE_STRICT_PLUGINS", "1")
    plugins.reset()
    manager = plugins.get_plugin_manager()
    manager.register_module(_ExplodingResolver(), "hostile")
    try:
        import segcore

        segcore.get_encoder("some-unlisted-name")
    finally:
        manager.unregister("hostile")


CASES.append(Case(id="resolver-raises-is-recorded", item="7.21",
                  description="a resolver hook raises for every name (strict mode)",
                  call=_resolver_row, error=PluginLoadError,
                  words=("hostile", "segcore_resolve_encoder", "resolver exploded")))


# -- unknown names ----------------------------------------------------------------------------
def _unknown(function: str, name: str) -> Any:
    def call(context: Context) -> None:
        import segcore

        getattr(segcore, function)(name)

    return call


for function, name, words, requires in (
    ("build", "unett", ("unknown architecture", "did you mean", "'unet'"), ("segcore_unet",)),
    ("build", "deeplab", ("unknown architecture", "deeplabv3"), ("segcore_deeplab",)),
    ("build", "UNet", ("unknown architecture",), ("segcore_unet",)),
    ("build", "unet3plus", ("unknown architecture", "unet"), ("segcore_unet",)),
    ("get_encoder", "resnet43", ("unknown encoder", "resnet34"), ("segcore_resnet",)),
    ("get_encoder", "resnet", ("unknown encoder", "resnet18"), ("segcore_resnet",)),
    ("get_encoder", "tu-resnet181", ("tu-resnet18",), ("segcore_timm",)),
    ("get_encoder", "", ("unknown encoder",), ()),
    ("build_loss", "dicee", ("unknown loss", "dice"), ("segcore_losses",)),
    ("build_loss", "crossentropy", ("unknown loss",), ("segcore_losses",)),
    ("get_metric", "iou", ("unknown metric", "iou_score"), ("segcore_metrics",)),
    ("get_metric", "f1", ("unknown metric", "f1_score"), ("segcore_metrics",)),
):
    CASES.append(Case(
        id=f"unknown-{function.replace('_', '-')}-{name or 'empty'}".lower().replace("_", "-"),
        item="6.1", description=f"segcore.{function}({name!r})",
        call=_unknown(function, name), error=UnknownNameError, words=words, requires=requires,
    ))


def _blocked_encoder(plugin: str, name: str) -> Any:
    def call(context: Context) -> None:
        import segcore
        from segcore import plugins

        context.monkeypatch.setenv("SEGCORE_DISABLE_PLUGINS", plugin)
        plugins.reset()
        segcore.get_encoder(name)

    return call


# A documented name whose family package is installed but blocked names the package and the
# setting (when it is not installed, the message is the `pip install` line).
for plugin, name, package in (
    ("vgg", "vgg16", "segcore-vgg"),
    ("mit", "mit_b0", "segcore-mit"),
    ("timm_families", "timm-regnetx_002", "segcore-timm-families"),
    ("efficientnet", "efficientnet-b0", "segcore-efficientnet"),
):
    CASES.append(Case(
        id=f"blocked-family-{name}".lower().replace("_", "-"),
        item="6.1", description=f"segcore.get_encoder({name!r}) with {package} blocked",
        call=_blocked_encoder(plugin, name), error=UnknownNameError,
        words=(package, "installed but blocked", "SEGCORE_DISABLE_PLUGINS"),
        requires=(f"segcore_{plugin}",),
    ))


def _not_a_string(context: Context) -> None:
    import segcore

    segcore.get_encoder(34)  # type: ignore[arg-type]


CASES.append(Case(id="encoder-name-not-a-string", item="6.7", description="get_encoder(34)",
                  call=_not_a_string, error=UnknownNameError, words=("must be a string",)))


def _blocked(context: Context) -> None:
    import segcore
    from segcore import plugins

    context.monkeypatch.setenv("SEGCORE_DISABLE_PLUGINS", "segcore_unet")
    plugins.reset()
    segcore.build("unet")


CASES.append(Case(id="blocked-plugin-says-blocked", item="7.24",
                  description="build('unet') with segcore-unet blocked (underscore spelling)",
                  call=_blocked, error=UnknownNameError,
                  words=("blocked by SEGCORE_DISABLE_PLUGINS",), requires=("segcore_unet",)))


# -- factories and encoder options -------------------------------------------------------------
def _broken_factory(context: Context) -> None:
    import segcore
    from segcore import testing
    from segcore.specs import EncoderSpec

    spec = EncoderSpec(name="ghost", family="Ghost", factory="segcore_ghost.encoder:build")
    with testing.specs_installed(encoders=[spec]):
        segcore.get_encoder("ghost")


def _broken_attribute(context: Context) -> None:
    import segcore
    from segcore import testing
    from segcore.specs import EncoderSpec

    spec = EncoderSpec(name="ghost", family="Ghost", factory="segcore.testing:no_such_factory")
    with testing.specs_installed(encoders=[spec]):
        segcore.get_encoder("ghost")


def _no_dilation(context: Context) -> None:
    import segcore
    from segcore import testing
    from segcore.specs import EncoderSpec

    spec = EncoderSpec(name="flat", family="Flat", factory="segcore.testing:build_tiny_encoder")
    with testing.specs_installed(encoders=[spec]):
        segcore.get_encoder("flat", output_stride=8)


CASES += [
    Case(id="factory-module-missing", item="7.22", description="a spec's factory module is gone",
         call=_broken_factory, error=BrokenPluginError,
         words=("ghost", "segcore_ghost.encoder:build", "ModuleNotFoundError")),
    Case(id="factory-attribute-missing", item="6.7", description="a spec's factory is misspelt",
         call=_broken_attribute, error=BrokenPluginError,
         words=("ghost", "no_such_factory", "AttributeError")),
    Case(id="dilation-not-declared", item="6.7",
         description="output_stride=8 on an encoder that declares no dilation",
         call=_no_dilation, error=EncoderCapabilityError, words=("cannot be dilated", "flat")),
]


def _timm_kwargs(**kwargs: Any) -> Any:
    def call(context: Context) -> None:
        import segcore

        segcore.get_encoder("tu-resnet18", **kwargs)

    return call


for index, (key, value, error, words) in enumerate((
    ("checkpoint_path", "evil.pth", UnknownOptionError, ("checkpoint_path", "refused")),
    ("pretrained_cfg", {"file": "evil.pth"}, UnknownOptionError, ("pretrained_cfg", "refused")),
    ("pretrained_cfg_overlay", {"file": "x"}, UnknownOptionError, ("refused",)),
    ("pretrained", True, InvalidOptionError, ("pretrained", "encoder_weights")),
    ("cache_dir", "/tmp", UnknownOptionError, ("refused",)),
    ("state_dict_file", "a.pt", UnknownOptionError, ("refused",)),
    ("act_layer", "/tmp/evil.py", InvalidOptionError, ("looks like a path",)),
    ("act_layer", "weights.pth", InvalidOptionError, ("looks like a path",)),
    ("act_layer", print, InvalidOptionError, ("must be a number",)),
    ("drop_rate", {"nested": 1}, InvalidOptionError, ("must be a number",)),
)):
    CASES.append(Case(
        id=f"encoder-kwarg-{index}-{key.replace('_', '-')}".lower(),
        item="7.1", description=f"tu-resnet18 with {key}={value!r}",
        call=_timm_kwargs(**{key: value}), error=error, words=words,
        requires=("segcore_timm",),
    ))


def _malicious_folder(config: dict[str, Any]) -> Any:
    def call(context: Context) -> None:
        import json

        import segcore

        folder = context.tmp_path / "saved"
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "model.safetensors").write_bytes(b"")
        segcore.from_pretrained(folder)

    return call


_BASE = {"architecture": "unet", "encoder_name": "tu-resnet18", "encoder_depth": 5,
         "in_channels": 3, "classes": 1}
for label, extra, error, words in (
    ("checkpoint-path", {"encoder_params": {"checkpoint_path": "evil.pth"}},
     UnknownOptionError, ("checkpoint_path", "refused")),
    ("pretrained-cfg", {"encoder_params": {"pretrained_cfg_overlay": {"file": "evil.pth"}}},
     UnknownOptionError, ("refused",)),
    ("path-value", {"encoder_params": {"act_layer": "../../evil.pth"}},
     InvalidOptionError, ("looks like a path",)),
    ("unknown-option", {"decoder_evil": 1}, UnknownOptionError, ("decoder_evil",)),
):
    CASES.append(Case(
        id=f"saved-config-{label}", item="7.1",
        description=f"from_pretrained of a folder whose config has {label.replace('-', ' ')}",
        call=_malicious_folder({**_BASE, **extra}), error=error, words=words,
        requires=("segcore_unet", "segcore_timm"),
    ))


# -- settings ---------------------------------------------------------------------------------
def _setting(variable: str, value: str) -> Any:
    def call(context: Context) -> None:
        import segcore
        from segcore import plugins

        context.monkeypatch.setenv(variable, value)
        plugins.reset()
        segcore.list_encoders()

    return call


for variable, value, words in (
    ("SEGCORE_STRICT_PLUGINS", "enabledd", ("SEGCORE_STRICT_PLUGINS", "enabledd")),
    ("SEGCORE_STRICT_PLUGINS", "2", ("SEGCORE_STRICT_PLUGINS",)),
    ("SEGCORE_TRACE_PLUGINS", "please", ("SEGCORE_TRACE_PLUGINS",)),
    ("SEGCORE_DISABLE_PLUGINS", "no-such-plugin", ("no-such-plugin", "matches no installed")),
    ("SEGCORE_DISABLE_PLUGINS", "resnet,typo-plugin", ("typo-plugin",)),
):
    CASES.append(Case(
        id=f"setting-{variable.lower().replace('_', '-')}-{value}".replace(",", "-"),
        item="7.25", description=f"{variable}={value!r}", call=_setting(variable, value),
        error=ConfigurationWarning, words=words,
    ))


def _strict_enabled(context: Context) -> None:
    """'enabled' is a true spelling: strict mode is on, so a broken plugin raises."""
    _strict_with(_plugin("segcore_encoders", _raise(RuntimeError("x"))))(context)


CASES.append(Case(id="setting-strict-enabled-means-strict", item="7.25",
                  description="SEGCORE_STRICT_PLUGINS=1 with a failing plugin raises",
                  call=_strict_enabled, error=PluginLoadError, words=("hostile",)))


