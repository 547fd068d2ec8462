"""`phoebe --help` is remembered: the second time it prints the same bytes without importing
Typer, and anything that changes how help looks (width, colour settings) is another entry."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import PhoebeRunner


def test_the_remembered_help_is_byte_for_byte_typers(phoebe_process: PhoebeRunner, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache), "COLUMNS": "100"}

    first = phoebe_process("--help", env=env)
    kept = sorted((cache / "phoebe" / "help").iterdir())
    second = phoebe_process("--help", env=env)
    bare = phoebe_process(env=env)
    narrow = phoebe_process("--help", env={**env, "COLUMNS": "60"})
    fresh = phoebe_process("--help", env={"XDG_CACHE_HOME": str(tmp_path / "other"), "COLUMNS": "100"})

    assert (first.code, first.stderr) == (0, "")
    assert first.stdout.startswith("Usage: phoebe [OPTIONS] COMMAND [ARGS]...")
    assert len(kept) == 1
    assert kept[0].read_bytes() == first.stdout.encode()
    assert second.stdout == first.stdout == bare.stdout == fresh.stdout
    assert narrow.stdout != first.stdout  # another width, another entry
    assert len(list((cache / "phoebe" / "help").iterdir())) == 2


def test_a_changed_entry_file_is_what_is_printed(phoebe_process: PhoebeRunner, tmp_path: Path) -> None:
    """Proof that the second run reads the entry (and so skips Typer): edit it, see the edit."""
    cache = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    phoebe_process("--help", env=env)
    (entry,) = (cache / "phoebe" / "help").iterdir()
    entry.write_text("remembered\n")

    assert phoebe_process("--help", env=env).stdout == "remembered\n"
    assert phoebe_process("check", "--help", env=env).stdout.startswith("Usage: phoebe check")
