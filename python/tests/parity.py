"""Checks collected activations and the report built from them against Hawthorne's own engine
on the same spec (run by `cargo xtask test`):

    python parity.py NATIVE_REPORT_DIR COLLECTED_DIR COLLECTED_REPORT_DIR

- every probe AUROC (mass-mean, logistic, shuffled labels, best random direction) at every
  hook within 1e-3, and the same compliance gap and misaligned rates;
- each hook's readouts within a relative difference (‖a − b‖ / ‖b‖ over all prompts) of
  RELATIVE_TOLERANCE: the engine and transformers both run float32 on the same dequantised
  weights, and differ only in the order of their sums;
- the answer logits' behaviour scores within SCORE_TOLERANCE.
"""

import json
import sys
from pathlib import Path

import numpy as np

AUROC_TOLERANCE = 1e-3
RELATIVE_TOLERANCE = 1e-4
SCORE_TOLERANCE = 1e-3


def main(native_dir: str, collected_dir: str, report_dir: str) -> int:
    native = json.loads((Path(native_dir) / "report.json").read_text())
    collected = json.loads((Path(report_dir) / "report.json").read_text())
    failures = []

    # Probe AUROCs, hook by hook.
    worst = 0.0
    by_hook = {p["hook"]: p for p in collected["probes"]}
    for p in native["probes"]:
        q = by_hook.get(p["hook"])
        if q is None:
            failures.append(f"{p['hook']}: missing from the collected report")
            continue
        for kind in ("mass_mean", "logistic", "shuffled_labels"):
            a, b = p[kind]["auroc"], q[kind]["auroc"]
            worst = max(worst, abs(a - b))
            if abs(a - b) > AUROC_TOLERANCE:
                failures.append(f"{p['hook']} {kind}: AUROC {a:.6f} natively, {b:.6f} collected")
        a, b = p["random_directions"]["best_auroc"], q["random_directions"]["best_auroc"]
        worst = max(worst, abs(a - b))
        if abs(a - b) > AUROC_TOLERANCE:
            failures.append(f"{p['hook']} random directions: best AUROC {a:.6f} natively, {b:.6f} collected")
    print(f"probe AUROCs at {len(native['probes'])} hooks: largest difference {worst:.2e} (tolerance {AUROC_TOLERANCE:.0e})")

    # Behaviour.
    for key in ("compliance_gap", "rate_observed", "rate_unobserved"):
        a, b = native["behaviour"]["all"][key], collected["behaviour"]["all"][key]
        print(f"{key}: {a:.4f} natively, {b:.4f} collected")
        if a != b:
            failures.append(f"{key}: {a} natively, {b} collected")
    sa = np.array([r["behaviour_score"] for r in native["prompts"]])
    sb = np.array([r["behaviour_score"] for r in collected["prompts"]])
    score_gap = float(np.abs(sa - sb).max())
    print(f"behaviour scores (logit differences): largest difference {score_gap:.2e} (tolerance {SCORE_TOLERANCE:.0e})")
    if score_gap > SCORE_TOLERANCE:
        failures.append(f"behaviour scores differ by up to {score_gap:.2e}")

    # Readouts, hook by hook.
    hooks = (Path(native_dir) / "hooks.txt").read_text().split()
    stacked = np.load(Path(native_dir) / "activations.npy")  # [n_hooks, n_prompts, d]
    worst_rel = 0.0
    for k, h in enumerate(hooks):
        b = stacked[k].astype(np.float64)
        a = np.load(Path(collected_dir) / "activations" / f"{h}.npy").astype(np.float64)
        rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
        worst_rel = max(worst_rel, rel)
        if rel > RELATIVE_TOLERANCE:
            failures.append(f"{h}: relative difference {rel:.2e}")
    print(f"readouts at {len(hooks)} hooks: largest relative difference {worst_rel:.2e} (tolerance {RELATIVE_TOLERANCE:.0e})")

    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
