#!/usr/bin/env python3
"""bnn against PyTorch on the same machine, in one run (`make bench-torch`).

The same network (Fashion-MNIST MLP 784-512-256-10, PyTorch's nn.Linear initialisation), data
(pixels / 255), batch size (128, the last batch partial), epochs and thread count, trained with
bnn's command line and with PyTorch (Debian's python3-torch, which multiplies matrices with the
same OpenBLAS as bnn). Runs alternate bnn, PyTorch, bnn, PyTorch so both see the same machine.

- AdamW (lr 1e-3, weight decay 1e-4, constant): torch.optim.AdamW, the library's own optimizer.
- IVON (the issue's recipe: lr 1, lambda = 60000, h0 = 0.1, beta2 = 0.99999, delta = 1e-4, one
  warm-up epoch then cosine; one training sample, 64 test samples): PyTorch has no IVON, so it is
  written below from Algorithm 1 of Shen et al. (ICML 2024) with the conventions bnn follows (see
  src/fit/ivon.c), in whole-vector tensor operations over one flat buffer of all weights: the
  fastest form we know for PyTorch on a CPU.
- Prediction: IVON's 64-sample average over the test set from bnn's posterior file (bnn: the
  whole `bnn eval` command; PyTorch: the predictions, with the forward passes' thread setting);
  then the same with the first layer by local reparameterisation (bnn's --local-reparam, and
  the same trick written in PyTorch).
- AdamW's update alone: bnn_adamw_step (built here against the build's libbnn.a) and
  torch.optim.AdamW fed the same gradients, two settings; the largest differences of the moments
  and weights (`--adamw-only` runs just this).
- Last-layer KFAC Laplace: bnn's `laplace --subset last-layer --hessian kron` curvature time on
  the AdamW network, against the same arithmetic in PyTorch (a forward pass collecting the
  penultimate features phi, sum phi phi^T and sum diag(p) - p p^T), which is the least
  laplace-torch's last-layer KFAC has to compute.

Each side runs as its own process; the parent reads its peak resident memory (ru_maxrss).
Numbers are from different random streams, so accuracy and NLL agree to the run-to-run spread,
not to the digit. Usage: bench/torch_ref.py [--bnn build/bnn] [--epochs 10] [--threads 2]
"""
import argparse
import gzip
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

T0 = time.perf_counter()  # a child's start: its whole run is counted from here, imports included
FMNIST = "/usr/share/datasets/fashion-mnist"
ROUNDS = 3  # short alternating runs for the epoch times


# ------------------------------------------------------------------ the PyTorch side (a child)

def load_fmnist(split):
    import numpy as np
    import torch
    pre = "train" if split == "train" else "t10k"

    def idx(name):
        with gzip.open(os.path.join(FMNIST, f"{pre}-{name}-idx{3 if name == 'images' else 1}-ubyte.gz")) as f:
            raw = f.read()
        ndim = raw[3]
        dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
        return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)

    x = torch.from_numpy(idx("images").reshape(-1, 784).astype(np.float32) / np.float32(255.0))
    y = torch.from_numpy(idx("labels").astype(np.int64))
    return x, y


def mlp():
    import torch.nn as nn
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def metrics(prob, y, nbins=15):
    """Accuracy, NLL, ECE with bnn's definitions (src/metrics/metrics.c): bins (b/n, (b+1)/n]."""
    import torch
    prob = prob.double()
    conf, pred = prob.max(1)
    hit = (pred == y).double()
    nll = -torch.log(prob[torch.arange(len(y)), y]).mean().item()
    b = torch.clamp(torch.ceil(conf * nbins).long() - 1, 0, nbins - 1)
    ece = 0.0
    for k in range(nbins):
        sel = b == k
        if sel.any():
            ece += sel.double().mean().item() * abs(hit[sel].mean().item() - conf[sel].mean().item())
    return {"accuracy": hit.mean().item(), "nll": nll, "ece": ece}


