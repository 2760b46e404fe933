#!/usr/bin/python3
"""The PyTorch peer of bench/int4kv.ts: one decode step of grouped-query
attention (1 query per head) over a float32 KV cache of L tokens, written the
PyTorch 1.13 way (it has no scaled_dot_product_attention): q [Hkv, rep, hd]
@ k^T [Hkv, hd, L] -> softmax -> @ v [Hkv, L, hd]. Weights of the cache are
rotated over copies totalling more than rotate_mb, like the kiln engines.

Run by bench/int4kv.ts; alone:
  /usr/bin/python3 bench/int4kv_torch.py '{"cases":[{"L":4096,"hq":32,"hkv":8,"hd":128,"reps":50}],"threads":2,"rotate_mb":160}'
Prints one JSON line: {"torch": version, "us": {"<L>": median microseconds}}.
"""
import json
import math
import sys
import time

import torch


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    out = {}
    with torch.no_grad():
        for c in spec["cases"]:
            L, hq, hkv, hd = c["L"], c["hq"], c["hkv"], c["hd"]
            rep = hq // hkv
            per = 2 * hkv * L * hd * 4
            copies = max(2, math.ceil(spec["rotate_mb"] * 2**20 / per))
            caches = [(torch.randn(hkv, L, hd), torch.randn(hkv, L, hd)) for _ in range(copies)]
            q = torch.randn(hkv, rep, hd)
            scale = 1.0 / math.sqrt(hd)

            def step(i):
                k, v = caches[i % copies]
                p = torch.softmax(torch.matmul(q, k.transpose(1, 2)) * scale, dim=-1)
                return torch.matmul(p, v)

            step(0)
            step(1)
            times = []
            for i in range(c["reps"]):
                t0 = time.perf_counter()
                step(i)
                times.append(time.perf_counter() - t0)
            times.sort()
            out[str(L)] = times[len(times) // 2] * 1e6
    print(json.dumps({"torch": torch.__version__, "us": out}))


if __name__ == "__main__":
    main()
