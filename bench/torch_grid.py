"""PyTorch baselines of grid evaluation (SPEC section 6), on losscape's files.

Evaluates the loss at centre + alpha*d1 + beta*d2 for a list of grid points,
two ways, and prints one JSON object:
  loop:    the per-point loop of Li et al. (2018): for each point, set every
           parameter with p.data.copy_(theta + a*d1 + b*d2), run the forward,
           loss.item();
  batched: P points at a time, their weights stacked on a leading dim P
           (theta + [a b] @ [d1; d2] in one GEMM), one batched forward (bmm).

Usage (with a Python that can `import torch`):
  python3 bench/torch_grid.py --model DIR --tokens FILE --directions FILE
      (--res NX[xNY] [--range=A0:A1[,B0:B1]] | --points JSON | --points-file FILE)
      [--mode both|loop|batched] [--batch P] [--max-seconds S]
      [--device auto|cpu|cuda[:i]] [--threads N] [--no-losses]
--res/--range give the points of a grid file in its order (beta outer, alpha
inner: loss[j][i]); write --range with '=' since it starts with '-'. Points
are [[alpha, beta], ...]. Each mode warms up on its first point (or batch),
then evaluates the points in order until all are done or --max-seconds have
passed, and reports points/s over the points it timed. Losses that are not
finite are written as the strings "NaN", "Infinity", "-Infinity".
Exit status: 2 for bad input, 1 for other failures.
"""
import argparse
import json
import math
import sys
import time

import torch

from nanogpt_torch import (
    InputError, describe_device, forward, json_number, load_directions, load_model, load_tokens,
    param_shapes, pick_device, setup_torch,
)


def linspace(lo, hi, n):
    """Inclusive linspace as losscape's grid files store it."""
    return [lo] if n == 1 else [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def loss_diff(x, y):
    """|x - y|, 0 when both are the same non-finite value, inf when only one is finite."""
    if x == y or (math.isnan(x) and math.isnan(y)):
        return 0.0
    return abs(x - y) if math.isfinite(x) and math.isfinite(y) else math.inf


def parse_points(args):
    if args.res is not None:
        try:
            nx, _, ny = args.res.lower().partition("x")
            nx, ny = int(nx), int(ny or nx)
        except ValueError:
            raise InputError(f"--res {args.res!r}: expected NX or NXxNY") from None
        if nx < 1 or ny < 1:
            raise InputError(f"--res {args.res!r}: resolutions must be positive")
        try:
            ranges = [tuple(float(v) for v in r.split(":")) for r in args.range.split(",")]
        except ValueError:
            raise InputError(f"--range {args.range!r}: expected A0:A1 or A0:A1,B0:B1") from None
        if len(ranges) == 1:
            ranges *= 2
        if len(ranges) != 2 or any(len(r) != 2 or not r[0] < r[1] for r in ranges):
            raise InputError(f"--range {args.range!r}: expected A0:A1 or A0:A1,B0:B1 with A0 < A1, B0 < B1")
        alpha, beta = linspace(*ranges[0], nx), linspace(*ranges[1], ny)
        return [(a, b) for b in beta for a in alpha]
    source = "--points"
    text = args.points
    if args.points_file is not None:
        source = args.points_file
        try:
            with open(args.points_file) as f:
                text = f.read()
        except OSError as e:
            raise InputError(f"{args.points_file}: cannot read: {e.strerror}") from e
    try:
        points = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{source}: not valid JSON: {e}") from e
    if not isinstance(points, list) or not points or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)
        for p in points
    ):
        raise InputError(f"{source}: expected a non-empty JSON list of [alpha, beta] pairs")
    return [(float(a), float(b)) for a, b in points]


def run_loop(cfg, theta, d1, d2, idx, targets, mask, points, max_seconds):
    """Li et al.'s loop: one model whose parameters are overwritten for every point."""
    model = {name: t.clone() for name, t in theta.items()}

    def evaluate(a, b):
        for name, p in model.items():
            p.data.copy_(theta[name] + a * d1[name] + b * d2[name])
        return forward(cfg, model, idx, targets, mask).item()

    evaluate(*points[0])  # warm-up
    losses = []
    start = time.perf_counter()
    for a, b in points:
        losses.append(evaluate(a, b))
        if time.perf_counter() - start > max_seconds:
            break
    seconds = time.perf_counter() - start
    return {"points": len(losses), "seconds": seconds, "points_per_second": len(losses) / seconds, "loss": losses}


