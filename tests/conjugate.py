#!/usr/bin/python3
"""bnn's Bayesian methods against the closed form of Bayesian linear regression, end to end
through the command line (tests/cli_reference.sh runs it; about 4 s).

Model y = Xθ + b + ε, ε ~ N(0, σ²), prior N(0, 1/α): the posterior is exact, N(μ, Λ⁻¹) with
Λ = XᵀX/σ² + αI (X with a column of ones for the bias). What each method must give there:
- Laplace over all weights of a linear model at the MAP: full is exact (Λ, the evidence), diag
  and kron the diagonal and the weight/bias blocks of XᵀX (at σ = 1, README "laplace"); marglik
  the maximiser of the Laplace log marginal likelihood at the fixed MAP (laplace-torch's
  objective; not the evidence's maximiser, as θ does not move); the GLM predictive xᵀμ and
  σ² + xᵀΛ⁻¹x; lowrank with every pair kept = full; the empirical Fisher Σ_n (r_n/σ²)² x xᵀ
  (it scales as 1/σ⁴) in full, diag and kron; the sampled Fisher's mean over seeds = XᵀX.
- VON: one step with ρ = 1 from the prior lands on N(μ, Λ⁻¹), and the log marginal likelihood
  it prints is the evidence.
- Mean-field VI: its optimum has means μ and variances 1/Λ_ii (the ELBO's mean-field solution
  for a Gaussian likelihood).
- IVON with λ = N: m → μ with α = Nδ, h → diag(XᵀX)/(Nσ²), so 1/(λ(h + δ)) → 1/Λ_ii.
The stochastic ones (MFVI, IVON, the sampled Fisher) are seeded runs, reproducible within a build, with a margin of
about 3x over the spread of seeds 0-2. usage: conjugate.py BNN WORKDIR; exits 1 on any failure."""
import json
import sys

import numpy as np

from refcheck import argmax_log, check, finish, flatw, laplace_lml, lml_of
from refcheck import loadcsv, read, rel, run, start, von_lml_of

start(sys.argv)


def glm_var(S):
    """The GLM predictive variance at the test inputs for posterior covariance S."""
    return sig**2 + np.einsum('ij,jk,ik->i', Xta, S, Xta)


# Data: N = 400, 3 correlated features, sigma 0.5; 50 test points.
rng = np.random.default_rng(1)
N, D, sig = 400, 3, 0.5
L = np.linalg.cholesky(np.array([[1, 0.8, 0.5], [0.8, 1, 0.6], [0.5, 0.6, 1.0]]))
X = (rng.standard_normal((N, D)) @ L.T + [0.5, -0.3, 0.2]).astype(np.float32)
y = (X @ [1.0, -0.7, 0.4] + 0.3 + sig * rng.standard_normal(N)).astype(np.float32)
Xt = (rng.standard_normal((50, D)) @ L.T * 1.5).astype(np.float32)
yt = (Xt @ [1.0, -0.7, 0.4] + 0.3 + sig * rng.standard_normal(50)).astype(np.float32)
for f, a in (('X', X), ('y', y), ('Xt', Xt), ('yt', yt)):
    np.save(f + '.npy', a)
Xa = np.hstack([X.astype(np.float64), np.ones((N, 1))])
Xta = np.hstack([Xt.astype(np.float64), np.ones((50, 1))])
y, yt = y.astype(np.float64), yt.astype(np.float64)
G = Xa.T @ Xa


def post(alpha):
    """The exact posterior's precision, covariance and mean at prior precision alpha."""
    Lam = G / sig**2 + alpha * np.eye(4)
    S = np.linalg.inv(Lam)
    return Lam, S, S @ Xa.T @ y / sig**2


def evidence(alpha, s=sig):
    K = s**2 * np.eye(N) + Xa @ Xa.T / alpha
    return -0.5 * (y @ np.linalg.solve(K, y) + np.linalg.slogdet(K)[1] + N * np.log(2 * np.pi))


C = '--data npy:X.npy,y.npy --task regression --model mlp:3-1 --noise 0.5 -q'
Lam, S, mu = post(1.0)

# MAP by SGD with weight decay 1/N: alpha = N wd = 1.
run(
    'train',
    C,
    '--method sgd --weight-decay 0.0025 --lr 0.05 --batch-size 400 --epochs 3000',
    '-o sgd.st',
)
th = flatw(read('sgd.st')[0])
check('sgd MAP = posterior mean (alpha = N wd)', rel(th, mu), 1e-6)

