#!/usr/bin/python3
"""The PyTorch peer of bench/train-step.ts: the same Llama-style LM (RMSNorm,
RoPE rotate-half, causal multi-head attention, SwiGLU, untied lm head, mean
cross entropy; the parameter shapes of kiln's nn.TransformerLM) written as
idiomatic PyTorch 1.13 modules, timed for one training step (forward +
backward, grads zeroed with set_to_none) on the same token batch.

Run by bench/train-step.ts; alone:
  /usr/bin/python3 bench/train_step_torch.py '{"vocabSize":256,"dim":256,...,"batch":16,"ctx":256,"threads":2,"steps":5}'
Prints one JSON line: {"torch": version, "ms": [per-step ms...], "fwd_ms": [...], "loss0": first loss}.
PyTorch 1.13 has no fused attention (scaled_dot_product_attention came in 2.0),
so attention is the usual masked softmax(q k^T / sqrt(hd)) v.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(seq, hd, theta):
    inv = theta ** (-torch.arange(0, hd // 2, dtype=torch.float64) * 2 / hd)
    ang = torch.arange(seq, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def rope(x, cos, sin):
    hd = x.shape[-1]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["dim"], c["hiddenDim"]
        self.h = c["nHeads"]
        self.attn_norm = RMSNorm(d, c["normEps"])
        self.wq = torch.nn.Linear(d, d, bias=False)
        self.wk = torch.nn.Linear(d, d, bias=False)
        self.wv = torch.nn.Linear(d, d, bias=False)
        self.wo = torch.nn.Linear(d, d, bias=False)
        self.mlp_norm = RMSNorm(d, c["normEps"])
        self.w1 = torch.nn.Linear(d, f, bias=False)
        self.w2 = torch.nn.Linear(f, d, bias=False)
        self.w3 = torch.nn.Linear(d, f, bias=False)

    def forward(self, h, cos, sin, mask):
        b, s, d = h.shape
        hd = d // self.h
        x = self.attn_norm(h)
        q = self.wq(x).view(b, s, self.h, hd).transpose(1, 2)
        k = self.wk(x).view(b, s, self.h, hd).transpose(1, 2)
        v = self.wv(x).view(b, s, self.h, hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(hd))
        o = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1) @ v
        h = h + self.wo(o.transpose(1, 2).reshape(b, s, d))
        x = self.mlp_norm(h)
        return h + self.w2(F.silu(self.w1(x)) * self.w3(x))


class LM(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = torch.nn.Embedding(c["vocabSize"], c["dim"])
        self.blocks = torch.nn.ModuleList([Block(c) for _ in range(c["nLayers"])])
        self.norm = RMSNorm(c["dim"], c["normEps"])
        self.lm_head = torch.nn.Linear(c["dim"], c["vocabSize"], bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)
        hd = c["dim"] // c["nHeads"]
        self.cos, self.sin = rope_tables(c["ctx"], hd, c["ropeTheta"])
        self.mask = torch.triu(torch.ones(c["ctx"], c["ctx"], dtype=torch.bool), diagonal=1)

    def forward(self, tokens, targets):
        h = self.embed(tokens)
        for blk in self.blocks:
            h = blk(h, self.cos, self.sin, self.mask)
        logits = self.lm_head(self.norm(h))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def main():
    c = json.loads(sys.argv[1])
    torch.set_num_threads(c["threads"])
    torch.manual_seed(0)
    model = LM(c)
    b, s, v = c["batch"], c["ctx"], c["vocabSize"]
    data = torch.tensor([(i * 7919) % v for i in range(b * (s + 1))], dtype=torch.long).view(b, s + 1)
    tokens, targets = data[:, :s].contiguous(), data[:, 1:].contiguous()
    ms, fwd_ms, loss0 = [], [], None
    for step in range(c["warmup"] + c["steps"]):
        t0 = time.perf_counter()
        loss = model(tokens, targets)
        t1 = time.perf_counter()
        loss.backward()
        model.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        if loss0 is None:
            loss0 = loss.item()
        if step >= c["warmup"]:
            ms.append((t2 - t0) * 1e3)
            fwd_ms.append((t1 - t0) * 1e3)
    print(json.dumps({"torch": torch.__version__, "blas": blas_libraries(), "ms": ms, "fwd_ms": fwd_ms, "loss0": loss0, "params": sum(p.numel() for p in model.parameters())}))


def blas_libraries():
    """The BLAS shared libraries this process mapped (Debian's torch calls whatever libblas.so.3 points to)."""
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    return sorted(os.path.realpath(p) for p in libs)


if __name__ == "__main__":
    main()
