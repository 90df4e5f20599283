"""The inference figure's GPU points: section gpu's CUDA rows, or the note "GPU: not measured"."""

from __future__ import annotations

import json

from benchmark.report.figures import gpu_timings, inference_figure, write_inference_figure
from benchmark.report.published import published_inference

CPU_ROWS = [
    {"what": "extracted tanh policy, single-state actions (cpu)", "s_per_1000_actions": 0.04},
    {"what": "diffusion sampler, 25 steps, single-state (cpu)", "s_per_1000_actions": 90.0},
]
GPU_ROWS = [
    {"section": "gpu", "what": "machine", "device": "cuda", "gpu": "NVIDIA H200"},
    {"what": "extracted tanh policy, single-state actions (cuda)", "device": "cuda",
     "s_per_1000_actions": 0.08},
    {"what": "diffusion sampler, 25 steps, single-state (cuda)", "device": "cuda",
     "s_per_1000_actions": 3.0},
    # a --device cpu --tiny run of the section: not a GPU point
    {"what": "extracted tanh policy, single-state actions (cpu)", "device": "cpu",
     "s_per_1000_actions": 0.04},
]  # fmt: skip


def _texts(fig) -> list[str]:
    ax = fig.axes[0]
    return [t.get_text() for t in ax.texts]


def test_only_cuda_rows_are_gpu_points(tmp_path):
    path = tmp_path / "gpu.json"
    assert gpu_timings(path) == [] and gpu_timings(None) == []
    path.write_text(json.dumps({"machine": {}, "rows": GPU_ROWS}))
    labels = [label for label, _ in gpu_timings(path)]
    assert labels == [GPU_ROWS[1]["what"], GPU_ROWS[2]["what"]]
    path.write_text("{not json")
    assert gpu_timings(path) == []


def test_gpu_points_drawn_beside_cpu_points_or_the_note():
    cpu = [(r["what"], r["s_per_1000_actions"]) for r in CPU_ROWS]
    gpu = [(r["what"], r["s_per_1000_actions"]) for r in GPU_ROWS[1:3]]
    without = inference_figure(cpu, (0.5, True), published_inference(), "demo")
    assert "GPU: not measured" in _texts(without)
    with_gpu = inference_figure(cpu, (0.5, True), published_inference(), "demo", gpu)
    texts = _texts(with_gpu)
    assert "GPU: not measured" not in texts
    assert {"ours GPU: policy", "ours GPU: sampler 25", "ours: policy"} <= set(texts)
    # one scatter per GPU point, drawn as a triangle
    assert len(with_gpu.axes[0].collections) == len(without.axes[0].collections) + 2


def test_written_figure_reads_the_gpu_file(tmp_path):
    """No DRCORL records (score unknown): GPU timings become labelled dashed lines."""
    bench, gpu = tmp_path / "drcorl.json", tmp_path / "gpu.json"
    bench.write_text(json.dumps({"rows": CPU_ROWS}))
    gpu.write_text(json.dumps({"rows": GPU_ROWS}))
    paths = write_inference_figure(bench, [], "golden", tmp_path / "out", gpu)
    assert [p.name for p in paths] == ["inference.pdf", "inference.png"]
    cpu = [(r["what"], r["s_per_1000_actions"]) for r in CPU_ROWS]
    fig = inference_figure(cpu, None, published_inference(), "golden", gpu_timings(gpu))
    dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
    assert len(dashed) == 2 and "GPU: not measured" not in _texts(fig)
