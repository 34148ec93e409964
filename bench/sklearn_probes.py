#!/usr/bin/env python3
"""scikit-learn side of the probe benchmark: the same synthetic 30 x 400 x 576 data as
crates/probe/benches/probes.rs, StandardScaler + LogisticRegression(C=1) fit per layer.
Prints the median wall time of 5 runs. Run with OMP_NUM_THREADS=1 for a single-core ratio."""
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

LAYERS, N, D = 30, 400, 576
i = np.arange(N)[:, None]
j = np.arange(D)[None, :]
y = (np.arange(N) % 2 == 1)
data = []
for l in range(LAYERS):
    x = np.sin(0.37 * i + 1.3 * j + 0.11 * l) + np.where(y[:, None], 0.3 * np.cos(0.05 * j), 0.0)
    data.append(x)
train = [k for k in range(N) if k % 4 != 0]

times = []
for _ in range(5):
    t0 = time.perf_counter()
    for x in data:
        s = StandardScaler().fit(x[train])
        LogisticRegression(C=1.0, max_iter=200).fit(s.transform(x[train]), y[train])
    times.append(time.perf_counter() - t0)
print(f"sklearn logistic fit, 30 layers x 400 x 576: median {np.median(times) * 1000:.1f} ms")
