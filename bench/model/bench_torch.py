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
    python3 bench_torch.py --check                     # compiled vs eager numerics

PyTorch runs with its default threading (as users run it); run.sh adds an
OMP_WAIT_POLICY=PASSIVE row, labelled `--variant passive`, never used as the ratio's anchor.

`--compile` binds the model's tensors once (`AmFlowModule`: the trainable tensors as registered
parameters, the HF backbone as a submodule, the spec's own `forward` inside) and compiles, with
inductor's default mode and `dynamic=False`, the forward (infer) or the forward and the loss
(train; AOTAutograd compiles its backward, AdamW stays eager, as in the eager case: compiling
its step took 400 s for 10 ms per step). Without `--compile` the spec implementation runs
eagerly as it always has. `--check` compares the compiled model with the eager one.

prints one JSON line: the median and all times in seconds and the peak RSS (VmHWM) in bytes;
with `--compile` also the warm-up times (the first call compiles; never in the times),
dynamo's graphs, frames and graph breaks during the warm-up, the same after it (0 when
nothing recompiled) and inductor's cache hits and misses.
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


class AmFlowModule(torch.nn.Module):
    """The spec implementation's model with its tensors bound once, for `torch.compile`.

    The trainable tensors of `params` (a spec `Params` whose tensors exist already) become
    registered parameters, under their checkpoint names with `.` spelled `__`; the HF backbone
    is a submodule. `forward` runs the spec's own `forward` (the same functions, the same
    math), with a `Params` whose `get` returns the bound parameter instead of drawing one: no
    dictionary of tensors keyed by strings for dynamo to guard on, no lazy creation inside the
    compiled region, and only the logits leave the graph (the spec's other outputs, such as
    every block's attention logits, are dead code there).
    """

    def __init__(self, m, hf, params, temporal, frames):
        super().__init__()
        self.hf = hf
        self.names = list(params.t)
        for k, t in params.t.items():
            self.register_parameter(k.replace(".", "__"), torch.nn.Parameter(t.detach().clone()))
        self._spec = m
        self._temporal = list(temporal)
        self._frames = frames
        module = self

        class Bound(m.Params):
            def __init__(self):
                pass  # no generator, no dictionary: the tensors are the module's parameters

            def get(self, name, shape, kind="w"):
                t = getattr(module, name.replace(".", "__"))
                assert tuple(t.shape) == tuple(shape), (name, t.shape, shape)
                return t

        self._bound = Bound()

    def by_name(self):
        """(checkpoint name, parameter) of the trainable tensors, in the spec's creation order."""
        return [(k, getattr(self, k.replace(".", "__"))) for k in self.names]

    def forward(self, clip):
        out = self._spec.forward(self.hf, self._bound, clip, "aligned", "transformer",
                                 self._temporal, self._frames)
        return out["logits"]


def make_params(m, hf, p, dev, temporal):
    """Creates the spec's trainable tensors in `p` (lazily, in the order the eager forward
    draws them) with one eager forward of a small clip: the values depend only on that order
    and the shapes, which a 2-frame clip of the benchmark's image size already fixes."""
    clip = torch.zeros(1, 2, 3, IMAGE, IMAGE, device=dev)
    with torch.no_grad():
        m.forward(hf, p, clip, "aligned", "transformer", temporal, FRAMES)


def adamw(named):
    decay = [t for k, t in named if t.dim() >= 2 and not k.endswith("pos_embed")]
    rest = [t for k, t in named if not (t.dim() >= 2 and not k.endswith("pos_embed"))]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                              {"params": rest, "weight_decay": 0.0}], lr=1e-4)


def dynamo_counts():
    """Graphs compiled, frames dynamo converted (a recompile is one more), graph breaks, and
    inductor's on-disk cache hits and misses (a hit makes the compile much shorter)."""
    from torch._dynamo.utils import counters
    return {"graphs": counters["stats"]["unique_graphs"], "frames": counters["frames"]["total"],
            "graph_breaks": sum(counters["graph_break"].values()),
            "cache_hits": counters["inductor"]["fxgraph_cache_hit"],
            "cache_misses": counters["inductor"]["fxgraph_cache_miss"]}


def loss_of(logits, labels):
    return F.cross_entropy(logits, labels, label_smoothing=0.1)


def compile_fns(a, m, hf, p, temporal, dev):
    """The model bound as an `AmFlowModule` and its compiled entry points: `forward(clip)` (the
    logits, for inference) and `loss(clip, labels)` (the forward and the label-smoothed cross
    entropy in one graph, whose backward AOTAutograd compiles with it). `dynamic=False`: the
    clip's shape is fixed, so a recompile would be a bug, never a dynamic-shape graph."""
    make_params(m, hf, p, dev, temporal)
    model = AmFlowModule(m, hf, p, temporal, FRAMES).to(dev)

    def forward(clip):
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            out = model(clip)
        return out.float()

    def loss(clip, labels):
        return loss_of(forward(clip), labels)

    opts = dict(backend="inductor", mode=a.compile_mode, dynamic=False)
    return model, torch.compile(forward, **opts), torch.compile(loss, **opts)


