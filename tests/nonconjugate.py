#!/usr/bin/python3
"""bnn's non-Gaussian likelihoods end to end through the command line, against numpy references
that are exact for tiny models (Gauss-Hermite quadrature, 2-D grid integrals, Newton's method).

Lines named "reference:" check this script's own references, not bnn.
- Bernoulli logistic regression mlp:1-1 (2 parameters), prior N(0, 1/alpha), alpha = 1:
  Laplace full at the numpy MAP: GGN = sum p(1-p) a a^T = the exact Hessian (finite differences),
  log ML = the Laplace formula and within 0.05 nats of the grid-integrated evidence, marglik =
  the maximiser of that formula, EF = sum g g^T, E[ggn-mc] = GGN (seeds);
  GLM predictive: probit = sigmoid(mu/sqrt(1 + pi v/8)); --link-samples and --samples converge to
  the quadrature of int sigmoid(f) N(f; mu, v) df (z-scores);
  VON: at the mean = MAP + GGN; with --mc-samples -> the full-covariance Gaussian VI optimum
  (m: E_q[grad] + alpha m = 0, S = E_q[GGN] + alpha I);
  MFVI and IVON (ess N, delta = alpha/N) -> the mean-field Gaussian VI optimum
  (1/s_j^2 = alpha + sum E_q[sigma'(f)] a_j^2);
  eval: NLL, Brier (multi-class form), ECE (15 right-closed bins) from predict's CSV.
- Softmax mlp:1-2: GGN with diag(p) - pp^T, log ML, and the per-logit probit (laplace-torch's).
- Heteroscedastic Gaussian mlp:1-2: GGN with the Fisher diag(e^-eta, 1/2) (itself checked as
  E_y[output Hessian] by quadrature), log ML, the GLM predictive variance Sigma_mumu +
  exp(eta + Sigma_etaeta/2).
usage: nonconjugate.py BNN WORKDIR (tests/cli_reference.sh runs it); exits 1 on any failure.
Seeded; numpy only; about 4 s."""
import json
import sys

import numpy as np

from refcheck import argmax_log, check, finish, flatw, laplace_lml, lml_of
from refcheck import loadcsv, read, rel, run, start, with_weights

start(sys.argv)


def sig(f):
    return 0.5 * (1 + np.tanh(0.5 * f))


def softplus(f):
    return np.maximum(f, 0) + np.log1p(np.exp(-np.abs(f)))


GX, GW = np.polynomial.hermite_e.hermegauss(80)
GW = GW / GW.sum()


def gexp(fn, mu, var):  # E[fn(f)], f ~ N(mu, var), elementwise
    mu = np.asarray(mu, float)[..., None]
    sd = np.sqrt(np.asarray(var, float))[..., None]
    return (fn(mu + sd * GX) * GW).sum(-1)


def probit(mu, v):
    return sig(mu / np.sqrt(1 + np.pi * v / 8))


def paths(name, mdl, H):  # the generic (all) and the last-layer code paths, full and diag
    for sub in ('all', 'last-layer'):
        for hs, key, ref in (('full', 'laplace.dense', H), ('diag', 'laplace.diag', np.diag(H))):
            if sub == 'all' and hs == 'full':
                continue  # laplace_full's own
            run(f'laplace -m {mdl} --subset {sub} --hessian {hs} --prior 1 -o lp.st')
            check(
                '%s laplace %s %s: GGN' % (name, sub, hs),
                rel(read('lp.st')[0][key], ref),
                1e-6,
            )


def laplace_full(name, model, dst, ref, what):
    """bnn laplace over all weights of model, full, prior 1, saved to dst: its curvature against
    ref (and the other subsets and structures against it, paths); returns the output."""
    out = run(f'laplace -m {model} --subset all --hessian full --prior 1 -o {dst}')
    check(f'{name} laplace: dense = {what}', rel(read(dst)[0]['laplace.dense'], ref), 1e-6)
    paths(name, model, ref)
    return out


