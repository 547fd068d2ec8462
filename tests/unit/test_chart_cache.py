"""The chart cache (repo/charts.py) when several threads or runs store the same package at once:
each gets the complete chart, none sees another's half-unpacked files."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from phoebe_cli.repo.charts import cached_package, chart_cache, store_package, with_version
from tests.support.chartrepo import gzipped_tar

CHART = {
    "web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
    **{f"web/templates/t{i}.yaml": f"kind: ConfigMap\n# {i}\n" for i in range(40)},
    **{f"web/charts/dep{i}/templates/d.yaml": f"# {i}\n" for i in range(20)},
}


def test_the_same_package_stored_by_many_threads_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for round_ in range(6):  # the race needs a few tries to show
        _store_at_once({**CHART, "web/values.yaml": f"round: {round_}\n"})


def _store_at_once(files: dict[str, str]) -> None:
    data = gzipped_tar(files)
    start = threading.Barrier(8)
    results: list[object] = []

    def store() -> None:
        start.wait()
        try:
            results.append(store_package(data))
        except Exception as error:  # noqa: BLE001 - the test reports what any thread raised
            results.append(error)

    threads = [threading.Thread(target=store) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [type(r).__name__ for r in results] == ["ChartFiles"] * 8
    chart = cached_package(results[0].digest)  # type: ignore[attr-defined]
    assert chart is not None and (chart.name, chart.version) == ("web", "1.0.0")
    assert sorted(p.name for p in (chart.path / "templates").iterdir()) == sorted(f"t{i}.yaml" for i in range(40))
    assert len(list((chart.path / "charts").iterdir())) == 20
    # nothing half-written left beside the entries
    assert [p.name for p in chart_cache().iterdir() if p.name.startswith(".staging-")] == []
    # the copy with another version, made by many at once too
    copies: list[object] = []
    threads = [threading.Thread(target=lambda: copies.append(with_version(chart, "1.0.0+abc"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {str(c.path) for c in copies} == {str(copies[0].path)}  # type: ignore[attr-defined]
    assert 'version: "1.0.0+abc"' in (copies[0].path / "Chart.yaml").read_text()  # type: ignore[attr-defined]


def test_a_crashed_runs_half_written_entry_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    data = gzipped_tar(CHART)
    import hashlib

    half = chart_cache() / hashlib.sha256(data).hexdigest() / "web" / "templates"
    half.mkdir(parents=True)
    (half / "stale.yaml").write_text("kind: Secret\n")  # from another package that crashed half-way

    chart = store_package(data)

    assert not (chart.path / "templates" / "stale.yaml").exists()
    assert (chart.path / "templates" / "t0.yaml").read_text() == "kind: ConfigMap\n# 0\n"