def compiled_case(a, m, hf, p, clip, labels, temporal, dev, sync):
    """`--compile`: the timed step of the case with the compiled model; the warm-up (which
    compiles) is timed apart and reported with dynamo's counts, before and after it."""
    model, forward, loss = compile_fns(a, m, hf, p, temporal, dev)
    if a.case == "infer":
        model.requires_grad_(False)

        def step():
            with torch.no_grad():
                forward(clip)
    else:
        opt = adamw(model.by_name())

        def step():
            l = loss(clip, labels)
            opt.zero_grad(set_to_none=True)
            l.backward()
            opt.step()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = dynamo_counts()
    warm = []
    for _ in range(a.warmup):
        t0 = time.perf_counter()
        step()
        sync()
        warm.append(time.perf_counter() - t0)
    warmed = dynamo_counts()
    times = timed(step, a.reps, 0, sync)
    end = dynamo_counts()
    return times, {
        "compile_mode": a.compile_mode,
        "compiled": "forward" if a.case == "infer" else "forward+loss (+ its backward); AdamW eager",
        "warmup_s": warm,
        "compile_graphs": warmed["graphs"] - start["graphs"],
        "compile_frames": warmed["frames"] - start["frames"],
        "graph_breaks": warmed["graph_breaks"] - start["graph_breaks"],
        "recompiles_after_warmup": end["frames"] - warmed["frames"],
        "graphs_after_warmup": end["graphs"] - warmed["graphs"],
        "graph_breaks_after_warmup": end["graph_breaks"] - warmed["graph_breaks"],
        "inductor_cache_hits": warmed["cache_hits"] - start["cache_hits"],
        "inductor_cache_misses": warmed["cache_misses"] - start["cache_misses"],
    }