# Laplace full / diag / kron over all weights, prior 1.
LA = 'laplace -m sgd.st --subset all'
out = run(LA, '--hessian full --prior 1 -o la.st')
t, _ = read('la.st')
check(
    'laplace full: covariance = Sigma',
    rel(np.linalg.inv(t['laplace.dense'] / sig**2 + np.eye(4)), S),
    1e-10,
)
check('laplace full: log ML = exact evidence (nats)', abs(lml_of(out) - evidence(1.0)), 1e-3)
run(LA, '--hessian diag --prior 1 -o lad.st')
check(
    'laplace diag: diag(X^T X)',
    np.abs(read('lad.st')[0]['laplace.diag'] / np.diag(G) - 1).max(),
    1e-6,
)
run(LA, '--hessian lowrank --rank 4 --prior 1 -o lal.st')
t, _ = read('lal.st')
Ul, el = t['laplace.lowrank.U'], t['laplace.lowrank.eig']
check('laplace lowrank, all 4 pairs: U diag(eig) U^T = X^T X', rel((Ul * el) @ Ul.T, G), 1e-6)
run(LA, '--hessian kron --prior 1 -o lak.st')
t, _ = read('lak.st')
Hk = np.zeros((4, 4))
Hk[:3, :3] = t['laplace.b0.f0'][0, 0] * t['laplace.b0.f1']
Hk[3, 3] = t['laplace.b1.f0'][0, 0]
Gb = G.copy()
Gb[:3, 3] = Gb[3, :3] = 0
check('laplace kron: blockdiag(X^T X) (W, b blocks)', np.abs(Hk - Gb).max() / np.abs(G).max(), 1e-6)

# marglik: the maximiser of the Laplace log ML at the fixed MAP (laplace-torch's objective).
r = y - Xa @ th


def lap(a, s, H=G, p=1):
    """The Laplace log ML at prior a and noise s for curvature H scaled by 1/s^(2p)."""
    loglik = -0.5 * r @ r / s**2 - N * np.log(s * np.sqrt(2 * np.pi))
    return laplace_lml(loglik, H / s ** (2 * p), a, th)


a_, s_ = argmax_log(lap, [0.0, np.log(sig)])
run(LA, '--hessian full --steps 2000 -o lam.st')
m = read('lam.st')[1]
check('laplace marglik: prior precision', abs(float(m['bnn.laplace.prior_prec']) / a_ - 1), 1e-3)
check('laplace marglik: noise sigma', abs(float(m['bnn.laplace.sigma']) / s_ - 1), 1e-4)

# The GLM predictive and eval's NLL.
run('predict -m la.st --input Xt.npy -o p.csv -q')
p = loadcsv('p.csv')
mean, var = Xta @ mu, glm_var(S)
check('predict: mean = x^T mu', rel(p[:, 0], mean), 1e-6)
check('predict: var = sigma^2 + x^T Sigma x', np.abs(p[:, 1] / var - 1).max(), 1e-6)
run('eval -m la.st --data npy:Xt.npy,yt.npy --json e.json')
nll = np.mean(0.5 * np.log(2 * np.pi * var) + 0.5 * (yt - mean) ** 2 / var)
check('eval: Gaussian NLL', abs(json.load(open('e.json'))['nll'] / nll - 1), 1e-6)

# VON: one step from an untrained linear model.
run('train', C, '--epochs 0 -o m0.st')
out = run('von -m m0.st --steps 1 --prior-precision 1 -o von.st')
check(
    'von: log ML = exact evidence (nats)',
    abs(von_lml_of(out) - evidence(1.0)),
    1e-3,
)
t, _ = read('von.st')
check('von: mean', rel(flatw(t), mu), 1e-5)
check('von: covariance', rel(np.linalg.inv(t['laplace.dense'] / sig**2 + np.eye(4)), S), 1e-5)

