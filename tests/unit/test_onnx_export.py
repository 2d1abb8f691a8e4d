import numpy as np
import onnx
import pytest
import torch

from ptdeploy.lessons import onnx_export as ox
from ptdeploy.lessons.superres import SuperResolutionNet


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SuperResolutionNet(upscale_factor=3).eval()


@pytest.fixture(scope="module")
def example():
    return torch.rand(1, 1, 16, 16)


@pytest.fixture(scope="module")
def legacy_file(model, example, tmp_path_factory):
    return ox.export_torchscript(model, example, tmp_path_factory.mktemp("onnx") / "legacy.onnx")


@pytest.fixture(scope="module")
def dynamo_file(model, example, tmp_path_factory):
    return ox.export_dynamo(model, example, tmp_path_factory.mktemp("onnx") / "dynamo.onnx")


def test_torchscript_export_is_valid_opset_10_with_dynamic_batch(legacy_file):
    proto = ox.check(legacy_file)
    assert ox.opset(proto) == 10
    assert ox.batch_dim(proto) == "batch_size"


@pytest.mark.slow
def test_dynamo_export_is_valid_with_dynamic_batch(dynamo_file):
    proto = ox.check(dynamo_file)
    assert ox.opset(proto) >= 18
    assert ox.batch_dim(proto) == "batch_size"
    assert len(proto.graph.initializer) > 0  # weights inside the one file


@pytest.mark.slow
def test_dynamo_export_keeps_its_log_out_of_stdout(model, example, tmp_path, capsys):
    ox.export_dynamo(model, example, tmp_path / "quiet.onnx")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


@pytest.mark.parametrize("which", ["legacy_file", pytest.param("dynamo_file", marks=pytest.mark.slow)])
@pytest.mark.parametrize("level", list(ox.ORT_LEVELS))
def test_ort_matches_pytorch_at_every_level_and_batch_size(which, level, model, request):
    batch = torch.rand(3, 1, 16, 16).numpy()  # not the exported batch size
    got = ox.ort_runner(ox.session(request.getfixturevalue(which), threads=1, level=level))(batch)
    np.testing.assert_allclose(got, ox.torch_runner(model)(batch), rtol=1e-3, atol=1e-5)


def test_checker_rejects_a_broken_file(legacy_file, tmp_path):
    proto = ox.check(legacy_file)
    proto.graph.node[0].input[0] = "no_such_tensor"
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(proto.SerializeToString())
    with pytest.raises(onnx.checker.ValidationError):
        ox.check(broken)


def test_max_abs_diff():
    assert ox.max_abs_diff(np.array([1.0, 2.0]), np.array([1.5, 1.0])) == 1.0


def test_benchmark_covers_eager_and_every_ort_level(model, example, legacy_file):
    threads_before = torch.get_num_threads()
    rows = ox.benchmark("sr", model, legacy_file, example.numpy(), threads=1, rounds=3, runs=2)
    assert [r.runtime for r in rows] == ["torch eager"] + [f"ORT {level}" for level in ox.ORT_LEVELS]
    assert all(r.model == "sr" and len(r.rounds_ms) == 3 and r.median_ms > 0 for r in rows)
    assert torch.get_num_threads() == threads_before  # restored after timing


def test_a_benchmark_session_sleeps_and_frees_between_runs(legacy_file):
    options = ox.session(legacy_file, threads=1, spinning=False, arena=False).get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert not options.enable_cpu_mem_arena
