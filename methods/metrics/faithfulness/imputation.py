"""ROAD's noisy linear imputation: a removed pixel becomes the weighted mean of its neighbours.

"A Consistent and Efficient Evaluation Strategy for Attribution Methods" (Rong, Leemann, Borisov,
Kasneci, Kasneci, ICML 2022, https://arxiv.org/abs/2202.00449), section 4: replacing removed pixels
by a constant or a blur leaks the removal mask's shape to the model (the "class information
leakage" that makes MoRF and LeRF disagree); ROAD fills them from their surroundings instead.

Let ``R`` be the removed pixels of an (H, W) image and ``N(i)`` the up to 8 neighbours of pixel
``i`` inside the image, with weights ``w = 1/6`` for the 4 direct neighbours and ``w = 1/12`` for
the 4 diagonal ones (they sum to 1 for an interior pixel). Per channel, the imputed values solve

    v_i = sum_{j in N(i)} w_ij v_j / sum_{j in N(i)} w_ij          for every i in R,

where ``v_j`` is the image's own value for a kept neighbour and the unknown ``v_j`` for a removed
one: a sparse linear system ``A v = b`` with one row per removed pixel,
``A_ii = sum_{j in N(i)} w_ij``, ``A_ij = -w_ij`` for removed neighbours and
``b_i = sum_{kept j in N(i)} w_ij x_j`` (one right-hand side per channel, one LU factorisation for
all). It is a discrete Dirichlet problem: every connected group of removed pixels touches a kept
pixel unless ALL pixels are removed, so the system is non-singular for any removal below 100 %.
A linear ramp is reproduced exactly on removed pixels whose 8 neighbours all lie in the image
(the symmetric stencil averages a linear function to its centre value).

Noise: ``x~_i = v_i + sigma * eps_i`` with ``eps_i ~ N(0, 1)`` i.i.d. per removed pixel and
channel, drawn from a seeded ``torch.Generator`` as one contiguous (C, n_removed) float32 block,
removed pixels in ascending flat index: the numbers the authors' ``NoisyLinearImputer`` draws
(``randn_like`` of its transposed ``spsolve`` solution, which is that layout) from the same seed.
``sigma`` is absolute, in the image's own (normalized) units; the authors use 0.01.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from methods._internal.checks import check_number
from methods.errors import InputError

__all__ = ["NEIGHBOURS", "linear_imputation"]

NEIGHBOURS: tuple[tuple[int, int, float], ...] = (
    (-1, -1, 1 / 12),
    (-1, 0, 1 / 6),
    (-1, 1, 1 / 12),
    (0, -1, 1 / 6),
    (0, 1, 1 / 6),
    (1, -1, 1 / 12),
    (1, 0, 1 / 6),
    (1, 1, 1 / 12),
)
"""(row offset, column offset, weight) of the 8 neighbours (ROAD's weights: 1/6 direct, 1/12 diagonal)."""


def _system(removed: np.ndarray, image: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
    """``A`` (n, n) CSC, ``b`` (n, C) and the removed flat indices (n,) for a (H, W) mask and (C, H, W) image."""
    from scipy.sparse import coo_matrix

    h, w = removed.shape
    flat_removed = removed.reshape(-1)
    pixels = image.reshape(image.shape[0], -1)  # (C, H*W)
    unknown = np.flatnonzero(flat_removed)  # (n,) ascending
    n = unknown.size
    var = np.full(h * w, -1, dtype=np.int64)
    var[unknown] = np.arange(n)
    r0, c0 = np.divmod(unknown, w)  # (n,), (n,)
    diag = np.zeros(n)
    b = np.zeros((n, pixels.shape[0]))
    rows, cols, vals = [], [], []
    ids = np.arange(n)
    for dr, dc, weight in NEIGHBOURS:
        rr, cc = r0 + dr, c0 + dc
        inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        who, nb = ids[inside], (rr * w + cc)[inside]
        diag[who] += weight
        gone = flat_removed[nb]
        rows.append(who[gone])
        cols.append(var[nb[gone]])
        vals.append(np.full(int(gone.sum()), -weight))
        b[who[~gone]] += weight * pixels[:, nb[~gone]].T  # each row at most once per offset: no repeats
    rows.append(ids)
    cols.append(ids)
    vals.append(diag)
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsc()
    return a, b, unknown


def linear_imputation(
    x: torch.Tensor, removed: Any, *, noise: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """ROAD's noisy linear imputation of the ``removed`` pixels of one image (module docstring).

    Args:
        x: one image, (C, H, W) or (1, C, H, W), in any (normalized) space; never modified.
        removed: (H, W) boolean mask (tensor or array), True = removed (imputed).
        noise: sigma >= 0 of the Gaussian noise added to the imputed values (0: none).
        generator: the noise's ``torch.Generator`` (CPU); None: a fresh one seeded 0.

    Returns:
        A new tensor of ``x``'s shape, dtype and device: kept pixels unchanged, removed ones imputed.

    Raises:
        InputError: a mask of the wrong shape, or every pixel removed (nothing to impute from).
        OptionError: a negative or non-finite ``noise``.

    Examples:
        >>> img = torch.arange(9.0).view(1, 3, 3)          # a linear ramp 0..8
        >>> mask = torch.zeros(3, 3, dtype=torch.bool); mask[1, 1] = True
        >>> float(linear_imputation(img, mask)[0, 1, 1])  # the weighted mean of its 8 neighbours
        4.0
    """
    sigma = check_number("noise", noise, minimum=0.0)
    squeeze = x.ndim == 3
    img = x[None] if squeeze else x
    if img.ndim != 4 or img.shape[0] != 1:
        raise InputError(f"x must be ONE image, (C, H, W) or (1, C, H, W); got {tuple(x.shape)}")
    _, c, h, w = img.shape
    mask = removed.detach().cpu().numpy() if isinstance(removed, torch.Tensor) else np.asarray(removed)
    if mask.shape != (h, w):
        raise InputError(f"removed must be an (H, W) = {(h, w)} mask; got shape {tuple(mask.shape)}")
    mask = mask.astype(bool)
    out = img.detach().clone()
    n = int(mask.sum())
    if n == 0:
        return out[0] if squeeze else out
    if n == h * w:
        raise InputError(
            "every pixel is removed: linear imputation needs at least one kept pixel; remove a fraction below 1"
        )
    from scipy.sparse.linalg import splu

    a, b, unknown = _system(mask, img[0].detach().double().cpu().numpy())
    values = torch.from_numpy(splu(a).solve(b))  # (n, C) float64
    if sigma > 0:
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        eps = torch.randn((c, n), generator=gen, dtype=torch.float32)  # (C, n)
        values = values + sigma * eps.t().double()  # (n, C)
    flat = out.view(c, h * w) if out.is_contiguous() else out.reshape(c, h * w)
    flat[:, torch.from_numpy(unknown).to(out.device)] = values.t().to(dtype=out.dtype, device=out.device)
    out = flat.view(1, c, h, w)
    return out[0] if squeeze else out