# ------------------------------------------------------------ Bernoulli, mlp:1-1
rng = np.random.default_rng(0)
N, alpha = 30, 1.0
x = (1.5 * rng.standard_normal(N)).astype(np.float32)
y = (rng.random(N) < sig(2 * x + 0.5)).astype(np.int64)
np.save('X.npy', x.reshape(-1, 1))
np.save('y.npy', y)
xt = np.linspace(-4, 4, 9).astype(np.float32)
np.save('Xt.npy', xt.reshape(-1, 1))
xe = (2 * rng.standard_normal(300)).astype(np.float32)
ye = (rng.random(300) < sig(2 * xe + 0.5)).astype(np.int64)
np.save('Xe.npy', xe.reshape(-1, 1))
np.save('ye.npy', ye)
x, y, xt = x.astype(float), y.astype(float), xt.astype(float)
A = np.stack([x, np.ones(N)], 1)
At = np.stack([xt, np.ones(len(xt))], 1)
B = '--data npy:X.npy,y.npy --task classification --lik bernoulli --model mlp:1-1 -q'


def nll(th):
    f = A @ th
    return np.sum(softplus(f) - y * f)


def ggn(th):
    p = sig(A @ th)
    return (A * (p * (1 - p))[:, None]).T @ A


th = np.zeros(2)
for _ in range(50):
    th = th - np.linalg.solve(ggn(th) + alpha * np.eye(2), A.T @ (sig(A @ th) - y) + alpha * th)
run('train', B, '--epochs 0 -o m0.st')
th32 = with_weights('m0.st', 'map.st', th, 1)
G = ggn(th32)
out = laplace_full('bernoulli', 'map.st', 'la.st', G, 'sum p(1-p) a a^T')
h = 1e-4
E2 = np.eye(2) * h
Hfd = np.array(
    [
        [
            (
                nll(th32 + E2[i] + E2[j])
                - nll(th32 + E2[i] - E2[j])
                - nll(th32 - E2[i] + E2[j])
                + nll(th32 - E2[i] - E2[j])
            )
            / (4 * h * h)
            for j in range(2)
        ]
        for i in range(2)
    ]
)
# for a linear logistic model the GGN is the exact Hessian: bnn's against differences of the NLL
check(
    'bernoulli laplace: dense = exact Hessian (finite differences)',
    rel(read('la.st')[0]['laplace.dense'], Hfd),
    1e-5,
)


def lap(a):
    return laplace_lml(-nll(th32), G, a, th32)


check('bernoulli laplace: log ML = Laplace formula (nats)', abs(lml_of(out) - lap(1.0)), 1e-3)
g = np.linspace(-10, 10, 801)
Wg, Bg = np.meshgrid(g, g, indexing='ij')
ll = np.log(alpha / (2 * np.pi)) - 0.5 * alpha * (Wg**2 + Bg**2)
for i in range(N):
    F = Wg * x[i] + Bg
    ll -= softplus(F) - y[i] * F
mx = ll.max()
ev = mx + np.log(np.exp(ll - mx).sum() * (g[1] - g[0]) ** 2)
check('bernoulli laplace: log ML vs exact evidence (grid; N=30)', abs(lml_of(out) - ev), 0.05)
(a_,) = argmax_log(lap, [0.0])
run('laplace -m map.st --subset all --hessian full --steps 2000 -o lam.st')
check(
    'bernoulli laplace marglik: prior precision',
    abs(float(read('lam.st')[1]['bnn.laplace.prior_prec']) / a_ - 1),
    1e-5,
)
gr = A * (sig(A @ th32) - y)[:, None]
EF = gr.T @ gr
run('laplace -m map.st --subset all --hessian full --curvature ef --prior 1 -o lae.st')
check(
    'bernoulli laplace ef: sum g g^T',
    rel(read('lae.st')[0]['laplace.dense'], EF),
    1e-6,
)
Ds = []
for s in range(20):
    run(
        'laplace -m map.st --subset all --hessian full --curvature ggn-mc --prior 1',
        f'-s {s} -o lamc.st',
    )
    Ds.append(read('lamc.st')[0]['laplace.dense'])