def run_batched(cfg, theta, d1, d2, idx, targets, mask, points, batch, max_seconds, device):
    """Stacked weights for P points: W [P, n] = theta + [a b] @ [d1; d2], sliced into [P, *shape] views."""
    names = [name for name, _ in param_shapes(cfg)]
    flat_theta = torch.cat([theta[n].reshape(-1) for n in names]).unsqueeze(0)  # [1, n]
    flat_d = torch.stack([torch.cat([d[n].reshape(-1) for n in names]) for d in (d1, d2)])  # [2, n]
    ab_all = torch.tensor(points, dtype=torch.float32, device=device)

    def evaluate(ab):
        flat = torch.addmm(flat_theta, ab, flat_d)
        w, offset = {}, 0
        for n in names:
            size = theta[n].numel()
            w[n] = flat[:, offset : offset + size].view(len(ab), *theta[n].shape)
            offset += size
        return forward(cfg, w, idx, targets, mask).cpu()  # .cpu() waits for the device

    evaluate(ab_all[:batch])  # warm-up
    losses = []
    start = time.perf_counter()
    for first in range(0, len(points), batch):
        losses.extend(evaluate(ab_all[first : first + batch]).tolist())
        if time.perf_counter() - start > max_seconds:
            break
    seconds = time.perf_counter() - start
    return {"batch": batch, "points": len(losses), "seconds": seconds, "points_per_second": len(losses) / seconds, "loss": losses}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model directory: config.json + model.safetensors")
    ap.add_argument("--tokens", required=True, help="tokens file: tensor tokens [B, T+1] (optional mask [B, T])")
    ap.add_argument("--directions", required=True, help="directions file: d1.<name>, d2.<name>")
    pts = ap.add_mutually_exclusive_group(required=True)
    pts.add_argument("--res", help="grid resolution NX or NXxNY (points in grid-file order)")
    pts.add_argument("--points", help="JSON list of [alpha, beta]")
    pts.add_argument("--points-file", help="file holding a JSON list of [alpha, beta]")
    ap.add_argument("--range", default="-1:1", help="with --res: A0:A1[,B0:B1] (default -1:1); write --range=...")
    ap.add_argument("--mode", choices=("both", "loop", "batched"), default="both")
    ap.add_argument("--batch", type=int, help="points per batched forward (default 16 on cpu, 256 on cuda)")
    ap.add_argument("--max-seconds", type=float, default=float("inf"), help="stop each mode after this long")
    ap.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:i")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default: all cores)")
    ap.add_argument("--no-losses", action="store_true", help="leave the per-point losses out of the JSON")
    args = ap.parse_args(argv)
    if args.range != "-1:1" and args.res is None:
        raise InputError("--range needs --res")
    if args.batch is not None and args.batch < 1:
        raise InputError(f"--batch must be a positive integer, got {args.batch}")
    if not args.max_seconds > 0:
        raise InputError(f"--max-seconds must be positive, got {args.max_seconds}")

    device = pick_device(args.device)
    setup_torch(device, args.threads)
    points = parse_points(args)
    cfg, theta = load_model(args.model)
    idx, targets, mask = load_tokens(args.tokens, cfg)
    d1, d2, missing = load_directions(args.directions, cfg)
    theta, d1, d2 = ({n: t.to(device) for n, t in d.items()} for d in (theta, d1, d2))
    idx, targets = idx.to(device), targets.to(device)
    mask = None if mask is None else mask.to(device)
    batch = args.batch or (256 if device.type == "cuda" else 16)

    result = {
        "torch": torch.__version__,
        "device": describe_device(device),
        "config": cfg,
        "params": sum(t.numel() for t in theta.values()),
        "B": idx.shape[0],
        "T": idx.shape[1],
        "points": len(points),
        "directions_missing": missing,
    }
    with torch.inference_mode():
        if args.mode in ("both", "loop"):
            result["loop"] = run_loop(cfg, theta, d1, d2, idx, targets, mask, points, args.max_seconds)
        if args.mode in ("both", "batched"):
            result["batched"] = run_batched(cfg, theta, d1, d2, idx, targets, mask, points, batch, args.max_seconds, device)
    if "loop" in result and "batched" in result:
        shared = zip(result["loop"]["loss"], result["batched"]["loss"])
        result["max_abs_diff_loop_batched"] = max((loss_diff(x, y) for x, y in shared), default=0.0)
    for mode in ("loop", "batched"):
        if mode in result:
            if args.no_losses:
                del result[mode]["loss"]
            else:
                result[mode]["loss"] = [json_number(v) for v in result[mode]["loss"]]
    if "max_abs_diff_loop_batched" in result:
        result["max_abs_diff_loop_batched"] = json_number(result["max_abs_diff_loop_batched"])
    print(json.dumps(result))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except InputError as e:
        print(f"torch_grid.py: {e}", file=sys.stderr)
        sys.exit(2)
