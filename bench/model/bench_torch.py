#!/usr/bin/env python3
"""PyTorch side of the model benchmark (bench/model/README.md): the AM Flow model of the
benchmark's configuration, eager PyTorch, on the CPU.

The model is the independent PyTorch implementation of the model spec that produces amflow's
test fixtures (crates/amflow/tests/fixtures/make_amflow_fixtures.py), imported as it is and
sized here through its module constants: a random `transformers` Dinov2Model (ViT-S/14, native
518², position embedding resized to 224² by `transformers`), AM/12 aligned AM flow
(d_align 192, 12 linear-attention heads, 1 layer), transformer TPMs (1 layer, 4 heads),
bottleneck 96, 400 classes, 8 frames.

One case per process, so that the peak RSS is the case's own:

    python3 bench_torch.py --case infer --batch 1 --reps 5 --warmup 1
    python3 bench_torch.py --case train --batch 4
    python3 bench_torch.py --case infer --compile      # torch.compile (inductor)
    python3 bench_torch.py --case infer --bf16         # bf16 autocast
    python3 bench_torch.py --case sgemm

PyTorch runs with its default threading (as users run it); run.sh adds an
OMP_WAIT_POLICY=PASSIVE row, labelled `--variant passive`, never used as the ratio's anchor.

prints one JSON line: the median and all times in seconds and the peak RSS (VmHWM) in bytes.
"""
import argparse
import importlib.util
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = os.path.join(HERE, "..", "..", "crates", "amflow", "tests", "fixtures", "make_amflow_fixtures.py")

FRAMES, IMAGE, CLASSES = 8, 224, 400
WIDTH, DEPTH, HEADS = 384, 12, 6
SGEMM_N = 2048
# `--model`: the backbone sizes of amflow's presets (`s14`: dinov2-s14-am12-transformer, the
# CPU benchmark's; `b14`: dinov2-b14-am12-transformer, the GPU run's, bench/gpu).
MODELS = {"s14": (384, 12, 6), "b14": (768, 12, 12)}


def load_spec():
    """The fixture generator as a module, resized to the benchmark's configuration."""
    spec = importlib.util.spec_from_file_location("amflow_spec", SPEC)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    m.D, m.HEADS, m.LAYERS = WIDTH, HEADS, DEPTH
    m.R, m.C = WIDTH // 4, CLASSES
    m.ALIGN_DIM, m.ALIGN_HEADS, m.TPM_HEADS = 192, 12, 4
    m.N = 1 + (IMAGE // 14) ** 2
    return m


def backbone():
    from transformers import Dinov2Config, Dinov2Model

    cfg = Dinov2Config(hidden_size=WIDTH, num_hidden_layers=DEPTH, num_attention_heads=HEADS,
                       mlp_ratio=4, patch_size=14, image_size=518, layerscale_value=1.0,
                       layer_norm_eps=1e-6, hidden_act="gelu")
    torch.manual_seed(0)
    hf = Dinov2Model(cfg).eval()
    hf.requires_grad_(False)
    return hf


def peak_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def timed(fn, reps, warmup, sync=lambda: None):
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=["infer", "train", "sgemm"], required=True)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--model", choices=sorted(MODELS), default="s14")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (the frozen backbone's products)")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile (inductor) of the forward pass; the warm-up compiles")
    ap.add_argument("--variant", default=None,
                    help="label of this anchor in the results (default: eager, compile or bf16)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    global WIDTH, DEPTH, HEADS
    WIDTH, DEPTH, HEADS = MODELS[a.model]
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    autocast = torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.bf16)

    if a.case == "sgemm":
        x = torch.randn(SGEMM_N, SGEMM_N, device=dev)
        y = torch.randn(SGEMM_N, SGEMM_N, device=dev)
        times = timed(lambda: torch.mm(x, y), a.reps, a.warmup, sync)
        flop = 2 * SGEMM_N ** 3
    else:
        m = load_spec()
        hf = backbone().to(dev)
        if cuda:
            # Tensors the spec implementation makes inside its forward go to the GPU; the
            # trainable ones are drawn on the CPU (the same values as the fixtures) and moved.
            torch.set_default_device(dev)

        class DevParams(m.Params):
            def get(self, name, shape, kind="w"):
                if name not in self.t:
                    with torch.device("cpu"):
                        m.Params.get(self, name, shape, kind)
                    self.t[name] = self.t[name].to(dev)
                return self.t[name]

        p = DevParams(0)
        g = torch.Generator().manual_seed(1)
        clip = torch.randn(a.batch, FRAMES, 3, IMAGE, IMAGE, generator=g, device="cpu").to(dev)
        labels = (torch.arange(a.batch, device="cpu") % CLASSES).to(dev)
        temporal = list(range(DEPTH))

        def eager_forward():
            with autocast:
                out = m.forward(hf, p, clip, "aligned", "transformer", temporal, FRAMES)["logits"]
            return out.float()

        forward = torch.compile(eager_forward) if a.compile else eager_forward

        with torch.no_grad():
            forward()  # creates the trainable tensors
        flop = None
        if a.case == "infer":
            def step():
                with torch.no_grad():
                    forward()
        else:
            for t in p.t.values():
                t.requires_grad_(True)
            decay = [t for k, t in p.t.items() if t.dim() >= 2 and not k.endswith("pos_embed")]
            rest = [t for k, t in p.t.items() if not (t.dim() >= 2 and not k.endswith("pos_embed"))]
            opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                                     {"params": rest, "weight_decay": 0.0}], lr=1e-4)

            def step():
                loss = F.cross_entropy(forward(), labels, label_smoothing=0.1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        times = timed(step, a.reps, a.warmup, sync)
    variant = a.variant or ("compile" if a.compile else "bf16" if a.bf16 else "eager")
    print(json.dumps({
        "side": "pytorch", "variant": variant, "case": a.case, "batch": a.batch,
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "median_s": statistics.median(times), "times_s": times, "flop": flop,
        "peak_rss_bytes": peak_rss(), "version": torch.__version__, "device": a.device,
        "model": a.model, "precision": "bf16" if a.bf16 else "f32",
        "peak_device_bytes": torch.cuda.max_memory_allocated() if cuda else None,
    }))


if __name__ == "__main__":
    main()