Ds = np.array(Ds)
p = sig(A @ th32)
sd1 = np.sqrt(
    np.einsum('n,ni,nj,ni,nj->ij', p * (1 - p) * (1 - 2 * p) ** 2, A, A, A, A)
)  # sd of one draw
check(
    'bernoulli ggn-mc: mean of 20 seeds = GGN (max |z|)',
    np.abs((Ds.mean(0) - G) / (sd1 / np.sqrt(20))).max(),
    4.0,
)
# GLM predictive
S = np.linalg.inv(G + alpha * np.eye(2))
mu = At @ th32
v = np.einsum('ni,ij,nj->n', At, S, At)
pex = gexp(sig, mu, v)
sdp = np.sqrt(gexp(lambda f: sig(f) ** 2, mu, v) - pex**2)
run('predict -m la.st --input Xt.npy -o p.csv -q')
check(
    'bernoulli predict: probit = sigmoid(mu/sqrt(1+pi v/8))',
    np.abs(loadcsv('p.csv')[:, 1] - probit(mu, v)).max(),
    1e-6,
)
for opt in ('--link-samples', '--samples'):
    run(f'predict -m la.st --input Xt.npy -o p.csv {opt} 20000 -q')
    check(
        'bernoulli predict %s 20000 -> quadrature (max |z|)' % opt,
        np.abs((loadcsv('p.csv')[:, 1] - pex) / (sdp / np.sqrt(20000))).max(),
        4.5,
    )
# VON: at the mean = MAP + GGN; with MC -> full-covariance VI optimum
run('von -m m0.st --steps 20 --prior-precision 1 -o von0.st')
t, _ = read('von0.st')
check('bernoulli von (at the mean): mean = MAP', rel(flatw(t), th), 1e-5)
check(
    'bernoulli von (at the mean): precision = GGN + alpha',
    rel(t['laplace.dense'], G),
    1e-5,
)
m = th.copy()
Sp = G + alpha * np.eye(2)
for _ in range(200):
    C = np.linalg.inv(Sp)
    mu_ = A @ m
    v_ = np.einsum('ni,ij,nj->n', A, C, A)
    gv = A.T @ (gexp(sig, mu_, v_) - y) + alpha * m
    Sp = (A * gexp(lambda f: sig(f) * (1 - sig(f)), mu_, v_)[:, None]).T @ A + alpha * np.eye(2)
    m = m - np.linalg.solve(Sp, gv)
run('von -m m0.st --prior-precision 1 --mc-samples 300 --rho 0.3 --steps 60 -o vonmc.st')
t, _ = read('vonmc.st')
sdq = np.sqrt(np.diag(np.linalg.inv(Sp)))
check(
    'bernoulli von (MC): mean -> VI optimum (in posterior sds)',
    np.abs((flatw(t) - m) / sdq).max(),
    0.08,
)
check(
    'bernoulli von (MC): precision -> E_q[GGN] + alpha',
    rel(t['laplace.dense'] + alpha * np.eye(2), Sp),
    0.01,
)
# of the reference, not bnn: the VI optimum is at least 0.1 sds from Laplace's mean, so the two
# checks above tell them apart (err: 0.1 over the distance)
check('reference: the VI optimum is not the MAP', 0.1 / np.abs((m - th) / sdq).max(), 1.0)
# MFVI and IVON -> mean-field optimum
m = th.copy()
s2 = np.ones(2) * 0.1
for _ in range(300):
    mu_, v_ = A @ m, (A**2) @ s2
    Eh = gexp(lambda f: sig(f) * (1 - sig(f)), mu_, v_)
    m = m - 0.7 * np.linalg.solve(
        (A * Eh[:, None]).T @ A + alpha * np.eye(2), A.T @ (gexp(sig, mu_, v_) - y) + alpha * m
    )
    s2 = 1 / ((A**2).T @ Eh + alpha)
sdm = np.sqrt(s2)


def meanfield(name, path, tol_mean, tol_sd):
    """A diagonal-Gaussian posterior file against the mean-field optimum (m, sdm)."""
    t, _ = read(path)
    check(
        f'bernoulli {name}: mean (in posterior sds)', np.abs((flatw(t) - m) / sdm).max(), tol_mean
    )
    check(
        f'bernoulli {name}: std = mean-field optimum',
        np.abs(t['posterior.std'].ravel() / sdm - 1).max(),
        tol_sd,
    )


