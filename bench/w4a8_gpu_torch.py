#!/usr/bin/env python3
"""PyTorch side of bench/w4a8_gpu.cjs (the FireQ benchmark plan, issue 8 item 7):
for each linear shape y [M, N] = x [M, K] @ W^T it times, with CUDA events,
  - bf16:        torch.matmul(x_bf16, W_bf16.t())
  - fp8 tensor:  torch._scaled_mm(x_fp8, W_fp8.t(), per-tensor scales) -> bf16
  - fp8 row:     torch._scaled_mm with row-wise scales (s_a [M, 1], s_w [1, N]) -> bf16
The weights rotate over enough copies that together exceed --rotate-mb (default
64 MB, above the 50 MB L2 of H100/H200), so every call reads its weight from
HBM. Each timing is the median over repeats of (events around `inner` calls) /
inner, after warm-up. M is padded up to 16 for _scaled_mm (cuBLASLt FP8 needs
dimensions that are multiples of 16); the padded M is reported.
Prints one JSON object: {"torch", "cuda", "card", "results": {name: {variant: us | null}}, "errors": {...}}.
"""
import json
import math
import sys

import torch


def median_us(fn, n_calls, reps, warmup=2):
    for i in range(warmup):
        fn(i)
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(n_calls):
            fn(i)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1000.0 / n_calls)
    times.sort()
    return times[len(times) // 2]


def copies_for(bytes_per_copy, rotate_bytes):
    return max(2, math.ceil(rotate_bytes / max(1, bytes_per_copy)) + 1)


def main():
    spec = json.loads(sys.argv[1])
    cases, reps, rotate_bytes = spec["cases"], spec["reps"], spec["rotate_mb"] * (1 << 20)
    torch.backends.cuda.matmul.allow_tf32 = False
    dev = torch.device("cuda")
    out = {"torch": torch.__version__, "cuda": torch.version.cuda, "card": torch.cuda.get_device_name(0),
           "results": {}, "errors": {}}
    fp8 = getattr(torch, "float8_e4m3fn", None)
    gen = torch.Generator(device=dev)
    gen.manual_seed(1)
    for case in cases:
        name, m, n, k = case["name"], case["m"], case["n"], case["k"]
        inner = case["inner"]
        res = {}
        # bf16
        try:
            nw = copies_for(n * k * 2, rotate_bytes)
            w = [torch.randn(n, k, device=dev, dtype=torch.bfloat16, generator=gen) * 0.02 for _ in range(nw)]
            x = torch.randn(m, k, device=dev, dtype=torch.bfloat16, generator=gen)
            res["bf16"] = median_us(lambda i: torch.matmul(x, w[i % nw].t()), inner, reps)
            del w, x
        except Exception as e:  # noqa: BLE001 (report and go on)
            res["bf16"] = None
            out["errors"][f"{name} bf16"] = str(e).split("\n")[0]
        # fp8 via _scaled_mm, per-tensor and row-wise scales
        mp = (m + 15) // 16 * 16
        res["m_fp8"] = mp
        if fp8 is None or not hasattr(torch, "_scaled_mm"):
            res["fp8_tensor"] = res["fp8_row"] = None
            out["errors"][f"{name} fp8"] = "this torch has no float8_e4m3fn / _scaled_mm"
        else:
            try:
                nw = copies_for(n * k, rotate_bytes)
                w = [(torch.randn(n, k, device=dev, generator=gen) * 16).to(fp8) for _ in range(nw)]
                x = (torch.randn(mp, k, device=dev, generator=gen) * 16).to(fp8)
                one = torch.ones((), device=dev, dtype=torch.float32)
                for variant in ("fp8_tensor", "fp8_row"):
                    try:
                        if variant == "fp8_tensor":
                            sa, sw = one, one
                        else:
                            sa = torch.rand(mp, 1, device=dev, generator=gen) + 0.5
                            sw = torch.rand(1, n, device=dev, generator=gen) + 0.5
                        res[variant] = median_us(
                            lambda i: torch._scaled_mm(x, w[i % nw].t(), scale_a=sa, scale_b=sw, out_dtype=torch.bfloat16),
                            inner, reps)
                    except Exception as e:  # noqa: BLE001
                        res[variant] = None
                        out["errors"][f"{name} {variant}"] = str(e).split("\n")[0]
                del w, x
            except Exception as e:  # noqa: BLE001
                res["fp8_tensor"] = res["fp8_row"] = None
                out["errors"][f"{name} fp8"] = str(e).split("\n")[0]
        torch.cuda.empty_cache()
        out["results"][name] = res
    print(json.dumps(out))


if __name__ == "__main__":
    main()
