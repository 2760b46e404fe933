#!/usr/bin/env python3
"""PyTorch side of bench/gpu.cjs: times the same GPU workloads with CUDA events
(median of repeats after warm-up) and prints one JSON object. Float32 matmul
runs with TF32 disabled, so it is the float32 peer of kiln's float32 matmul."""
import json
import sys

import torch
import torch.nn.functional as F


def median_ms(fn, reps=20, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def main():
    spec = json.loads(sys.argv[1])
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    out = {"torch": torch.__version__, "cuda": torch.version.cuda, "card": torch.cuda.get_device_name(0), "results": {}}
    dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    for case in spec:
        name = case["name"]
        kind = case["kind"]
        dt = dtypes[case.get("dtype", "float32")]
        if kind == "copy":
            x = torch.randn(case["n"], device=dev, dtype=dt)
            y = torch.empty_like(x)
            out["results"][name] = median_ms(lambda: y.copy_(x))
        elif kind == "matmul":
            m, k, n = case["mkn"]
            a = torch.randn(m, k, device=dev, dtype=dt)
            b = torch.randn(k, n, device=dev, dtype=dt)
            out["results"][name] = median_ms(lambda: a @ b)
        elif kind in ("attention", "attention_backward"):
            b, h, s, d = case["bhsd"]
            q, k, v = (torch.randn(b, h, s, d, device=dev, dtype=dt, requires_grad=kind == "attention_backward") for _ in range(3))
            causal = case["causal"]
            if kind == "attention":
                out["results"][name] = median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
            else:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                g = torch.randn_like(o)
                out["results"][name] = median_ms(lambda: torch.autograd.grad(o, (q, k, v), g, retain_graph=True))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