run(
    'train',
    B,
    '--method mfvi --prior-precision 1 --batch-size 30 --epochs 5000 --lr 0.01',
    '--lr-schedule cosine --mc-samples 16 -o mf.st',
)
meanfield('mfvi', 'mf.st', 0.02, 0.003)
run(
    'train',
    B,
    f'--method ivon --weight-decay {alpha / N!r} --beta2 0.999 --batch-size 30',
    '--epochs 20000 --lr 0.2 --lr-schedule cosine --mc-samples 8 -o iv.st',
)
meanfield('ivon', 'iv.st', 0.03, 0.015)
# eval metrics from predict's CSV
run('eval -m la.st --data npy:Xe.npy,ye.npy --json e.json')
run('predict -m la.st --data npy:Xe.npy,ye.npy -o pe.csv -q')
e = json.load(open('e.json'))
P = loadcsv('pe.csv')[:, :2]
n = len(ye)
conf = P.max(1)
hit = P.argmax(1) == ye
b = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)
ece = sum(
    abs(hit[b == i].mean() - conf[b == i].mean()) * (b == i).mean()
    for i in range(15)
    if (b == i).any()
)
check('bernoulli eval: NLL', abs(e['nll'] + np.mean(np.log(P[np.arange(n), ye]))), 1e-7)
check(
    'bernoulli eval: Brier (sum over both classes)',
    abs(e['brier'] - np.mean(((P - np.eye(2)[ye]) ** 2).sum(1))),
    1e-7,
)
check('bernoulli eval: ECE (15 bins)', abs(e['ece'] - ece), 1e-7)


# ------------------------------------------------------------ softmax and heteroscedastic, mlp:1-2
def J(xx):  # theta = [w0, w1, b0, b1]: f_k = w_k x + b_k
    Jm = np.zeros((len(xx), 2, 4))
    Jm[:, 0, 0] = Jm[:, 1, 1] = xx
    Jm[:, 0, 2] = Jm[:, 1, 3] = 1
    return Jm


Jx, Jt = J(x), J(xt)
yi = y.astype(int)


def logits(t, xx):
    return np.stack([t[0] * xx + t[2], t[1] * xx + t[3]], 1)


def smax(F):
    e_ = np.exp(F - F.max(1, keepdims=True))
    return e_ / e_.sum(1, keepdims=True)


def sggn(t):
    P = smax(logits(t, x))
    L = np.einsum('nk,kl->nkl', P, np.eye(2)) - np.einsum('nk,nl->nkl', P, P)
    return np.einsum('nki,nkl,nlj->ij', Jx, L, Jx), P


ts = np.zeros(4)
for _ in range(50):
    Gs, P = sggn(ts)
    ts = ts - np.linalg.solve(
        Gs + alpha * np.eye(4), np.einsum('nki,nk->i', Jx, P - np.eye(2)[yi]) + alpha * ts
    )
run('train --data npy:X.npy,y.npy --task classification --model mlp:1-2 --epochs 0 -q', '-o s0.st')
ts = with_weights('s0.st', 'smap.st', ts, 2)
Gs, P = sggn(ts)
out = laplace_full('softmax', 'smap.st', 'sla.st', Gs, 'sum J^T (diag p - pp^T) J')
F = logits(ts, x)
lls = np.sum(F[np.arange(N), yi] - np.log(np.exp(F).sum(1)))
check(
    'softmax laplace: log ML = Laplace formula (nats)',
    abs(lml_of(out) - laplace_lml(lls, Gs, 1.0, ts)),
    1e-3,
)
V = np.einsum('nki,ij,nlj->nkl', Jt, np.linalg.inv(Gs + np.eye(4)), Jt)
run('predict -m sla.st --input Xt.npy -o sp.csv -q')
check(
    'softmax predict: per-logit probit (laplace-torch)',
    np.abs(
        loadcsv('sp.csv')[:, :2]
        - smax(logits(ts, xt) / np.sqrt(1 + np.pi / 8 * np.einsum('nkk->nk', V)))
    ).max(),
    1e-6,
)
# heteroscedastic
rng = np.random.default_rng(3)
Nh = 60
xh = rng.uniform(-2, 2, Nh).astype(np.float32)
yh = (0.5 * xh + np.exp(0.5 * (0.8 * xh - 1.5)) * rng.standard_normal(Nh)).astype(np.float32)
np.save('hX.npy', xh.reshape(-1, 1))
np.save('hy.npy', yh)
xh, yh = xh.astype(float), yh.astype(float)
Jh = J(xh)