def check(a, m, hf, p, clip, labels, temporal, dev):
    """`--check`: the compiled model against the eager spec implementation, same tensors and
    clip: the logits (no gradients), the loss and, after its backward, every trainable
    tensor's gradient; each difference relative to the largest magnitude of the eager value (of
    the logits, of that gradient).

    Float32 alone moves some gradients a lot: the aligning encoders' outputs enter as frame
    differences `|x_t - x_t+1|`, whose sign, where they are near 0, decides the sign of a whole
    row of their gradient, and the attention keys' biases (softmax ignores them) and the
    aligning encoders' `fc2.bias` (a difference cancels it) have gradients zero up to rounding.
    So the yardstick of each gradient is also eager's own change when the clip moves by about
    one float32 rounding (`PERTURB` draws, x(1 + 2^-23 noise)): a tensor passes when the
    compiled difference is within `tol_grad` of its max, or within 10x that change. Returns the
    exit status: 1 on a mismatch, a recompile or a graph break."""
    tol_logits, tol_grad, perturb = 1e-4, 1e-4, 2
    model, forward, loss = compile_fns(a, m, hf, p, temporal, dev)
    g = torch.Generator().manual_seed(2)
    nudged = [clip * (1 + 2.0 ** -23 * torch.randn(clip.shape, generator=g, device="cpu").to(dev))
              for _ in range(perturb)]

    def spec(c):
        return m.forward(hf, p, c, "aligned", "transformer", temporal, FRAMES)["logits"]

    def rel(x, y, scale):
        return ((x - y).abs().max() / scale).item()

    ok = True
    c0 = dynamo_counts()
    with torch.no_grad():
        ref = spec(clip)
        floor = max(rel(spec(c), ref, ref.abs().max()) for c in nudged)
        t0 = time.perf_counter()
        got = forward(clip)
        t_fwd = time.perf_counter() - t0
        same = torch.equal(forward(clip), got)
    d = rel(got, ref, ref.abs().max())
    ok &= d <= tol_logits and same
    print(f"logits {tuple(ref.shape)}, max |eager| {ref.abs().max().item():.3e}: max |compiled - eager| "
          f"/ max |eager| = {d:.3e} (tolerance {tol_logits:g}; eager's own change for a clip moved by "
          f"a rounding: {floor:.1e}); a second compiled call equal to the first: {same}; "
          f"compile + first call {t_fwd:.1f} s")

    for t in p.t.values():
        t.requires_grad_(True)

    def eager_grads(c):
        for t in p.t.values():
            t.grad = None
        l = loss_of(spec(c), labels)
        l.backward()
        return l.item(), {k: t.grad.clone() for k, t in p.t.items()}

    noise = {}
    for c in nudged:
        _, gr = eager_grads(c)
        for k, v in gr.items():
            noise.setdefault(k, []).append(v)
    ref_loss, ref_grads = eager_grads(clip)
    t0 = time.perf_counter()
    got_loss = loss(clip, labels)
    got_loss.backward()
    t_train = time.perf_counter() - t0
    dl = abs(got_loss.item() - ref_loss) / abs(ref_loss)
    ok &= dl <= tol_logits
    print(f"loss: eager {ref_loss:.7f}, compiled {got_loss.item():.7f}, relative {dl:.3e}; "
          f"compile + first forward and backward {t_train:.1f} s")
    shown = ["blocks.0.attn_adapter.down.weight", "blocks.0.attn_adapter.up.weight",
             "blocks.0.aligning_encoder.proj.weight", "blocks.0.aligning_encoder.layers.0.mlp.fc2.weight",
             f"blocks.{DEPTH - 1}.mlp_temporal.tpm.layers.0.attn.q.weight",
             f"blocks.{DEPTH - 1}.mlp_adapter.scale", f"blocks.{DEPTH - 1}.mlp_temporal.head.weight",
             "final_head.weight"]
    strict, by_floor, bad = [], [], []
    for k, t in model.by_name():
        r = ref_grads[k]
        scale = r.abs().max()
        diff = rel(t.grad, r, scale)
        own = max(rel(v, r, scale) for v in noise[k])
        if diff <= tol_grad:
            strict.append((diff, k))
        elif diff <= 10 * own:
            by_floor.append((diff, k, own))
        else:
            bad.append(k)
        if k in shown or k in bad:
            print(f"grad {k} {tuple(r.shape)}, max |eager| {scale.item():.2e}: max |compiled - eager| / "
                  f"max |eager| = {diff:.3e}; eager's own change {own:.1e}"
                  f"{'' if diff <= tol_grad else ' (within 10x it)' if k not in bad else '  MISMATCH'}")
    ok &= not bad
    print(f"grads of {len(model.names)} tensors: {len(strict)} within {tol_grad:g} (worst "
          f"{max(strict)[1]}: {max(strict)[0]:.3e}), {len(by_floor)} within 10x eager's own change "
          f"for a clip moved by a rounding", end="")
    if by_floor:
        diff, k, own = max(by_floor)
        aligning = sum(".aligning_encoder." in k for _, k, _ in by_floor)
        print(f" ({aligning} of the aligning encoders; the largest difference {k}: {diff:.3e}, "
              f"eager's own change {own:.1e})", end="")
    print(f"; mismatches: {bad or 'none'}")
    c1 = dynamo_counts()
    frames, breaks = c1["frames"] - c0["frames"], c1["graph_breaks"] - c0["graph_breaks"]
    print(f"dynamo: {c1['graphs'] - c0['graphs']} graphs, {frames} frames compiled (2 expected: the "
          f"forward, the loss), {breaks} graph breaks")
    ok &= frames == 2 and breaks == 0
    print("check", "ok" if ok else "FAILED")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=["infer", "train", "sgemm"],
                    help="required, except with --check")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--model", choices=sorted(MODELS), default="s14")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (the frozen backbone's products)")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile (inductor) of the model bound as an nn.Module: the forward "
                    "(infer) or the forward and the loss (train, whose backward is compiled with it); the "
                    "warm-up compiles and is not timed")
    ap.add_argument("--compile-mode", default="default",
                    help="torch.compile mode with --compile (default, reduce-overhead, max-autotune, ...)")
    ap.add_argument("--check", action="store_true",
                    help="compare the compiled model with the eager spec implementation (logits, then "
                    "the gradients of the trainable tensors) at batch --batch, --check-frames frames; "
                    "prints the max differences, exits 1 on a mismatch")
    ap.add_argument("--check-frames", type=int, default=FRAMES, help="frames of the --check clip")
    ap.add_argument("--check-depth", type=int, default=1,
                    help="backbone blocks of the --check model (all of them with AM flow and TPMs; every "
                    "block is the same code, and compiling 12 takes minutes)")
    ap.add_argument("--variant", default=None,
                    help="label of this anchor in the results (default: eager, compile or bf16)")
    a = ap.parse_args()
    if a.case is None and not a.check:
        ap.error("--case is required")
    if a.check and a.case == "sgemm":
        ap.error("--check compares the model")
    if a.compile and a.warmup < 1:
        ap.error("--compile needs --warmup >= 1: the first call compiles")
    extra = {}
    torch.set_num_threads(a.threads)
    global WIDTH, DEPTH, HEADS
    WIDTH, DEPTH, HEADS = MODELS[a.model]
    if a.check:
        DEPTH = a.check_depth
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
        frames = a.check_frames if a.check else FRAMES
        clip = torch.randn(a.batch, frames, 3, IMAGE, IMAGE, generator=g, device="cpu").to(dev)
        labels = (torch.arange(a.batch, device="cpu") % CLASSES).to(dev)
        temporal = list(range(DEPTH))

        def eager_forward():
            with autocast:
                out = m.forward(hf, p, clip, "aligned", "transformer", temporal, FRAMES)["logits"]
            return out.float()

        flop = None
        if a.check:
            raise SystemExit(check(a, m, hf, p, clip, labels, temporal, dev))
        if a.compile:
            times, extra = compiled_case(a, m, hf, p, clip, labels, temporal, dev, sync)
        else:
            forward = eager_forward

            with torch.no_grad():
                forward()  # creates the trainable tensors
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
        **extra,
    }))


if __name__ == "__main__":
    main()
