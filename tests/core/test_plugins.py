"""Plugin discovery through real entry points.

Broken plugins are isolated, blocked ones are never imported.

Each test writes small distributions (a ``*.dist-info`` with ``entry_points.txt`` and a module)
into a folder and runs segcore in a subprocess with that folder on ``PYTHONPATH``, exactly as
installed packages are found.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _encoder_plugin(name: str, family: str, *, at_import: str = "", in_hook: str = "") -> str:
    """The source of a plugin module whose hook returns one tiny encoder, ``name``."""
    return f'''
{at_import}from segcore.hookspecs import hookimpl
from segcore.specs import EncoderSpec

@hookimpl
def segcore_encoders():
{in_hook}    return [EncoderSpec(name="{name}", family="{family}",
                        factory="segcore.testing:build_tiny_encoder")]
'''


GOOD_PLUGIN = _encoder_plugin("good-encoder", "Good")

IMPORT_ERROR_PLUGIN = '''
import this_module_does_not_exist_anywhere
'''

WRONG_SIGNATURE_PLUGIN = '''
from segcore.hookspecs import hookimpl

@hookimpl
def segcore_encoders(unexpected_argument):
    return []
'''

RAISING_HOOK_PLUGIN = '''
from segcore.hookspecs import hookimpl

@hookimpl
def segcore_encoders():
    raise RuntimeError("the hook itself is broken")
'''

MARKER_PLUGIN = _encoder_plugin(
    "marker-encoder", "Marker",
    at_import='import os\nopen(os.environ["MARKER_FILE"], "w").write("imported")\n',
)

DUPLICATE_PLUGIN = _encoder_plugin("good-encoder", "Copy")


def make_distribution(
    site: Path, distribution: str, entry_name: str, module: str, code: str,
    requires: str | None = None,
) -> None:
    """Write an installed distribution with one ``segcore`` entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{distribution.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.2.3\n"
    if requires:
        metadata += f"Requires-Dist: {requires}\n"
    (info / "METADATA").write_text(metadata)
    (info / "entry_points.txt").write_text(f"[segcore]\n{entry_name} = {module}\n")


def run_segcore(site: Path, script: str, **environment: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGCORE_")}
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(environment)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)


REPORT = """
import json, segcore
from segcore.plugins import plugin_records
encoders = segcore.list_encoders()
records = {r.name: [r.distribution, r.version, r.status, r.error] for r in plugin_records()}
print(json.dumps({"records": records, "encoders": encoders}))
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    make_distribution(site, "segcore-good", "good", "good_plugin", GOOD_PLUGIN)
    return site


def test_broken_plugins_leave_the_others_working(site):
    make_distribution(site, "segcore-importerror", "importerror", "importerror_plugin",
                      IMPORT_ERROR_PLUGIN)
    make_distribution(site, "segcore-wrongsig", "wrongsig", "wrongsig_plugin",
                      WRONG_SIGNATURE_PLUGIN)
    make_distribution(site, "segcore-raising", "raising", "raising_plugin", RAISING_HOOK_PLUGIN)
    result = run_segcore(site, REPORT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    records = report["records"]
    assert "good-encoder" in report["encoders"]
    assert records["good"][2] == "loaded"
    assert records["importerror"][:3] == ["segcore-importerror", "1.2.3", "failed"]
    assert "ModuleNotFoundError" in records["importerror"][3]
    assert records["wrongsig"][2] == "failed"
    assert "unexpected_argument" in records["wrongsig"][3]
    assert records["raising"][2] == "failed"
    assert "the hook itself is broken" in records["raising"][3]


def test_segcore_plugins_command_shows_failures(site):
    make_distribution(site, "segcore-importerror", "importerror", "importerror_plugin",
                      IMPORT_ERROR_PLUGIN)
    result = run_segcore(site, "from segcore.cli import main; raise SystemExit(main(['plugins']))")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "segcore-good" in lines["good"] and "loaded" in lines["good"]
    assert "segcore-importerror" in lines["importerror"]
    assert "failed: ModuleNotFoundError" in lines["importerror"]
    strict = run_segcore(
        site, "from segcore.cli import main; raise SystemExit(main(['plugins', '--strict']))"
    )
    assert strict.returncode == 1


def test_blocked_plugins_are_never_imported(site, tmp_path):
    marker = tmp_path / "marker.txt"
    make_distribution(site, "segcore-marker", "marker", "marker_plugin", MARKER_PLUGIN)
    result = run_segcore(site, REPORT, MARKER_FILE=str(marker))
    assert "marker-encoder" in json.loads(result.stdout)["encoders"]
    assert marker.exists()
    marker.unlink()
    for blocked in ("marker", "segcore-marker", "other, MARKER"):
        result = run_segcore(site, REPORT, MARKER_FILE=str(marker),
                             SEGCORE_DISABLE_PLUGINS=blocked)
        report = json.loads(result.stdout)
        assert not marker.exists(), f"blocked by {blocked!r} but imported anyway"
        assert report["records"]["marker"][2] == "blocked"
        assert "marker-encoder" not in report["encoders"]
        assert "good-encoder" in report["encoders"]


def test_strict_mode_raises_on_the_first_failure(site):
    make_distribution(site, "segcore-importerror", "importerror", "importerror_plugin",
                      IMPORT_ERROR_PLUGIN)
    result = run_segcore(site, REPORT, SEGCORE_STRICT_PLUGINS="1")
    assert result.returncode != 0
    assert "PluginLoadError" in result.stderr
    assert "importerror" in result.stderr and "SEGCORE_DISABLE_PLUGINS" in result.stderr


def test_duplicate_names_name_both_providers_and_fail_only_the_newcomer(site):
    make_distribution(site, "segcore-copy", "copy", "copy_plugin", DUPLICATE_PLUGIN)
    result = run_segcore(site, REPORT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert "good-encoder" in report["encoders"]
    assert report["records"]["good"][2] == "loaded"
    copy = report["records"]["copy"]
    assert copy[2] == "failed"
    assert "DuplicateNameError" in copy[3]
    assert "segcore-good" in copy[3] and "segcore-copy" in copy[3]
    strict = run_segcore(site, REPORT, SEGCORE_STRICT_PLUGINS="1")
    assert strict.returncode != 0
    assert "PluginLoadError" in strict.stderr and "DuplicateNameError" in strict.stderr


def test_error_for_a_name_of_a_failed_plugin_points_at_it(tmp_path):
    site = tmp_path / "site"
    make_distribution(site, "segcore-unet", "unet", "fake_unet_plugin", IMPORT_ERROR_PLUGIN)
    script = """
import segcore
try:
    segcore.build("unet")
except segcore.UnknownNameError as error:
    print(error)
"""
    result = run_segcore(site, script, SEGCORE_DISABLE_PLUGINS="")
    assert "segcore-unet, which is installed but failed to load" in result.stdout
    assert "segcore plugins" in result.stdout


def test_a_plugin_outside_its_contract_range_is_incompatible_and_not_imported(site, tmp_path):
    marker = tmp_path / "marker.txt"
    make_distribution(site, "segcore-future", "future", "future_plugin", MARKER_PLUGIN,
                      requires="segcore>=2.0,<3")
    make_distribution(site, "segcore-current", "current", "current_plugin", GOOD_PLUGIN.replace(
        "good-encoder", "current-encoder"), requires="segcore>=1.0,<2")
    result = run_segcore(site, REPORT, MARKER_FILE=str(marker))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    future = report["records"]["future"]
    assert future[2] == "incompatible"
    assert "segcore<3,>=2.0" in future[3] or "segcore>=2.0,<3" in future[3]
    assert "1.0" in future[3]
    assert not marker.exists(), "an incompatible plugin was imported"
    assert report["records"]["current"][2] == "loaded"
    assert "current-encoder" in report["encoders"]


SYSTEM_EXIT_PLUGIN = '''
print("hello from a noisy plugin")
import sys
sys.exit(3)
'''

NOISY_PLUGIN = _encoder_plugin(
    "noisy-encoder", "Noisy",
    at_import='print("noise at import")\n', in_hook='    print("noise in a hook")\n',
)

IMPOSTOR_PLUGIN = _encoder_plugin("impostor-encoder", "Impostor")


def test_sys_exit_and_prints_of_plugins_never_reach_the_host(site):
    make_distribution(site, "segcore-exiting", "exiting", "exiting_plugin", SYSTEM_EXIT_PLUGIN)
    make_distribution(site, "segcore-noisy", "noisy", "noisy_plugin", NOISY_PLUGIN)
    result = run_segcore(site, "from segcore.cli import main; raise SystemExit(main(['list', "
                               "'encoders', '*-encoder']))")
    assert result.returncode == 0, result.stderr
    assert "noise" not in result.stdout and "hello" not in result.stdout
    assert "noisy-encoder" in result.stdout and "good-encoder" in result.stdout
    report = run_segcore(site, REPORT)
    records = json.loads(report.stdout)["records"]
    assert records["exiting"][2] == "failed" and "sys.exit(3)" in records["exiting"][3]
    verbose = run_segcore(site, "from segcore.cli import main; raise SystemExit(main(['plugins', "
                                "'-v']))")
    assert "printed: noise at import" in verbose.stdout


def test_a_third_party_reusing_an_entry_point_name_does_not_knock_out_the_first(site):
    pytest.importorskip("segcore_resnet")
    make_distribution(site, "acme-impostor", "resnet", "impostor_plugin", IMPOSTOR_PLUGIN)
    result = run_segcore(site, REPORT)
    assert result.returncode == 0, result.stderr
    encoders = json.loads(result.stdout)["encoders"]
    assert "resnet34" in encoders and "impostor-encoder" in encoders


def test_disabled_names_match_any_spelling_and_typos_are_warned_about(site):
    script = REPORT.replace("import json, segcore", "import json, warnings, segcore\n"
                            "warnings.simplefilter('always')")
    result = run_segcore(site, script, SEGCORE_DISABLE_PLUGINS="Segcore_Good,segcore-typo")
    report = json.loads(result.stdout)
    assert report["records"]["good"][2] == "blocked"
    assert "segcore-typo" in result.stderr and "matches no installed plugin" in result.stderr
