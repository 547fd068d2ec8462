# phoebe's tasks. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

venv := justfile_directory() / ".venv"
python := venv / "bin/python"

# List the recipes.
default:
    @just --list

# Run the whole test suite: builds (or reuses) the control plane first, then pytest.
test *args:
    {{python}} -m tests.cluster build --flux --oracles
    {{python}} -m pytest {{args}}

# Only the fast tests that need no cluster.
test-unit *args:
    {{python}} -m pytest tests/unit {{args}}

# ruff (lint + format check) and mypy.
lint:
    {{python}} -m ruff check phoebe_cli tests bench
    {{python}} -m ruff format --check phoebe_cli tests bench
    {{python}} -m mypy

# Format the code.
fmt:
    {{python}} -m ruff format phoebe_cli tests bench
    {{python}} -m ruff check --fix phoebe_cli tests bench

# Real Flux reconciling the sample repository on a local control plane, and phoebe on it (left running).
demo:
    {{python}} -m tests.demo

# Benchmarks: print figures (startup; more as commands land).
bench:
    {{python}} -m bench

# A control plane for a person (left running; --sample, --crds older|none, --flux); prints export KUBECONFIG=...
cluster-up *args:
    {{python}} -m tests.cluster up {{args}}

# Stop what cluster-up started.
cluster-down:
    {{python}} -m tests.cluster down

# Build the documentation site into site/ (use `just docs serve` to preview).
docs action="build":
    {{venv}}/bin/mkdocs {{action}} {{ if action == "build" { "--strict" } else { "" } }}
