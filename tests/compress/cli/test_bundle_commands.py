"""compress pack / compress verify from the command line."""

from __future__ import annotations

from click.testing import CliRunner

from compress.cli.main import main
from tests.export.bundle.bundle_fixture import members, write_tar


def test_cli_packs_and_verifies_a_bundle(digits_run, tmp_path):
    out = tmp_path / "digits.tar"
    packed = CliRunner().invoke(main, ["pack", str(digits_run.out_dir), "-o", str(out)])
    assert packed.exit_code == 0, packed.output
    assert f"wrote {out}: 3 files" in packed.output and "no TensorRT engine" in packed.output
    checked = CliRunner().invoke(main, ["verify", str(out)])
    assert checked.exit_code == 0 and "ok:" in checked.output and "3 files match" in checked.output
    again = CliRunner().invoke(main, ["pack", str(digits_run.out_dir), "-o", str(out)])
    assert again.exit_code == 1 and "already exists; pass --force" in again.stderr


def test_cli_verify_exits_non_zero_naming_the_tampered_file(digits_run, tmp_path):
    out = tmp_path / "digits.tar"
    assert CliRunner().invoke(main, ["pack", str(digits_run.out_dir), "-o", str(out)]).exit_code == 0
    files = members(out)
    files["report.json"] = files["report.json"].replace(b"onnx-int8", b"onnx-int9")
    result = CliRunner().invoke(main, ["verify", str(write_tar(tmp_path / "t.tar", files))])
    assert result.exit_code == 1
    assert result.stderr.startswith("error:") and "report.json does not match its sha256" in result.stderr
    assert len(result.stderr.splitlines()) == 1
