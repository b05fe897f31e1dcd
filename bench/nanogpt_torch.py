"""The PyTorch side of the benchmark: losscape's files read with json + numpy
(no `safetensors` package on the bench machines) and nanoGPT's forward
(SPEC section 2) in float32, written once for any leading batch of weights.

Shared by torch_grid.py and torch_train.py. Every weight tensor either has
the model's shape (one model: the per-point loop and training) or a leading
dimension P (P perturbed models at once: the batched grid). Errors name the
file and the tensor.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

LN_EPS = 1e-5

_NUMPY_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "I32": "<i4", "I64": "<i8"}


class InputError(Exception):
    """A bad input file or flag: the scripts print it in one line and exit 2."""


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata); floats as float32, ints as int64."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from e
    if len(raw) < 8:
        raise InputError(f"{path}: too short for a safetensors file ({len(raw)} bytes)")
    (header_len,) = struct.unpack("<Q", raw[:8])
    if 8 + header_len > len(raw):
        raise InputError(f"{path}: header length {header_len} runs past the end of the file ({len(raw)} bytes)")
    try:
        header = json.loads(raw[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: header is not valid JSON: {e}") from e
    data = memoryview(raw)[8 + header_len :]
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        dtype = info.get("dtype")
        if dtype not in _NUMPY_DTYPES:
            raise InputError(f"{path}: tensor {name} has dtype {dtype!r}; expected one of {sorted(_NUMPY_DTYPES)}")
        shape = [int(s) for s in info.get("shape", [])]
        begin, end = (int(o) for o in info.get("data_offsets", [0, -1]))
        count = math.prod(shape)
        itemsize = np.dtype(_NUMPY_DTYPES[dtype]).itemsize
        if not 0 <= begin <= end <= len(data) or end - begin != count * itemsize:
            raise InputError(
                f"{path}: tensor {name}: data_offsets [{begin}, {end}] do not hold {shape} {dtype} "
                f"within the {len(data)} data bytes"
            )
        arr = np.frombuffer(data[begin:end], dtype=_NUMPY_DTYPES[dtype]).reshape(shape)
        if dtype == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = arr.astype(np.int64 if dtype in ("I32", "I64") else np.float32)
    return tensors, metadata


def read_config(path):
    """nanoGPT's GPTConfig fields from a config.json (SPEC section 2), with losscape's defaults."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON: {e}") from e
    cfg = {}
    for key in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
        v = raw.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise InputError(f"{path}: {key!r} must be a positive integer, got {v!r}")
        cfg[key] = v
    cfg["bias"] = raw.get("bias", True)
    cfg["activation"] = raw.get("activation", "gelu")
    cfg["tie_embeddings"] = raw.get("tie_embeddings", True)
    if cfg["activation"] not in ("gelu", "gelu_tanh"):
        raise InputError(f"{path}: 'activation' must be 'gelu' or 'gelu_tanh', got {cfg['activation']!r}")
    if cfg["n_embd"] % cfg["n_head"]:
        raise InputError(f"{path}: n_embd ({cfg['n_embd']}) must be divisible by n_head ({cfg['n_head']})")
    return cfg


def param_shapes(cfg):
    """nanoGPT's state_dict names and shapes in the canonical order of SPEC section 2."""
    C, V = cfg["n_embd"], cfg["vocab_size"]
    out = [("transformer.wte.weight", (V, C)), ("transformer.wpe.weight", (cfg["block_size"], C))]

    def add(name, shape, is_bias=False):
        if cfg["bias"] or not is_bias:
            out.append((name, shape))

    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        add(p + "ln_1.weight", (C,))
        add(p + "ln_1.bias", (C,), True)
        add(p + "attn.c_attn.weight", (3 * C, C))
        add(p + "attn.c_attn.bias", (3 * C,), True)
        add(p + "attn.c_proj.weight", (C, C))
        add(p + "attn.c_proj.bias", (C,), True)
        add(p + "ln_2.weight", (C,))
        add(p + "ln_2.bias", (C,), True)
        add(p + "mlp.c_fc.weight", (4 * C, C))
        add(p + "mlp.c_fc.bias", (4 * C,), True)
        add(p + "mlp.c_proj.weight", (C, 4 * C))
        add(p + "mlp.c_proj.bias", (C,), True)
    add("transformer.ln_f.weight", (C,))
    add("transformer.ln_f.bias", (C,), True)
    if not cfg["tie_embeddings"]:
        out.append(("lm_head.weight", (V, C)))
    return out


def _check_shape(path, name, arr, shape):
    if tuple(arr.shape) != tuple(shape):
        raise InputError(f"{path}: tensor {name} has shape {list(arr.shape)}; the config needs {list(shape)}")


def load_model(model_dir):
    """Returns (cfg, {name: float32 tensor}) from config.json + model.safetensors."""
    cfg = read_config(os.path.join(model_dir, "config.json"))
    path = os.path.join(model_dir, "model.safetensors")
    tensors, _ = read_safetensors(path)
    params = {}
    for name, shape in param_shapes(cfg):
        if name not in tensors:
            raise InputError(f"{path}: missing tensor {name}")
        _check_shape(path, name, tensors[name], shape)
        params[name] = torch.from_numpy(tensors[name])
    if cfg["tie_embeddings"] and "lm_head.weight" in tensors:
        if not np.array_equal(tensors["lm_head.weight"], tensors["transformer.wte.weight"]):
            raise InputError(f"{path}: lm_head.weight differs from transformer.wte.weight but the config ties them")
    return cfg, params