def lr_at(lr, t, total, warmup, cosine):
    """bnn_lr_at (src/fit/train.c): linear warm-up by step, then constant or cosine to 0."""
    if warmup > 0 and t < warmup:
        return lr * (t + 1) / warmup
    if not cosine or total <= warmup:
        return lr
    return lr * 0.5 * (1.0 + math.cos(math.pi * (t - warmup) / (total - warmup)))


def torch_train(method, epochs, seed, subset=None):
    """Trains with the recipe; returns the epoch times, the seconds from the process's start to
    the trained model, and a function giving the test set's predictive probabilities."""
    import torch
    import torch.nn.functional as F
    torch.manual_seed(seed)
    x, y = load_fmnist("train")
    xt, yt = load_fmnist("test")
    if subset:
        x, y = x[:subset], y[:subset]
    net = mlp()
    params = list(net.parameters())
    n, B = x.shape[0], 128
    steps = (n + B - 1) // B
    gen = torch.Generator().manual_seed(seed)
    times = []
    if method == "adamw":
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
        for _ in range(epochs):
            t0 = time.perf_counter()
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, B):
                idx = perm[i:i + B]
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(net(x[idx]), y[idx]).backward()
                opt.step()
            times.append(time.perf_counter() - t0)
        return times, time.perf_counter() - T0, lambda: torch.softmax(net(xt), 1)

    # IVON over one flat buffer: the network's parameters and gradients are views into theta and
    # gbar, so the update is a handful of whole-vector operations.
    lr, ess, h0, b1, b2, wd = 1.0, 60000.0, 0.1, 0.9, 0.99999, 1e-4
    P = sum(p.numel() for p in params)
    m = torch.cat([p.detach().reshape(-1) for p in params])
    theta, gbar = torch.empty(P), torch.zeros(P)
    off = 0
    for p in params:
        k = p.numel()
        p.data = theta[off:off + k].view_as(p)
        p.grad = gbar[off:off + k].view_as(p)
        off += k
    h, g = torch.full((P,), h0), torch.zeros(P)
    # Every per-step vector is preallocated, so no step allocates (PyTorch's own AdamW does).
    eps, sig, tmp, tmp2 = torch.empty(P), torch.empty(P), torch.empty(P), torch.empty(P)
    hhat, stp = torch.empty(P), torch.empty(P)
    t = 0

    def draw():
        torch.randn(P, generator=gen, out=eps)
        torch.add(h, wd, out=sig).mul_(ess).rsqrt_()        # sigma = 1/sqrt(lambda (h + delta))
        torch.addcmul(m, eps, sig, out=theta)               # theta = m + eps sigma
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, B):
            idx = perm[i:i + B]
            with torch.no_grad():
                draw()
                gbar.zero_()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            assert params[0].grad.data_ptr() == gbar.data_ptr()  # accumulated in place
            t += 1
            a = lr_at(lr, t - 1, steps * epochs, steps, True) * (h0 + wd)  # rescaled lr
            with torch.no_grad():
                torch.mul(gbar, eps, out=hhat).div_(sig)    # hhat = g (theta - m) / sigma^2
                g.mul_(b1).add_(gbar, alpha=1 - b1)
                torch.sub(h, hhat, out=tmp).square_()
                tmp.div_(torch.add(h, wd, out=tmp2)).mul_(0.5 * (1 - b2) ** 2)
                h.mul_(b2).add_(hhat, alpha=1 - b2).add_(tmp)
                torch.mul(g, 1.0 / (1.0 - b1 ** t), out=stp).add_(m, alpha=wd)
                stp.div_(torch.add(h, wd, out=tmp2))
                m.sub_(stp, alpha=a)
        times.append(time.perf_counter() - t0)

    def predict():  # the average of 64 samples' probabilities
        prob = torch.zeros(len(yt), 10)
        torch.add(h, wd, out=sig).mul_(ess).rsqrt_()
        for _ in range(64):
            torch.randn(P, generator=gen, out=eps)
            torch.addcmul(m, eps, sig, out=theta)
            prob += torch.softmax(net(xt), 1)
        return prob / 64
    return times, time.perf_counter() - T0, predict


