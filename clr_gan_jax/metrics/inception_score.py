"""Inception Score: exp E_x KL(p(y|x) || p(y)), averaged over splits."""

import numpy as np
import scipy.special


def inception_score(logits: np.ndarray, num_splits: int = 10) -> tuple[float, float]:
    """Mean and standard deviation over ``num_splits`` consecutive splits of (N, C) logits.

    For the FID Inception pass all 1008 logits, without the fc bias (``logits_unbiased``),
    as the original TF code, torch-fidelity and StyleGAN2-ADA do.
    """
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2 or len(logits) < num_splits:
        raise ValueError(f"Inception Score needs (N >= num_splits={num_splits}, C) logits, got {logits.shape}.")
    scores = []
    for part in np.array_split(logits, num_splits):
        log_p = scipy.special.log_softmax(part, axis=1)
        log_marginal = np.log(np.exp(log_p).mean(axis=0))
        kl = (np.exp(log_p) * (log_p - log_marginal)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