def load_tokens(path, cfg):
    """Returns (idx [B,T], targets [B,T]) int64 tensors and mask [B,T] float32 or None."""
    tensors, _ = read_safetensors(path)
    if "tokens" not in tensors:
        raise InputError(f"{path}: missing tensor tokens ([B, T+1] I32 or I64)")
    tok = tensors["tokens"]
    if tok.ndim != 2 or tok.shape[1] < 2 or tok.shape[1] - 1 > cfg["block_size"]:
        raise InputError(f"{path}: tokens has shape {list(tok.shape)}; expected [B, T+1] with 1 <= T <= {cfg['block_size']}")
    if tok.min() < 0 or tok.max() >= cfg["vocab_size"]:
        raise InputError(f"{path}: token ids must lie in [0, {cfg['vocab_size']}), found {tok.min()}..{tok.max()}")
    mask = None
    if "mask" in tensors:
        _check_shape(path, "mask", tensors["mask"], (tok.shape[0], tok.shape[1] - 1))
        mask = torch.from_numpy(tensors["mask"].astype(np.float32))
    t = torch.from_numpy(tok)
    return t[:, :-1].contiguous(), t[:, 1:].contiguous(), mask


def load_directions(path, cfg):
    """Returns (d1, d2) dicts of float32 tensors and the names absent from the file (taken as zero)."""
    tensors, _ = read_safetensors(path)
    d1, d2, missing = {}, {}, []
    for name, shape in param_shapes(cfg):
        for key, d in (("d1", d1), ("d2", d2)):
            arr = tensors.get(f"{key}.{name}")
            if arr is None:
                missing.append(f"{key}.{name}")
                arr = np.zeros(shape, dtype=np.float32)
            _check_shape(path, f"{key}.{name}", arr, shape)
            d[name] = torch.from_numpy(arr)
    return d1, d2, missing


def _linear(x, w, b):
    """x [..., N, in] @ w^T + b. One model (w [out, in]) goes through F.linear as nanoGPT's
    nn.Linear does; a leading P (w [P, out, in], x [P, N, in]) through one batched GEMM."""
    if w.dim() == 2:
        return F.linear(x, w, b)
    if b is None:
        return torch.bmm(x, w.transpose(1, 2))
    return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))


def _layer_norm(x, w, b):
    if w.dim() == 1:
        return F.layer_norm(x, (x.shape[-1],), w, b, LN_EPS)
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    y = (x - mean) * torch.rsqrt(var + LN_EPS) * w.unsqueeze(1)
    return y if b is None else y + b.unsqueeze(1)


def forward(cfg, w, idx, targets, mask=None):
    """nanoGPT's forward and mean next-token cross-entropy (SPEC section 2).

    w: {name: tensor} with the model's shapes, or all with a leading dim P.
    idx, targets: [B, T] int64. mask: [B, T] weights of each target or None
    (loss = sum(mask * ce) / sum(mask)). Returns the loss: [] or [P].
    """
    B, T = idx.shape
    C, nh = cfg["n_embd"], cfg["n_head"]
    hs = C // nh
    lead = w["transformer.wte.weight"].shape[:-2]  # () or (P,)
    flat_idx = idx.reshape(-1)
    pos = torch.arange(T, device=idx.device).repeat(B)
    x = w["transformer.wte.weight"][..., flat_idx, :] + w["transformer.wpe.weight"][..., pos, :]  # [..., N, C]
    causal = torch.ones(T, T, dtype=torch.bool, device=idx.device).triu(1)
    approximate = "none" if cfg["activation"] == "gelu" else "tanh"

    def bias(name):
        return w[name] if cfg["bias"] else None

    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        h = _layer_norm(x, w[p + "ln_1.weight"], bias(p + "ln_1.bias"))
        qkv = _linear(h, w[p + "attn.c_attn.weight"], bias(p + "attn.c_attn.bias"))
        # [..., N, 3C] -> three [..., B, nh, T, hs]
        q, k, v = (t.reshape(*lead, B, T, nh, hs).transpose(-3, -2) for t in qkv.split(C, dim=-1))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(causal, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(-3, -2).reshape(*lead, B * T, C)
        x = x + _linear(y, w[p + "attn.c_proj.weight"], bias(p + "attn.c_proj.bias"))
        h = _layer_norm(x, w[p + "ln_2.weight"], bias(p + "ln_2.bias"))
        h = F.gelu(_linear(h, w[p + "mlp.c_fc.weight"], bias(p + "mlp.c_fc.bias")), approximate=approximate)
        x = x + _linear(h, w[p + "mlp.c_proj.weight"], bias(p + "mlp.c_proj.bias"))
    x = _layer_norm(x, w["transformer.ln_f.weight"], bias("transformer.ln_f.bias"))
    w_out = w["transformer.wte.weight" if cfg["tie_embeddings"] else "lm_head.weight"]
    logits = _linear(x, w_out, None)  # [..., N, V]
    V = logits.shape[-1]
    ce = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1).repeat(math.prod(lead)), reduction="none")
    ce = ce.reshape(*lead, B * T)
    if mask is None:
        return ce.mean(-1)
    m = mask.reshape(-1)
    return (ce * m).sum(-1) / m.sum()


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: this PyTorch has no CUDA device")
    return torch.device(name)


def setup_torch(device, threads):
    """float32 everywhere (no TF32 on Ampere and later), all CPU cores, no autograd unless asked."""
    torch.set_num_threads(threads or os.cpu_count() or 1)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def describe_device(device):
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def json_number(x):
    """JSON has no NaN/Infinity: non-finite values travel as the strings "NaN", "Infinity", "-Infinity"."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x
