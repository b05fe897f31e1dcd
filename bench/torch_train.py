"""PyTorch baseline of training throughput (issue 6): tokens/s of nanoGPT's
model trained with AdamW in float32, for comparison with `losscape train`
on the same config, batch and steps. Prints one JSON object.

Usage (with a Python that can `import torch`):
  python3 bench/torch_train.py (--config FILE | --model DIR) --batch B [--block T]
      [--steps N] [--untimed-steps K] [--tokens FILE] [--lr LR] [--warmup W]
      [--weight-decay WD] [--beta1 B1] [--beta2 B2] [--grad-clip G] [--seed S]
      [--device auto|cpu|cuda[:i]] [--threads N]
--config starts from GPT-2 initialisation (as nanoGPT and losscape do),
--model from a model directory's weights. Mini-batches are B rows of a
tokens file ([M, T+1], rows drawn with a seeded generator) or, without
--tokens, seeded uniform random ids (throughput does not depend on the
data). Each step: forward, backward, gradient-norm clipping, AdamW (weight
decay on the tensors of two or more dimensions, as nanoGPT), learning rate
with linear warm-up then cosine decay to lr/10. The first K steps warm up
untimed; tokens/s = N * B * T / time of the next N steps. Losses are read
back once at the end (no device sync per step).
Exit status: 2 for bad input, 1 for other failures.
"""
import argparse
import json
import math
import sys
import time

import torch

from nanogpt_torch import (
    InputError, describe_device, forward, json_number, load_model, load_tokens, param_shapes, pick_device,
    read_config, setup_torch, sync,
)


def gpt2_init(cfg, generator):
    """nanoGPT's _init_weights: N(0, 0.02) for Linear/Embedding, c_proj.weight N(0, 0.02/sqrt(2L)), biases 0, LN weight 1."""
    params = {}
    for name, shape in param_shapes(cfg):
        if len(shape) == 1:
            params[name] = torch.ones(shape) if name.endswith(".weight") else torch.zeros(shape)
        else:
            std = 0.02 / math.sqrt(2 * cfg["n_layer"]) if name.endswith("c_proj.weight") else 0.02
            params[name] = torch.randn(shape, generator=generator) * std
    return params


def lr_at(step, total, lr, warmup):
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return lr / 10 + (lr - lr / 10) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="config.json (GPT-2 initialisation)")
    src.add_argument("--model", help="model directory: config.json + model.safetensors")
    ap.add_argument("--batch", type=int, required=True, help="sequences per step")
    ap.add_argument("--block", type=int, help="tokens per sequence (default: block_size, or the tokens file's T)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    ap.add_argument("--untimed-steps", type=int, default=3, help="warm-up steps before timing (default 3)")
    ap.add_argument("--tokens", help="tokens file [M, T+1] to draw mini-batches from")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=0, help="learning-rate warm-up steps")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (0: no clipping)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:i")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    args = ap.parse_args(argv)
    for flag in ("batch", "steps"):
        if getattr(args, flag) < 1:
            raise InputError(f"--{flag} must be a positive integer, got {getattr(args, flag)}")
    if args.untimed_steps < 0:
        raise InputError(f"--untimed-steps must be >= 0, got {args.untimed_steps}")

    device = pick_device(args.device)
    setup_torch(device, args.threads)
    generator = torch.Generator().manual_seed(args.seed)
    if args.model:
        cfg, params = load_model(args.model)
    else:
        cfg = read_config(args.config)
        params = gpt2_init(cfg, generator)
    data = None
    if args.tokens:
        idx, targets, _ = load_tokens(args.tokens, cfg)
        data = torch.cat([idx, targets[:, -1:]], dim=1)  # back to [M, T+1]
    T = args.block or (data.shape[1] - 1 if data is not None else cfg["block_size"])
    if not 1 <= T <= cfg["block_size"] or (data is not None and T > data.shape[1] - 1):
        raise InputError(f"--block {T}: must lie in [1, {cfg['block_size'] if data is None else min(cfg['block_size'], data.shape[1] - 1)}]")

    w = {n: torch.nn.Parameter(t.to(device)) for n, t in params.items()}
    decay = [p for p in w.values() if p.dim() >= 2]
    no_decay = [p for p in w.values() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(args.beta1, args.beta2),
    )
    total = args.untimed_steps + args.steps

    def batch():
        if data is None:
            rows = torch.randint(cfg["vocab_size"], (args.batch, T + 1), generator=generator)
        else:
            rows = data[torch.randint(data.shape[0], (args.batch,), generator=generator), : T + 1]
        rows = rows.to(device)
        return rows[:, :-1], rows[:, 1:]

    losses = []

    def step(i):
        for group in opt.param_groups:
            group["lr"] = lr_at(i, total, args.lr, args.warmup)
        x, y = batch()
        loss = forward(cfg, w, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(w.values(), args.grad_clip)
        opt.step()
        losses.append(loss.detach())

    for i in range(args.untimed_steps):
        step(i)
    sync(device)
    start = time.perf_counter()
    for i in range(args.untimed_steps, total):
        step(i)
    sync(device)
    seconds = time.perf_counter() - start
    values = [v.item() for v in losses]
    print(json.dumps({
        "torch": torch.__version__,
        "device": describe_device(device),
        "config": cfg,
        "params": sum(p.numel() for p in w.values()),
        "batch": args.batch,
        "T": T,
        "steps": args.steps,
        "seconds": seconds,
        "tokens_per_second": args.steps * args.batch * T / seconds,
        "step_ms": 1000 * seconds / args.steps,
        "loss_first": json_number(values[0]),
        "loss_last": json_number(values[-1]),
    }))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except InputError as e:
        print(f"torch_train.py: {e}", file=sys.stderr)
        sys.exit(2)
