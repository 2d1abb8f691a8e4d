"""The profiler tutorial's module: what the profiler measures for each version, the trace for notebook 07."""

import json
from pathlib import Path

import pytest
import torch
import torch.autograd.profiler as profiler

from ptdeploy.lessons import profiling

SIDE = 128  # a 16 MiB float64 mask: every effect is visible, each profile takes well under a second
# Invented numbers in the format of data/gpu/profiler_cuda.json: tests the loader without a GPU recording.
FIXTURE = Path(__file__).parent / "fixtures" / "profiler_cuda.fixture.json"


def profile_version(name: str):
    model, input, mask = profiling.make_inputs(profiling.VERSION_BY_NAME[name], "cpu", side=SIDE)
    model(input, mask)  # warm-up
    with profiler.profile(with_stack=True, profile_memory=True) as prof:
        model(input, mask)
    return prof


@pytest.fixture(scope="module")
def profiles():
    return {v.name: profile_version(v.name) for v in profiling.VERSIONS}


def mask_indices_memory(prof) -> int:
    return -profiling.label_event(prof, "MASK INDICES").self_cpu_memory_usage


def test_the_seeded_threshold_selects_part_of_the_mask():
    model, input, mask = profiling.make_inputs(profiling.VERSION_BY_NAME["original"], side=SIDE)
    threshold = model.linear(input).sum(axis=1).mean().item()
    assert 0.1 < threshold < 0.9
    _, idx = model(input, mask)
    assert 0 < idx.shape[0] < mask.numel()


def test_both_labels_are_in_every_profile(profiles):
    for prof in profiles.values():
        for label in profiling.LABELS:
            assert profiling.label_event(prof, label).count == 1


def test_label_event_raises_for_a_missing_label(profiles):
    with pytest.raises(KeyError):
        profiling.label_event(profiles["original"], "NO SUCH LABEL")


def test_label_event_takes_the_cpu_row_when_the_label_is_also_a_gpu_annotation():
    # What key_averages() holds for a label profiled with CUDA activity: a CPU row and a GPU annotation row.
    class Row:
        def __init__(self, device_type):
            self.key, self.device_type = "MASK INDICES", device_type

    class Profile:
        def key_averages(self):
            return [Row(torch.autograd.DeviceType.CUDA), Row(torch.autograd.DeviceType.CPU)]

    assert profiling.label_event(Profile()).device_type == torch.autograd.DeviceType.CPU


def test_the_step_frees_the_host_copy_of_the_mask(profiles):
    # -Self CPU Mem of MASK INDICES is the copy of the mask plus a few bytes of scalars.
    mask_bytes = SIDE**3 * 8
    assert mask_bytes <= mask_indices_memory(profiles["original"]) < mask_bytes + 4096


def test_float32_halves_the_memory_of_the_step(profiles):
    ratio = mask_indices_memory(profiles["float32"]) / mask_indices_memory(profiles["original"])
    assert ratio == pytest.approx(0.5, abs=0.01)


def test_nonzero_removes_both_copies(profiles):
    copies = {name: len(profiling.big_copies(prof)) for name, prof in profiles.items()}
    assert copies == {"original": 2, "float32": 2, "nonzero": 0}
    # What the step still frees is the boolean mask: one byte per element.
    assert SIDE**3 <= mask_indices_memory(profiles["nonzero"]) < SIDE**3 + 4096


def test_the_big_copies_are_the_mask_and_the_indices():
    model, input, mask = profiling.make_inputs(profiling.VERSION_BY_NAME["original"], side=SIDE)
    with profiler.profile(profile_memory=True, record_shapes=True) as prof:
        _, idx = model(input, mask)
    shapes = [e.input_shapes[0] for e in profiling.big_copies(prof)]
    assert shapes == [list(mask.shape), list(idx.shape)]


def test_nonzero_finds_the_same_indices_as_numpy():
    model, input, mask = profiling.make_inputs(profiling.VERSION_BY_NAME["float32"], side=SIDE)
    _, idx_numpy = model(input, mask)
    model, input, mask = profiling.make_inputs(profiling.VERSION_BY_NAME["nonzero"], side=SIDE)
    _, idx_torch = model(input, mask)
    assert torch.equal(idx_numpy, torch.stack(idx_torch, dim=1))


def test_write_cpu_trace_writes_one_valid_trace(tmp_path):
    folder = tmp_path / "new" / "traces"
    path = profiling.write_cpu_trace(folder)
    assert path.parent == folder
    assert path.name.endswith(".pt.trace.json")
    assert [p.name for p in folder.iterdir()] == [path.name]
    trace = json.loads(path.read_text())
    names = {event.get("name") for event in trace["traceEvents"]}
    assert set(profiling.LABELS) <= names
    assert {"ProfilerStep#1", "ProfilerStep#2"} <= names
    assert "aten::nonzero" in names
    # A CPU-only trace: no GPU kernels.
    assert not any(event.get("cat") == "kernel" for event in trace["traceEvents"])


def test_write_cpu_trace_overwrites_its_own_file(tmp_path):
    first = profiling.write_cpu_trace(tmp_path, side=32)
    second = profiling.write_cpu_trace(tmp_path, side=32)
    assert first == second
    assert len(list(tmp_path.iterdir())) == 1


def test_the_fixture_has_the_format_of_a_gpu_recording():
    data = profiling.load_gpu_recording(FIXTURE)
    assert profiling.gpu_run(data, profiling.MASK_SIDE)["versions"]["original"]["big_copies"] == 2


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["provenance"].pop("gpu"), "provenance lacks 'gpu'"),
        (lambda d: d["runs"][0]["versions"].pop("nonzero"), "mask_side 256: versions are not"),
        (
            lambda d: d["runs"][1]["versions"]["float32"].pop("memcpy_ms"),
            "500, float32: memcpy_ms: expected float",
        ),
        (
            lambda d: d["runs"][0]["versions"]["original"].update(memcpy_count=3.0),
            "memcpy_count: expected int",
        ),
        (lambda d: d["runs"][0]["versions"]["original"].update(big_copies=True), "big_copies: expected int"),
        (lambda d: d["runs"].pop(1), "no run with mask_side 500"),
        (lambda d: d["runs"][0].pop("rounds"), "runs[0] lacks an integer mask_side or rounds"),
        (lambda d: d.pop("notebook"), "notebook: no record of whether it ran"),
    ],
)
def test_a_recording_that_breaks_the_format_is_refused(change, problem, tmp_path):
    data = json.loads(FIXTURE.read_text())
    change(data)
    path = tmp_path / "recording.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError) as error:
        profiling.load_gpu_recording(path)
    assert problem in str(error.value)


def test_gpu_run_raises_for_a_side_not_recorded():
    with pytest.raises(KeyError):
        profiling.gpu_run(profiling.load_gpu_recording(FIXTURE), 7)


def test_notebook_06_can_read_the_gpu_recording():
    # tests/unit/test_gpu_data.py checks what the recording shows; this checks the reader notebook 06 uses.
    data = profiling.load_gpu_recording()
    assert [run["mask_side"] for run in data["runs"]] == [profiling.MASK_SIDE, profiling.TUTORIAL_MASK_SIDE]
    for run in data["runs"]:
        assert [run["versions"][v.name]["big_copies"] for v in profiling.VERSIONS] == [2, 2, 0]
