"""The serving benchmark's machinery: wrk drives a real server, results have what the notebook reads."""

import json

from ptdeploy.tools import serving_bench


def test_one_server_one_concurrency(tmp_path):
    name = "production, ONNX Runtime"
    results = serving_bench.run(concurrencies=(2,), seconds=2, only=[name], progress=False)
    entry = results["servers"][name]
    (run,) = entry["runs"]
    assert run["concurrency"] == 2 and run["requests"] > 0 and run["errors"] == 0
    assert 0 < run["p50_ms"] <= run["p99_ms"]
    assert results["raw"]["onnxruntime"]["img_per_s"] > 0
    # efficiency is a ratio only when the baseline is plausible
    assert (entry["efficiency"] is None) == entry["baseline_suspect"]
    assert "efficiency at best concurrency" in serving_bench.table(results)
    saved = json.loads(serving_bench.save(results, tmp_path / "serve.json").read_text())
    assert saved["provenance"]["cores"] == serving_bench.CORES
