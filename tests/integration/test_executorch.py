"""ExecuTorch programs (chapter 05, today's way): export, load, agree with eager; the Pi script runs one.

A small convolutional network stands in for Lite0 (same input and output shapes): exporting it takes
seconds, Lite0 about a minute. The chapter exports and checks Lite0 itself.
"""

import subprocess
import sys

import pytest
import torch
from torch import nn

from ptdeploy.lessons import executorch_export
from ptdeploy.paths import REPO_ROOT


def tiny_classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ReLU6(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU6(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),
        nn.Linear(16, 1000),
    ).eval()


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pte")
    model = tiny_classifier()
    images = [torch.randn(1, 3, 224, 224) for _ in range(4)]
    fp32 = executorch_export.export_fp32(model, images[0], folder / "fp32.pte")
    int8 = executorch_export.export_int8(model, images, folder / "int8.pte", keep_float=())
    return model, folder, fp32, int8


def test_an_fp32_program_loads_and_agrees_with_eager(programs):
    model, folder, _, _ = programs
    x = torch.randn(1, 3, 224, 224)
    forward = executorch_export.load(folder / "fp32.pte")
    with torch.no_grad():
        assert torch.allclose(forward(x), model(x), atol=1e-4)


def test_an_int8_program_runs_and_stays_near_eager(programs):
    model, folder, _, _ = programs
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = model(x)
    got = executorch_export.load(folder / "int8.pte")(x)
    assert got.shape == (1, 1000)
    assert (got - expected).abs().max() < 0.1 * expected.abs().max() + 0.05


def test_the_relu6_after_each_conv_is_quantized_with_it_and_everything_goes_to_xnnpack(programs):
    _, _, fp32, int8 = programs
    for lowered in (fp32, int8):
        partitions, inside, outside = executorch_export.delegation(lowered)
        assert partitions == 1 and sum(inside.values()) > 0 and not outside
        assert executorch_export.delegation_summary(partitions, inside, outside).startswith("1 XNNPACK")


def test_a_channels_last_input_gives_the_same_answer(programs):
    _, folder, _, _ = programs
    forward = executorch_export.load(folder / "fp32.pte")
    x = torch.randn(1, 3, 224, 224)
    assert torch.equal(forward(x), forward(x.to(memory_format=torch.channels_last)))


def test_missing_and_corrupt_programs_name_the_file(tmp_path, programs):
    _, folder, _, _ = programs
    with pytest.raises(FileNotFoundError, match="missing.pte"):
        executorch_export.load(tmp_path / "missing.pte")
    corrupt = tmp_path / "corrupt.pte"
    corrupt.write_bytes(b"not a program" * 100)
    with pytest.raises(executorch_export.ProgramError, match="corrupt.pte"):
        executorch_export.load(corrupt)
    truncated = tmp_path / "truncated.pte"
    truncated.write_bytes((folder / "fp32.pte").read_bytes()[:1000])
    with pytest.raises(executorch_export.ProgramError, match="truncated.pte"):
        executorch_export.load(truncated)
    with pytest.raises(executorch_export.ProgramError, match=r"\(2, 3, 224, 224\)"):
        executorch_export.load(folder / "fp32.pte")(torch.zeros(2, 3, 224, 224))


def test_the_cache_key_follows_kind_and_rejects_unknown_kinds(tmp_path):
    fp32, int8 = (executorch_export.program_path(kind, folder=tmp_path) for kind in ("fp32", "int8"))
    assert (
        fp32 != int8
        and fp32.suffix == ".pte"
        and fp32 == executorch_export.program_path("fp32", folder=tmp_path)
    )
    with pytest.raises(ValueError, match="fp16"):
        executorch_export.program_path("fp16")


def run_script(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "scripts/rpi_infer.py", "--runtime", "executorch", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_the_pi_script_runs_a_few_frames_from_a_program(programs):
    _, folder, _, _ = programs
    result = run_script("--pte", str(folder / "fp32.pte"), "--source", "synthetic", "--frames", "5")
    assert result.returncode == 0, result.stderr
    assert "fp32.pte, XNNPACK" in result.stdout and "5 frames in" in result.stdout
    assert "deprecated" not in result.stdout  # the note is about the tutorial's tools, not used here


def test_the_pi_script_names_a_missing_program(tmp_path):
    result = run_script("--pte", str(tmp_path / "nowhere.pte"), "--frames", "1")
    assert result.returncode == 2
    assert "nowhere.pte" in result.stderr and "Traceback" not in result.stderr


def test_pte_needs_the_executorch_runtime():
    from ptdeploy.lessons import realtime

    with pytest.raises(SystemExit):
        realtime.parse_args(["--pte", "model.pte"])


def test_xnnpack_threads_are_set_before_the_first_program_is_loaded(programs):
    _, folder, _, _ = programs
    executorch_export.load(folder / "fp32.pte")
    current = executorch_export.threads()
    executorch_export.set_threads(current)  # the same size: nothing to do
    with pytest.raises(RuntimeError, match="before loading"):
        executorch_export.set_threads(current + 1)


def test_an_export_leaves_no_lowered_program_alive(tmp_path, programs):
    """What an export leaves in process-wide caches (ExecuTorch's memoized node comparison, the fake
    tensor dispatch cache) keeps its lowered XNNPACK modules, graphs and weights, alive until cleared.
    (The module's other programs, held by the fixture, stay.)"""
    import gc
    import weakref

    from executorch.exir.lowered_backend_module import LoweredBackendModule

    def lowered_modules() -> dict[int, weakref.ref]:
        gc.collect()
        return {id(o): weakref.ref(o) for o in gc.get_objects() if isinstance(o, LoweredBackendModule)}

    before = lowered_modules()
    executorch_export.export_fp32(tiny_classifier(), torch.zeros(1, 3, 224, 224), tmp_path / "x.pte")
    left = [ref for key, ref in lowered_modules().items() if key not in before]
    assert left and all(ref() is not None for ref in left)  # held by the caches alone
    executorch_export._forget_export()
    assert all(ref() is None for ref in left)