def hnll(t):
    mu_, eta = t[0] * xh + t[2], t[1] * xh + t[3]
    return np.sum(0.5 * np.log(2 * np.pi) + 0.5 * eta + 0.5 * (yh - mu_) ** 2 * np.exp(-eta))


def hfisher(t):
    L = np.zeros((Nh, 2, 2))
    L[:, 0, 0] = np.exp(-(t[1] * xh + t[3]))
    L[:, 1, 1] = 0.5
    return np.einsum('nki,nkl,nlj->ij', Jh, L, Jh)


def hgrad(t):
    mu_, eta = t[0] * xh + t[2], t[1] * xh + t[3]
    r = yh - mu_
    w = np.exp(-eta)
    return np.einsum('nki,nk->i', Jh, np.stack([-r * w, 0.5 - 0.5 * r**2 * w], 1))


m0, e0, hh = 0.3, -0.7, 1e-3  # the Fisher diag(e^-eta, 1/2) = E_y[output Hessian of the NLL]


def nl1(a, c, yy):
    return 0.5 * (e0 + c) + 0.5 * (yy - m0 - a) ** 2 * np.exp(-(e0 + c))


def hess1(yy):
    return np.array(
        [
            [
                (nl1(hh, 0, yy) - 2 * nl1(0, 0, yy) + nl1(-hh, 0, yy)) / hh**2,
                (nl1(hh, hh, yy) - nl1(hh, -hh, yy) - nl1(-hh, hh, yy) + nl1(-hh, -hh, yy))
                / (4 * hh * hh),
            ],
            [0, (nl1(0, hh, yy) - 2 * nl1(0, 0, yy) + nl1(0, -hh, yy)) / hh**2],
        ]
    )


EH = sum(w_ * hess1(m0 + np.exp(0.5 * e0) * z) for w_, z in zip(GW, GX))
EH[1, 0] = EH[0, 1]
check(
    'reference: hetero E_y[output Hessian] = diag(e^-eta, 1/2)',
    np.abs(EH - np.diag([np.exp(-e0), 0.5])).max(),
    1e-5,
)
tht = np.zeros(4)
for _ in range(100):
    tht = tht - np.linalg.solve(hfisher(tht) + alpha * np.eye(4), hgrad(tht) + alpha * tht)
run(
    'train --data npy:hX.npy,hy.npy --lik hetero-gaussian --model mlp:1-2 --epochs 0 -q', '-o h0.st'
)
tht = with_weights('h0.st', 'hmap.st', tht, 2)
Fi = hfisher(tht)
out = laplace_full('hetero', 'hmap.st', 'hla.st', Fi, 'sum J^T diag(e^-eta, 1/2) J')
check(
    'hetero laplace: log ML = Laplace formula (nats)',
    abs(lml_of(out) - laplace_lml(-hnll(tht), Fi, 1.0, tht)),
    1e-3,
)
V = np.einsum('nki,ij,nlj->nkl', Jt, np.linalg.inv(Fi + np.eye(4)), Jt)
run('predict -m hla.st --input Xt.npy -o hp.csv -q')
Q = loadcsv('hp.csv')
check('hetero predict: mean', np.abs(Q[:, 0] - (tht[0] * xt + tht[2])).max(), 1e-6)
vq = V[:, 0, 0] + gexp(np.exp, tht[1] * xt + tht[3], V[:, 1, 1])  # Var[mu] + E[e^eta] by quadrature
check('hetero predict: var = Var[mu] + E[e^eta]', np.abs(Q[:, 1] / vq - 1).max(), 1e-6)
finish()