# The empirical Fisher of the sigma-likelihood: the per-example gradients are x r / sigma^2, so
# EF = sum_n (r_n / sigma^2)^2 x x^T, which scales as 1/sigma^4 (not 1/sigma^2 as a GGN).
Gef = (Xa * (r**2)[:, None]).T @ Xa
out = run(LA, '--hessian full --curvature ef --prior 1 -o lae.st')
run('predict -m lae.st --input Xt.npy -o pe.csv -q')
pe = loadcsv('pe.csv')
check(
    'laplace ef: var = sigma^2 + x^T (EF + I)^-1 x',
    np.abs(pe[:, 1] / glm_var(np.linalg.inv(Gef / sig**4 + np.eye(4))) - 1).max(),
    1e-6,
)
check('laplace ef: log ML (nats)', abs(lml_of(out) - lap(1.0, sig, Gef, 2)), 1e-3)
# diag: the EF's diagonal, through the GLM predictive's own (diagonal) path
run(LA, '--hessian diag --curvature ef --prior 1 -o laed.st')
run('predict -m laed.st --input Xt.npy -o ped.csv -q')
ped = loadcsv('ped.csv')
vd = sig**2 + (Xta**2 / (np.diag(Gef) / sig**4 + 1.0)).sum(axis=1)
check('laplace ef diag: var = sigma^2 + sum x_i^2 / prec_i', np.abs(ped[:, 1] / vd - 1).max(), 1e-6)
# kron: KFAC of the EF (B = sum r^2, A = X^T X / N for the weights, B for the bias), scaled alike
run(LA, '--hessian kron --curvature ef --prior 1 -o laek.st')
run('predict -m laek.st --input Xt.npy -o pek.csv -q')
Hek = np.zeros((4, 4))
Hek[:3, :3] = (r @ r) * (Xa[:, :3].T @ Xa[:, :3]) / N
Hek[3, 3] = r @ r
check(
    'laplace ef kron: var = sigma^2 + x^T (KFAC(EF) + I)^-1 x',
    np.abs(loadcsv('pek.csv')[:, 1] / glm_var(np.linalg.inv(Hek / sig**4 + np.eye(4))) - 1).max(),
    1e-6,
)
a_, s_ = argmax_log(lambda a, s: lap(a, s, Gef, 2), [0.0, np.log(sig)])
run(LA, '--hessian full --curvature ef --steps 2000 -o laem.st')
m = read('laem.st')[1]
check('laplace ef marglik: prior precision', abs(float(m['bnn.laplace.prior_prec']) / a_ - 1), 1e-3)
check('laplace ef marglik: noise sigma', abs(float(m['bnn.laplace.sigma']) / s_ - 1), 1e-4)

# The sampled Fisher (ggn-mc): per example eps^2 x x^T with eps ~ N(0, 1), whose mean is the GGN
# X^T X (sigma cancels) and whose entries have variance 2 sum x_i^2 x_j^2; 20 seeds.
Hmc = []
for k in range(20):
    run(LA, f'--hessian full --curvature ggn-mc --prior 1 -s {k} -o lamc.st')
    Hmc.append(read('lamc.st')[0]['laplace.dense'])
sd1 = np.sqrt(2 * (Xa**2).T @ (Xa**2))
check(
    'laplace ggn-mc: mean of 20 seeds = X^T X (max |z|)',
    np.abs((np.mean(Hmc, axis=0) - G) / (sd1 / np.sqrt(20))).max(),
    4.0,
)

# Mean-field VI: optimum m = mu, std = 1/sqrt(Lam_ii) (prior 500, mini-batches).
run(
    'train',
    C,
    '--method mfvi --prior-precision 500 --batch-size 100 --epochs 5000 --lr 0.01',
    '--lr-schedule cosine --mc-samples 16 -o mf.st',
)
t, _ = read('mf.st')
L5, _, mu5 = post(500.0)
sd5 = 1 / np.sqrt(np.diag(L5))
check('mfvi: mean (in posterior stds)', np.abs((flatw(t) - mu5) / sd5).max(), 0.05)
check('mfvi: std = 1/sqrt(Lam_ii)', np.abs(t['posterior.std'].ravel() / sd5 - 1).max(), 0.02)

# IVON: m = mu, std = 1/sqrt(N (h + delta)) -> 1/sqrt(Lam_ii), alpha = N delta (ess = N).
run(
    'train',
    C,
    '--method ivon --weight-decay 0.0025 --beta2 0.999 --batch-size 400',
    '--epochs 20000 --lr 0.2 --lr-schedule cosine --mc-samples 8 -o iv.st',
)
t, _ = read('iv.st')
sd1 = 1 / np.sqrt(np.diag(Lam))
check('ivon: mean (in posterior stds)', np.abs((flatw(t) - mu) / sd1).max(), 0.05)
check(
    'ivon: h = diag(X^T X)/(N sigma^2)',
    np.abs(t['ivon.hess'].ravel() / (np.diag(G) / (N * sig**2)) - 1).max(),
    0.04,
)
check('ivon: std = 1/sqrt(Lam_ii)', np.abs(t['posterior.std'].ravel() / sd1 - 1).max(), 0.02)

finish()