def read_safetensors(path):
    import numpy as np
    import torch
    with open(path, "rb") as f:
        raw = f.read()
    hlen = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + hlen])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        arr = np.frombuffer(raw, dtype=np.float32, offset=8 + hlen + a, count=(b - a) // 4)
        out[k] = torch.from_numpy(arr.reshape(v["shape"]).copy())
    return out


def torch_laplace(model_path, rounds=5):
    """Best of `rounds`: the forward pass over the training data alone, and the same pass that
    also forms last-layer KFAC's factors (batch 1024, as bnn's curvature pass)."""
    import torch
    x, _ = load_fmnist("train")
    net = mlp()
    net.load_state_dict(read_safetensors(model_path))
    body, last = net[:4], net[4]
    best_fwd = best_kron = float("inf")
    with torch.no_grad():
        for _ in range(rounds):
            t0 = time.perf_counter()
            for i in range(0, len(x), 1024):
                net(x[i:i + 1024])
            best_fwd = min(best_fwd, time.perf_counter() - t0)
            t0 = time.perf_counter()
            A, Bf = torch.zeros(257, 257), torch.zeros(10, 10, dtype=torch.float64)
            for i in range(0, len(x), 1024):
                phi = body(x[i:i + 1024])
                p = torch.softmax(last(phi), 1).double()
                phi1 = torch.cat([phi, torch.ones(len(phi), 1)], 1)
                A += phi1.T @ phi1
                Bf += torch.diag(p.sum(0)) - p.T @ p
            best_kron = min(best_kron, time.perf_counter() - t0)
    return {"forward": best_fwd, "kron": best_kron}


def torch_predict_bnn(ivon_path):
    """IVON's 64-sample predictive over the test set from bnn's posterior file (the weights are
    the mean, posterior.std the standard deviations in parameter order), timed."""
    import torch
    xt, yt = load_fmnist("test")
    net = mlp()
    st = read_safetensors(ivon_path)
    net.load_state_dict({k: v for k, v in st.items() if k[0].isdigit()})
    params = list(net.parameters())
    m = torch.cat([p.detach().reshape(-1) for p in params])
    theta, sig, eps = torch.empty_like(m), st["posterior.std"], torch.empty_like(m)
    off = 0
    for p in params:
        p.data = theta[off:off + p.numel()].view_as(p)
        off += p.numel()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        t0 = time.perf_counter()
        prob = torch.zeros(len(yt), 10)
        for _ in range(64):
            torch.randn(len(m), generator=gen, out=eps)
            torch.addcmul(m, eps, sig, out=theta)
            prob += torch.softmax(net(xt), 1)
        prob /= 64
        dt = time.perf_counter() - t0
        # The same with the first layer by local reparameterisation (bnn's --local-reparam): its
        # output mean and standard deviation once, then per sample a draw of that output and the
        # rest of the network at the sample's later weights.
        t0 = time.perf_counter()
        first, rest, nw = net[0], net[1:], net[0].weight.numel()
        n0 = nw + net[0].bias.numel()
        mw, sw = m[:nw].view_as(first.weight), sig[:nw].view_as(first.weight)
        mu = torch.addmm(m[nw:n0], xt, mw.T)
        sd = torch.addmm(sig[nw:n0] * sig[nw:n0], xt * xt, (sw * sw).T).sqrt_()
        z = torch.empty_like(mu)
        prob_lrt = torch.zeros(len(yt), 10)
        for _ in range(64):
            torch.randn(len(m), generator=gen, out=eps)
            torch.addcmul(m, eps, sig, out=theta)
            torch.randn(mu.shape, generator=gen, out=z)
            prob_lrt += torch.softmax(rest(torch.addcmul(mu, z, sd)), 1)
        prob_lrt /= 64
        dt_lrt = time.perf_counter() - t0
    return {"predict": dt, **{"bnn_" + k: v for k, v in metrics(prob, yt).items()},
            "predict_lrt": dt_lrt, **{"lrt_" + k: v for k, v in metrics(prob_lrt, yt).items()}}


def child(argv):
    import torch
    torch.set_num_threads(int(argv[1]))
    if argv[0] == "probe":  # the fastest of 3 epochs of 50 steps, in ms per step
        times, _, _ = torch_train(argv[2], 3, 0, subset=50 * 128)
        res = {"step_ms": min(times) / 50 * 1e3}
    elif argv[0] == "forward":  # the GEMM-bound work: Laplace's forward pass, prediction
        res = {**torch_laplace(argv[2]), **torch_predict_bnn(argv[3])}
    else:
        times, trained, predict = torch_train(argv[0], int(argv[2]), 0)
        res = {"epochs": times, "trained": trained}
        if argv[3] == "eval":
            _, yt = load_fmnist("test")
            with torch.no_grad():
                res.update(metrics(predict(), yt))
    print("RESULT " + json.dumps(res))


# ------------------------------------------------------------------ the parent

def run(cmd, env=None):
    """Runs cmd; returns (stdout + stderr, wall seconds, peak RSS in MiB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"torch_ref: {' '.join(cmd)} failed:\n{out}")
    return out, wall, ru.ru_maxrss / 1024.0


ADAMW_C = r"""
#include "bnn.h"
#include <stdio.h>
#include <stdlib.h>
/* argv: n T lr wd beta1 beta2 eps dir. Reads dir/w0.bin (n floats) and dir/g.bin (T x n), runs
 * bnn_adamw_step T times, writes dir/w.bin, dir/m.bin, dir/v.bin. */
static float *rd(const char *dir, const char *f, long n) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, f);
    float *x = malloc((size_t)n * 4);
    FILE *fp = fopen(p, "rb");
    if (!x || !fp || fread(x, 4, (size_t)n, fp) != (size_t)n) exit(1);
    fclose(fp);
    return x;
}
static void wr(const char *dir, const char *f, const float *x, long n) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, f);
    FILE *fp = fopen(p, "wb");
    if (!fp || fwrite(x, 4, (size_t)n, fp) != (size_t)n || fclose(fp)) exit(1);
}
int main(int argc, char **argv) {
    if (argc != 9) return 2;
    long n = atol(argv[1]), T = atol(argv[2]);
    struct bnn_adamw_params p = {atof(argv[3]), atof(argv[5]), atof(argv[6]), atof(argv[7]),
                                 atof(argv[4])};
    float *w = rd(argv[8], "w0.bin", n), *g = rd(argv[8], "g.bin", n * T);
    float *m = calloc((size_t)n, 4), *v = calloc((size_t)n, 4);
    if (!m || !v) return 1;
    for (long t = 0; t < T; t++)
        if (bnn_adamw_step(w, m, v, g + t * n, n, t + 1, &p)) return 1;
    wr(argv[8], "w.bin", w, n), wr(argv[8], "m.bin", m, n), wr(argv[8], "v.bin", v, n);
    return 0;
}
"""


def adamw_agreement(bnn_path, tmp):
    """bnn_adamw_step and torch.optim.AdamW fed the same gradients (100,003 weights whose
    gradients span six orders of magnitude, 200 steps; two settings): the largest relative
    difference of the second moment (exp_avg_sq), that of the first (exp_avg) relative to the
    square root of the second (a gradient's own scale: the first moment passes through 0 where the
    gradient's sign changes), and the largest absolute difference of the weights. Built here against the build's libbnn.a with the libraries
    its bnn.pc names; None when that cannot be done (another build layout)."""
    import numpy as np
    import torch
    build = os.path.dirname(os.path.abspath(bnn_path))
    # the header of the tree that build was made from (its CMakeCache names it), else this one's
    src_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            src_root = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", f.read(), re.M).group(1)
    except (OSError, AttributeError):
        pass
    lib, pc = os.path.join(build, "libbnn.a"), os.path.join(build, "bnn.pc")
    if not (os.path.exists(lib) and os.path.exists(pc)):
        return None
    with open(pc) as f:
        libs = re.search(r"^Libs: (.*)$", f.read(), re.M).group(1).split()
    libs = [x for x in libs if not x.startswith("-L") and x != "-lbnn"]
    csrc, exe = os.path.join(tmp, "adamw_io.c"), os.path.join(tmp, "adamw_io")
    with open(csrc, "w") as f:
        f.write(ADAMW_C)
    if subprocess.run(["cc", "-O2", "-I", os.path.join(src_root, "include"), csrc, lib, *libs,
                       "-o", exe], capture_output=True).returncode:
        return None
    n, T, rows = 100003, 200, []
    for lr, wd, betas, eps in ((1e-3, 1e-4, (0.9, 0.999), 1e-8), (0.01, 0.1, (0.8, 0.95), 1e-6)):
        gen = torch.Generator().manual_seed(0)
        w0 = 0.1 * torch.randn(n, generator=gen)
        g = torch.randn(T, n, generator=gen) * torch.logspace(-4, 2, n)
        w0.numpy().astype(np.float32).tofile(os.path.join(tmp, "w0.bin"))
        g.numpy().astype(np.float32).tofile(os.path.join(tmp, "g.bin"))
        p = torch.nn.Parameter(w0.clone())
        opt = torch.optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=wd, foreach=False)
        for t in range(T):
            p.grad = g[t].clone()
            opt.step()
        if subprocess.run([exe, str(n), str(T), repr(lr), repr(wd), repr(betas[0]),
                           repr(betas[1]), repr(eps), tmp]).returncode:
            return None
        got = {k: np.fromfile(os.path.join(tmp, k + ".bin"), dtype=np.float32)
               for k in ("w", "m", "v")}
        st = opt.state[p]
        ref = {"w": p.detach().numpy(), "m": st["exp_avg"].numpy(), "v": st["exp_avg_sq"].numpy()}
        rows.append(dict(setting=f"lr {lr}, weight decay {wd}, betas {betas}, eps {eps}",
                         v=float(np.max(np.abs(got["v"] - ref["v"]) / ref["v"])),
                         m=float(np.max(np.abs(got["m"] - ref["m"]) / np.sqrt(ref["v"]))),
                         w=float(np.max(np.abs(got["w"] - ref["w"])))))
    return rows


def median(v):
    s = sorted(v)
    return s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bnn", default="build/bnn")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--adamw-only", action="store_true",
                    help="only the AdamW update check (bnn_adamw_step against torch.optim.AdamW)")
    a = ap.parse_args()
    if a.adamw_only:
        print_adamw(adamw_agreement(a.bnn, tempfile.mkdtemp(prefix="bnn_torch_ref_")))
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    # PyTorch's own thread pool (OpenMP) and OpenBLAS's threads (Debian's OpenBLAS has its own
    # pthreads) compete for the cores when both are set to all of them: on a 2-core machine that
    # made PyTorch's training step 3-4 times slower. So PyTorch gets, for each method, the fastest
    # of four settings, measured here on short runs (two rounds, alternating; each keeps its best).
    tset = {}
    for method in ("adamw", "ivon"):
        settings = {(1, a.threads): 1e30, (a.threads, 1): 1e30, (a.threads, a.threads): 1e30,
                    (1, 1): 1e30}
        for _ in range(2):
            for tt, ob in settings:
                e = dict(os.environ, OMP_NUM_THREADS=str(tt), OPENBLAS_NUM_THREADS=str(ob))
                out, _, _ = run([sys.executable, __file__, "--child", "probe", str(tt), method], e)
                ms = json.loads(out.split("RESULT ", 1)[1])["step_ms"]
                settings[tt, ob] = min(settings[tt, ob], ms)
        for (tt, ob), ms in settings.items():
            print(f"PyTorch {method}: {tt} PyTorch and {ob} OpenBLAS threads: {ms:.2f} ms per step",
                  file=sys.stderr)
        tt, ob = min(settings, key=settings.get)
        tset[method] = (tt, ob, dict(os.environ, OMP_NUM_THREADS=str(tt), OPENBLAS_NUM_THREADS=str(ob)))
    tmp = tempfile.mkdtemp(prefix="bnn_torch_ref_")
    common = ["--data", "fmnist", "--model", "mlp:784-512-256-10", 
              "--batch-size", "128", "--weight-decay", "1e-4", "--seed", "0", "--threads",
              str(a.threads)]
    recipe = {"adamw": ["--method", "adamw", "--lr", "1e-3"],
              "ivon": ["--method", "ivon", "--lr", "1.0", "--ess", "60000", "--hess-init", "0.1",
                       "--beta2", "0.99999", "--warmup-epochs", "1", "--lr-schedule", "cosine"]}
    def bnn_train(method, epochs, model=None):
        cmd = [a.bnn, "train", *common, "--epochs", str(epochs), *recipe[method]]
        out, wall, rss = run(cmd + (["-o", model] if model else []), env)
        ep = [float(v) for v in re.findall(r"^epoch \d+/\d+ .* ([0-9.]+)s$", out, re.M)]
        return dict(epochs=ep, wall=wall, rss=rss)

    def torch_train_run(method, epochs, evaluate):
        tt, _, tenv = tset[method]
        out, _, rss = run([sys.executable, __file__, "--child", method, str(tt), str(epochs),
                           "eval" if evaluate else "noeval"], tenv)
        r = json.loads(out.split("RESULT ", 1)[1])
        return dict(r, wall=r["trained"], rss=rss)

    # Quality and whole runs: one run of the recipe each, alternating bnn and PyTorch.
    res, fastest = {}, {}
    for method in ("adamw", "ivon"):
        model = os.path.join(tmp, method + ".safetensors")
        res["bnn", method] = bnn_train(method, a.epochs, model)
        js = os.path.join(tmp, method + ".json")
        _, wall, _ = run([a.bnn, "eval", "-m", model, "--samples", "64" if method == "ivon" else "0",
                          "--json", js, "--threads", str(a.threads)], env)
        with open(js) as f:
            r = json.load(f)
        res["bnn", method].update(accuracy=r["accuracy"], nll=r["nll"], ece=r["ece"], predict=wall)
        if method == "ivon":  # the same with the first layer by local reparameterisation
            _, wall, _ = run([a.bnn, "eval", "-m", model, "--samples", "64", "--local-reparam",
                              "--json", js, "--threads", str(a.threads)], env)
            with open(js) as f:
                r = json.load(f)
            res["bnn", method].update(lrt_accuracy=r["accuracy"], lrt_nll=r["nll"],
                                      lrt_ece=r["ece"], predict_lrt=wall)
        res["torch", method] = torch_train_run(method, a.epochs, True)
    for key, r in res.items():
        fastest[key] = min(r["epochs"])
    # Epoch times: this machine's speed drifts by up to 40% within a minute, so the four trainers
    # also run ROUNDS short runs in turn, and each keeps its fastest epoch of all.
    for _ in range(ROUNDS):
        for method in ("adamw", "ivon"):
            for who in ("bnn", "torch"):
                r = bnn_train(method, 2) if who == "bnn" else torch_train_run(method, 2, False)
                fastest[who, method] = min([fastest[who, method]] + r["epochs"])

    map_model = os.path.join(tmp, "adamw.safetensors")
    bnn_curv = 1e30
    for _ in range(3):
        out, _, _ = run([a.bnn, "laplace", "-m", map_model, "--subset", "last-layer", "--hessian",
                         "kron", "--threads", str(a.threads), "-o",
                         os.path.join(tmp, "la.safetensors")], env)
        bnn_curv = min(bnn_curv, float(re.search(r"curvature ([0-9.]+) s", out).group(1)))
    out, _, _ = run([sys.executable, __file__, "--child", "forward", str(tset["adamw"][0]),
                     map_model, os.path.join(tmp, "ivon.safetensors")], tset["adamw"][2])
    tl = json.loads(out.split("RESULT ", 1)[1])

    print(f"bnn torch_ref: Fashion-MNIST MLP 784-512-256-10, batch 128, {a.epochs} epochs, "
          f"{a.threads} threads; bnn against PyTorch {__import__('torch').__version__} (Debian; "
          f"its fastest settings: adamw {tset['adamw'][0]} PyTorch and {tset['adamw'][1]} OpenBLAS "
          f"threads, also for the forward passes; ivon {tset['ivon'][0]} and {tset['ivon'][1]})")
    print("| | bnn | PyTorch | PyTorch / bnn |")
    print("|---|---|---|---|")
    for method in ("adamw", "ivon"):
        b, t = res["bnn", method], res["torch", method]
        fb, ft = fastest["bnn", method], fastest["torch", method]
        print(f"| {method}: fastest epoch (of {a.epochs} + {ROUNDS} x 2) | {fb:.2f} s | {ft:.2f} s | "
              f"{ft / fb:.2f} |")
        print(f"| {method}: training from start to trained model ({a.epochs} epochs; imports "
              f"and data loading included) | "
              f"{b['wall']:.1f} s | {t['wall']:.1f} s | {t['wall'] / b['wall']:.2f} |")
        print(f"| {method}: peak memory (RSS) | {b['rss']:.0f} MiB | {t['rss']:.0f} MiB | "
              f"{t['rss'] / b['rss']:.2f} |")
        print(f"| {method}: test accuracy / NLL / ECE | {b['accuracy']:.4f} / {b['nll']:.4f} / "
              f"{b['ece']:.4f} | {t['accuracy']:.4f} / {t['nll']:.4f} / {t['ece']:.4f} | |")
    pb, pt = res["bnn", "ivon"]["predict"], tl["predict"]
    print(f"| ivon: predicting the 10000 test images with bnn's posterior, 64 samples (bnn: the "
          f"whole `bnn eval` command, loading included; PyTorch: the predictions alone) | "
          f"{pb:.2f} s | {pt:.2f} s | {pt / pb:.2f} |")
    print(f"| ivon: those predictions' accuracy / NLL / ECE | {res['bnn', 'ivon']['accuracy']:.4f} / "
          f"{res['bnn', 'ivon']['nll']:.4f} / {res['bnn', 'ivon']['ece']:.4f} | "
          f"{tl['bnn_accuracy']:.4f} / {tl['bnn_nll']:.4f} / {tl['bnn_ece']:.4f} | |")
    pb, pt, b = res["bnn", "ivon"]["predict_lrt"], tl["predict_lrt"], res["bnn", "ivon"]
    print(f"| ivon: the same, first layer by local reparameterisation (bnn --local-reparam; "
          f"PyTorch the same trick) | {pb:.2f} s | {pt:.2f} s | {pt / pb:.2f} |")
    print(f"| ivon: those predictions' accuracy / NLL / ECE | {b['lrt_accuracy']:.4f} / "
          f"{b['lrt_nll']:.4f} / {b['lrt_ece']:.4f} | {tl['lrt_accuracy']:.4f} / "
          f"{tl['lrt_nll']:.4f} / {tl['lrt_ece']:.4f} | |")
    ratio = lambda who: fastest[who, "ivon"] / fastest[who, "adamw"]
    print(f"| IVON / AdamW, fastest epochs | {ratio('bnn'):.2f} | {ratio('torch'):.2f} | |")
    print(f"| last-layer KFAC curvature (bnn: laplace's 'time curvature', best of 3; PyTorch: "
          f"forward + factors, best of 5) | {bnn_curv:.3f} s | {tl['kron']:.3f} s | "
          f"{tl['kron'] / bnn_curv:.2f} |")
    print(f"| forward pass alone over the 60000 examples (best of 5) | | {tl['forward']:.3f} s | |")
    print_adamw(adamw_agreement(a.bnn, tmp))


def print_adamw(rows):
    if rows is None:
        print("AdamW update check: skipped (no libbnn.a and bnn.pc beside the bnn binary, or the "
              "check program did not build or run)")
        return
    print("AdamW update, bnn_adamw_step against torch.optim.AdamW on the same gradients (100,003 "
          "weights, 200 steps): largest difference")
    for r in rows:
        print(f"  {r['setting']}: second moment {r['v']:.2g} relative, first moment "
              f"{r['m']:.2g} of the gradient's scale, weights {r['w']:.2g} absolute")

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
