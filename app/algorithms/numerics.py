"""Small shared numerics of natural-gradient methods: flat parameters, conjugate
gradient, Fisher-vector products and the backtracking line search."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn


def flat_params(params: Sequence[nn.Parameter]) -> Tensor:
    """Concatenate parameters into one vector [P]."""
    return torch.cat([p.detach().reshape(-1) for p in params])


def set_flat_params(params: Sequence[nn.Parameter], flat: Tensor) -> None:
    """Write the vector flat [P] back into the parameters, in order."""
    offset = 0
    with torch.no_grad():
        for p in params:
            n = p.numel()
            p.copy_(flat[offset : offset + n].view_as(p))
            offset += n


def flat_grad(output: Tensor, params: Sequence[nn.Parameter], create_graph: bool = False) -> Tensor:
    """d output / d params as one vector [P] (zeros for unused parameters)."""
    grads = torch.autograd.grad(output, params, create_graph=create_graph, allow_unused=True)
    return torch.cat(
        [(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params, strict=True)]
    )


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, iters: int, tol: float = 1e-10) -> Tensor:
    """Solve A x = b for symmetric positive definite A given only v -> A v.

    Standard CG from x_0 = 0: r_0 = p_0 = b;
    alpha_k = r_k.r_k / p_k.A p_k,  x += alpha p,  r -= alpha A p,
    beta_k = r_{k+1}.r_{k+1} / r_k.r_k,  p = r + beta p.
    Stops after ``iters`` steps or when r.r < tol. b, x: [P].
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r.dot(r)
    for _ in range(iters):
        if rr < tol:
            break
        Ap = matvec(p)
        alpha = rr / p.dot(Ap)
        x += alpha * p
        r -= alpha * Ap
        rr_next = r.dot(r)
        p = r + (rr_next / rr) * p
        rr = rr_next
    return x


def fisher_vector_product(
    kl: Callable[[], Tensor], params: Sequence[nn.Parameter], v: Tensor, damping: float
) -> Tensor:
    """(F + damping I) v by double backpropagation through the mean KL.

    F = Hessian of KL(pi_old || pi_theta) at theta = theta_old, and
    F v = grad_theta ( grad_theta KL . v ). ``kl`` recomputes the mean KL with
    the old distribution detached. v, result: [P].
    """
    grad_kl = flat_grad(kl(), params, create_graph=True)
    return flat_grad(grad_kl.dot(v), params).detach() + damping * v


@dataclass(frozen=True)
class LineSearchResult:
    accepted: bool  # a step was taken
    step_fraction: float  # shrink^i of the accepted try (0 when none)
    tries: int  # how many candidate steps were evaluated
    improvement: float  # surrogate gain of the accepted step (0 when none)
    kl: float  # mean KL of the accepted step (0 when none)


def backtracking_line_search(
    params: Sequence[nn.Parameter],
    full_step: Tensor,
    evaluate: Callable[[], tuple[float, float]],
    surrogate_before: float,
    max_kl: float,
    shrink: float = 0.8,
    max_tries: int = 10,
) -> LineSearchResult:
    """TRPO's line search (seed lecture 002, Algorithm 3).

    Tries theta = theta_k + shrink^i * full_step for i = 0..max_tries-1 and
    accepts the first with mean KL <= max_kl and surrogate L(theta_k, theta)
    above ``surrogate_before``. ``evaluate`` returns (surrogate, kl) at the
    current parameters. If no try is accepted the old parameters are restored.
    """
    old = flat_params(params)
    fraction = 1.0
    for i in range(max_tries):
        set_flat_params(params, old + fraction * full_step)
        surrogate, kl = evaluate()
        improvement = surrogate - surrogate_before
        finite = torch.isfinite(torch.tensor([surrogate, kl])).all().item()
        if finite and kl <= max_kl and improvement > 0:
            return LineSearchResult(True, fraction, i + 1, improvement, kl)
        fraction *= shrink
    set_flat_params(params, old)
    return LineSearchResult(False, 0.0, max_tries, 0.0, 0.0)
