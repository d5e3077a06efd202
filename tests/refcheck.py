"""What tests/conjugate.py and tests/nonconjugate.py share: running the bnn command line, reading
and editing its safetensors files, and the checks' bookkeeping. numpy only.
start(argv) takes BNN WORKDIR from the command line and enters WORKDIR; finish() prints the
verdict and exits 1 when any check failed."""
import itertools
import json
import os
import re
import struct
import subprocess
import sys

import numpy as np

BNN = None
fails = []


def start(argv):
    global BNN
    BNN = os.path.abspath(argv[1])
    os.makedirs(argv[2], exist_ok=True)
    os.chdir(argv[2])


def run(*a):
    """bnn with the given arguments (lists of words, or strings split at spaces) on one thread;
    its stdout. A failure ends the test with bnn's message."""
    a = [w for x in a for w in (x if isinstance(x, list) else x.split())]
    p = subprocess.run([BNN, *a, '-t', '1'], capture_output=True, text=True)
    if p.returncode != 0:
        print('FAIL: bnn %s exited %d: %s' % (' '.join(a), p.returncode, p.stderr.strip()))
        sys.exit(1)
    return p.stdout


def read(path):
    """A safetensors file's F32/F64 tensors (as float64) and its metadata."""
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8 : 8 + n])
    d = b[8 + n :]
    out = {}
    for k, v in h.items():
        if k == '__metadata__':
            continue
        a, e = v['data_offsets']
        dt = {'F32': np.float32, 'F64': np.float64}[v['dtype']]
        out[k] = np.frombuffer(d[a:e], dtype=dt).reshape(v['shape']).astype(np.float64)
    return out, h.get('__metadata__', {})


def write(src, dst, tensors):
    """Copies src to dst with the named F32 tensors' values replaced."""
    b = bytearray(open(src, 'rb').read())
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8 : 8 + n])
    base = 8 + n
    for k, vals in tensors.items():
        a, e = h[k]['data_offsets']
        arr = np.asarray(vals, np.float32).ravel()
        assert arr.nbytes == e - a, k
        b[base + a : base + e] = arr.tobytes()
    open(dst, 'wb').write(bytes(b))


def loadcsv(path):
    """bnn predict's CSV (a header line, then numbers) as a 2-D array."""
    return np.loadtxt(path, delimiter=',', skiprows=1, ndmin=2)


def flatw(t):
    """A one-layer model's parameters in bnn's flat order: the weight row by row, then the bias."""
    return np.concatenate([t['0.weight'].ravel(), t['0.bias'].ravel()])


def with_weights(src, dst, theta, nw):
    """src with its one layer's weights set to theta (nw weights, then the bias); theta as
    saved (float32), which every reference must then be computed at."""
    write(src, dst, {'0.weight': theta[:nw], '0.bias': theta[nw:]})
    return flatw(read(dst)[0])


def rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


def number_after(pattern, out):
    """The number the regular expression's group matches in out; NaN (a failing check) if none."""
    m = re.search(pattern, out)
    return float(m.group(1)) if m else float('nan')


def lml_of(out):
    """The log marginal likelihood bnn laplace printed for the chosen prior."""
    return number_after(r'log ML\s+(\S+) at the chosen prior', out)


def von_lml_of(out):
    """The log marginal likelihood bnn von printed."""
    return number_after(r'log ML\s+(\S+) \(Laplace', out)


def laplace_lml(loglik, H, a, theta):
    """Laplace's log marginal likelihood (laplace-torch's) at prior precision a: the
    log-likelihood at theta minus 1/2 [log det(H + aI) - P log a + a |theta|^2], H the
    likelihood's precision there."""
    P = len(theta)
    return loglik - 0.5 * (
        np.linalg.slogdet(H + a * np.eye(P))[1] - P * np.log(a) + a * theta @ theta
    )


def argmax_log(f, x0):
    """The maximiser of f(*exp(x)) near the logs x0, by refining a grid of 21 points a side."""
    x = np.asarray(x0, float)
    for w in [3, 1, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 3e-4, 1e-4, 3e-5, 1e-5]:
        g = np.linspace(-w, w, 21)
        steps = (np.asarray(d) for d in itertools.product(g, repeat=len(x)))
        x = max(((f(*np.exp(x + d)), tuple(x + d)) for d in steps))[1]
        x = np.asarray(x)
    return np.exp(x)


def check(name, err, tol):
    ok = err <= tol
    print('%-62s err %.2e tol %.2g %s' % (name, err, tol, 'ok' if ok else 'FAIL'))
    if not ok:
        fails.append(name)


def finish():
    print('FAILED: ' + ', '.join(fails) if fails else 'all passed')
    sys.exit(1 if fails else 0)
