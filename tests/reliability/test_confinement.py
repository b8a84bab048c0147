"""Files outside the project's reach: ``extends:`` stays in the scenario's folder tree, no error quotes a file
that is not a scenario, names that become paths are safe, and printed names cannot drive the terminal.

Every refusal is exit code 2 with the file, line and field; the content of the "secret" file (a marker
string) never appears in any output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.scenario import ScenarioError, load_scenario

from .helpers import ROOT, cli, tiny, write_yaml

SECRET = "SECRET-MARKER-7f3a9c"
"""Stands for the content of a private file; it must never be printed."""

SECRET_FILES = {  # files that are not scenarios, each in a shape that once made its content show
    "plain": f"root:{SECRET}:19000:0:99999:7:::\n",
    "list": f"- {SECRET}\n- b\n",
    "number_list": f"[1, 2, {SECRET}]\n",
    "unclosed_quote": f"key: '{SECRET}\n",
    "undefined_alias": f"key: *{SECRET}\n",
    "bad_character": f"key: {SECRET}\n\t- x\n",
    "tab_and_brace": f"{{{SECRET}: [\n",
    "two_documents": f"a: 1\n--- {SECRET}\n",
    "nested_deep": "".join("  " * i + f"{SECRET}{i}:\n" for i in range(50)),
}

COMMANDS = {  # every command that loads a scenario: the argv after the scenario file
    "validate": [],
    "run": ["--out", "OUT"],
    "sweep": ["--out", "OUT"],
    "sensitivity": ["--out", "OUT"],
    "calibrate": ["--out", "OUT"],
    "explain": ["--out", "OUT"],
    "baseline save": ["--to", "OUT/b.json"],
    "baseline plan": ["--detect", "1pp"],
}


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A private file next to (outside of) the scenario folder ``tmp_path/scenarios``."""
    path = tmp_path / "secret.txt"
    path.write_text(SECRET_FILES["plain"], encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The scenario folder (also the working directory, so a default ``runs/`` would land in it)."""
    path = tmp_path / "scenarios"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


def child(folder: Path, extends: str, name: str = "child.yaml", body: str | None = None) -> Path:
    """A scenario whose line 1 is ``extends: EXTENDS``, then ``body`` (default: the whole tiny scenario)."""
    if body is None:
        body = write_yaml(folder / "body.yaml", tiny()).read_text(encoding="utf-8")
    path = folder / name
    path.write_text(f"extends: {extends}\n" + body, encoding="utf-8")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], command: str, scenario: Path, out: Path,
            *extra: str) -> tuple[int, str, str]:
    """``inmail-sim COMMAND SCENARIO ...`` with OUT standing for ``out``."""
    rest = [arg.replace("OUT", str(out)) for arg in COMMANDS[command]]
    return cli(capsys, *command.split(), str(scenario), *rest, *extra)


def assert_refused(code: int, out: str, err: str, file: Path, *expected: str) -> None:
    """Exit 2, the file and line 1 and the field named, ``expected`` said, the secret never shown."""
    assert code == 2, err
    assert f"{file}:1: extends = " in err, err
    for text in expected:
        assert text in err, err
    assert SECRET not in out + err
    assert "Traceback" not in err and "unexpected error" not in err


# --------------------------------------------------------------------------- confinement


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_absolute_extends_is_refused_by_every_command(command: str, folder: Path, secret: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    scenario = child(folder, str(secret))
    code, out, err = run_cli(capsys, command, scenario, tmp_path / "out")
    assert_refused(code, out, err, scenario, "an absolute path is refused", "--allow-outside-extends")
    assert not (tmp_path / "out").exists() and not (folder / "runs").exists()


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("extends", ["../secret.txt", "sub/../../secret.txt", "./../scenarios/../secret.txt"])
def test_dotdot_out_of_the_folder_is_refused(command: str, extends: str, folder: Path, secret: Path,
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "sub").mkdir()
    scenario = child(folder, extends)
    code, out, err = run_cli(capsys, command, scenario, tmp_path / "out")
    assert_refused(code, out, err, scenario, f"leads out of the scenario's folder {folder.resolve()}")


def test_a_symlink_inside_the_folder_to_a_file_outside_is_refused(folder: Path, secret: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "base.yaml").symlink_to(secret)
    scenario = child(folder, "base.yaml")
    code, out, err = cli(capsys, "validate", str(scenario))
    assert_refused(code, out, err, scenario, "leads out of the scenario's folder")


def test_a_base_file_in_a_subfolder_is_allowed_and_may_extend_back_up_inside_the_tree(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_yaml(folder / "common.yaml", tiny(root_seed=5))
    (folder / "bases").mkdir()
    (folder / "bases" / "base.yaml").write_text("extends: ../common.yaml\nreplications: 4\n", encoding="utf-8")
    scenario = child(folder, "bases/base.yaml", body="name: c\n")
    code, _, err = cli(capsys, "validate", str(scenario))
    assert code == 0, err
    loaded = load_scenario(scenario)
    assert (loaded.name, loaded.root_seed, loaded.replications) == ("c", 5, 4)


def test_the_base_of_a_base_stays_inside_the_top_files_folder(folder: Path, secret: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "bases").mkdir()
    base = folder / "bases" / "base.yaml"
    base.write_text("extends: ../../secret.txt\n", encoding="utf-8")
    code, out, err = cli(capsys, "validate", str(child(folder, "bases/base.yaml")))
    assert code == 2 and f"{base}:1: extends = " in err and "leads out of" in err
    assert SECRET not in out + err


def test_the_flag_and_the_keyword_allow_files_outside(folder: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_yaml(tmp_path / "shared.yaml", tiny(root_seed=11))
    scenario = child(folder, "../shared.yaml", body="name: c\n")
    with pytest.raises(ScenarioError, match="leads out of"):
        load_scenario(scenario)
    assert load_scenario(scenario, allow_outside=True).root_seed == 11
    code, _, err = cli(capsys, "validate", str(scenario), "--allow-outside-extends")
    assert code == 0, err
    absolute = child(folder, str(tmp_path / "shared.yaml"), "absolute.yaml", body="name: c\n")
    code, _, err = cli(capsys, "run", str(absolute), "--out", str(tmp_path / "out"), "-q", "--no-figures",
                       "--allow-outside-extends")
    assert code == 0, err
    code, _, err = cli(capsys, "validate", str(absolute))  # the flag holds for its command only
    assert code == 2 and "an absolute path is refused" in err


# --------------------------------------------------------------------------- no content of a non-scenario file


@pytest.mark.parametrize("shape", sorted(SECRET_FILES))
def test_a_file_that_is_not_a_scenario_is_never_quoted(shape: str, folder: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / f"{shape}.txt"
    outside.write_text(SECRET_FILES[shape], encoding="utf-8")
    scenario = child(folder, str(outside))
    code, out, err = cli(capsys, "validate", str(scenario), "--allow-outside-extends")  # read, then refused
    assert code == 2 and str(outside) in err, err
    assert SECRET not in out + err
    inside = folder / f"{shape}.yaml"  # named directly, or through an allowed extends
    inside.write_text(SECRET_FILES[shape], encoding="utf-8")
    for argv in (["validate", str(inside)], ["run", str(inside), "--out", str(tmp_path / "o")],
                 ["validate", str(child(folder, inside.name, "via.yaml"))]):
        code, out, err = cli(capsys, *argv)
        assert code == 2 and str(inside) in err, err
        assert SECRET not in out + err


def test_a_non_mapping_says_what_it_is(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = folder / "list.yaml"
    path.write_text(SECRET_FILES["list"], encoding="utf-8")
    code, _, err = cli(capsys, "validate", str(path))
    assert code == 2 and f"{path}:1: (top level): a scenario must be a mapping (key: value lines), not a list" in err


# --------------------------------------------------------------------------- not a regular file


@pytest.mark.parametrize("command", ["validate", "run"])
def test_extends_naming_a_folder_says_so(command: str, folder: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "bases").mkdir()
    scenario = child(folder, "bases")
    code, out, err = run_cli(capsys, command, scenario, tmp_path / "out")
    assert_refused(code, out, err, scenario, "is a directory")
    assert "file not found" not in err


def test_extends_naming_a_fifo_is_refused_without_hanging(folder: Path) -> None:
    os.mkfifo(folder / "pipe.yaml")
    scenario = child(folder, "pipe.yaml")
    for argv in (["validate", str(scenario)], ["validate", str(folder / "pipe.yaml")]):
        done = subprocess.run([sys.executable, "-m", "simulator", *argv], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert "is not a regular file" in done.stderr


def test_extends_naming_a_device_is_refused(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    scenario = child(folder, "/dev/zero")
    code, out, err = cli(capsys, "validate", str(scenario))
    assert_refused(code, out, err, scenario, "an absolute path is refused")
    code, out, err = cli(capsys, "validate", str(scenario), "--allow-outside-extends")
    assert_refused(code, out, err, scenario, "is not a regular file")


# --------------------------------------------------------------------------- YAML 1.2 numbers


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("text", ["1:30", "1:30:00", "-2:15.5"])
def test_sexagesimal_is_text_not_a_number(command: str, text: str, folder: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny()
    del data["horizon_days"]
    path = folder / "s.yaml"
    path.write_text(f"horizon_days: {text}\n" + write_yaml(folder / "b.yaml", data).read_text(), encoding="utf-8")
    code, _, err = run_cli(capsys, command, path, tmp_path / "out")
    assert code == 2 and f"{path}:1: horizon_days = '{text}': " in err and "must be a whole number" in err, err
    assert not (tmp_path / "out").exists()


def test_numbers_in_other_forms_read_as_before(folder: Path) -> None:
    from simulator.scenario.files import parse_yaml

    data, _ = parse_yaml("a: 010\nb: 0x1F\nc: 1_000\nd: 1e6\ne: .5\nf: -1.5e+3\ng: 12\n", "x")
    assert data == {"a": 8, "b": 31, "c": 1000, "d": 1e6, "e": 0.5, "f": -1500.0, "g": 12}


# --------------------------------------------------------------------------- names that become paths


@pytest.mark.parametrize("name", ["../../x", "/tmp/evil", "a/b", "..", "with space", "tab\there", "caf\u00e9"])
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_scenario_name_must_be_a_safe_folder_name(name: str, command: str, folder: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(folder / "s.yaml", tiny(name=name))
    argv = [command, str(path)] if command == "validate" else [command, str(path), "-q", "--no-figures"]
    code, _, err = cli(capsys, *argv)
    assert code == 2 and f"{path}:" in err and "name = " in err, err
    assert "^[A-Za-z0-9_-]+$" in err
    assert not any(tmp_path.rglob("runs")) and not (tmp_path / "x").exists()


def test_a_file_name_outside_the_alphabet_gives_a_safe_default_name(folder: Path) -> None:
    data = tiny()
    data.pop("name", None)
    path = write_yaml(folder / "my scenario (v2).yaml", data)
    assert load_scenario(path).name == "my_scenario__v2_"


# --------------------------------------------------------------------------- control characters


@pytest.mark.parametrize("raw", ["\x1b[31mred\x1b[0m", "a\rb", "two\nlines", "bell\x07", "rtl\u202eoverride"])
def test_control_characters_print_as_visible_escapes(raw: str, folder: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    quoted = raw.encode("unicode_escape").decode("ascii")
    data = tiny(name=raw)
    data["policies"][raw] = {"preset": "old_2014"}  # an unknown-key path and a bad name, both shown
    data["market"] = {raw: 1}
    path = write_yaml(folder / "s.yaml", data)
    code, out, err = cli(capsys, "validate", str(path))
    assert code == 2
    assert raw not in out + err and not any(c in err for c in "\x1b\r\x07\u202e")
    assert quoted in err, err
    code, _, err = cli(capsys, "policies", "diff", raw, "old_2014")
    assert code == 2 and raw not in err and quoted in err, err


def test_description_is_printed_escaped(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny()
    first = next(iter(data["policies"]))
    data["policies"][first]["description"] = "fine\x1b[2Jcleared"
    code, out, _ = cli(capsys, "validate", str(write_yaml(folder / "s.yaml", data)))
    assert code == 0 and "\x1b" not in out and "fine\\x1b[2Jcleared" in out
