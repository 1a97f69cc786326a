"""Small shared numerics of natural-gradient methods: flat parameters, conjugate
gradient, Fisher-vector products and the backtracking line search."""

from __future__ import annotations

import math
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


class LinearizedMLP:
    """Products with J = d net(x) / d theta, the Jacobian of a Linear-activation-...-Linear net at fixed x [B, in].

    One forward pass keeps each Linear layer's input h_l [B, n_l] and, after it, the
    elementwise activation's derivative D_l = act'(z_l) [B, n_{l+1}] (z_l = h_l W_l^T + b_l). Then

        J v:    dz_l = h_l dW_l^T + db_l + dh_l W_l^T,  dh_{l+1} = D_l * dz_l,  dh_0 = 0,  J v = dz_last
        J^T u:  g_last = u;  dW_l = g_l^T h_l,  db_l = sum_b g_l,  g_{l-1} = (g_l W_l) * D_{l-1}

    so neither recomputes the forward pass. Tangents and gradients are dicts keyed by the
    net's parameter names (``"0.weight"``, ...); a name missing from the tangents is a zero tangent.
    """

    def __init__(self, net: nn.Sequential, x: Tensor) -> None:
        modules = list(net)
        linear_at = [i for i, m in enumerate(modules) if isinstance(m, nn.Linear)]
        if linear_at != list(range(0, len(modules), 2)) or len(modules) % 2 == 0:
            raise ValueError("LinearizedMLP needs a Sequential of Linear, activation, ..., Linear")
        self.layers: list[tuple[str, nn.Linear, Tensor, Tensor | None]] = []  # (name, layer, h_l, D_l)
        h = x
        with torch.no_grad():
            for i in linear_at:
                layer, z = modules[i], modules[i](h)
                derivative = None
                if i + 1 < len(modules):  # an activation follows: D_l = act'(z_l), elementwise
                    _, derivative = torch.func.jvp(modules[i + 1], (z,), (torch.ones_like(z),))
                self.layers.append((str(i), layer, h, derivative))
                if derivative is not None:
                    h = modules[i + 1](z)

    def jvp(self, tangents: dict[str, Tensor]) -> Tensor:
        """J v [B, out] for the parameter tangents v."""
        dh: Tensor | None = None
        for name, layer, h, derivative in self.layers:
            d_weight, d_bias = tangents.get(f"{name}.weight"), tangents.get(f"{name}.bias")
            dz = h.new_zeros(h.shape[0], layer.out_features) if d_bias is None else d_bias.expand(h.shape[0], -1)
            if d_weight is not None:
                dz = torch.addmm(dz, h, d_weight.t())
            if dh is not None:
                dz = torch.addmm(dz, dh, layer.weight.detach().t())
            dh = dz if derivative is None else derivative * dz
        assert dh is not None
        return dh

    def vjp(self, u: Tensor) -> dict[str, Tensor]:
        """J^T u for u [B, out]: the gradient of sum(u * net(x)) by parameter name."""
        grads: dict[str, Tensor] = {}
        g = u
        for k in range(len(self.layers) - 1, -1, -1):
            name, layer, h, _ = self.layers[k]
            grads[f"{name}.weight"] = g.t() @ h
            grads[f"{name}.bias"] = g.sum(dim=0)
            if k > 0:
                g = (g @ layer.weight.detach()) * self.layers[k - 1][3]
        return grads


class GaussianFisher:
    """v -> (F + damping I) v for pi = N(mu_theta(s), diag(exp(log_std))^2) at theta = theta_old, in closed form.

    For this policy the Hessian of the mean KL at theta_old is block diagonal:
    F_mu = (1/B) sum_b J_b^T diag(sigma^-2) J_b with J_b = d mu(s_b) / d theta
    [act_dim, P_mu], and F_log_std = 2 I. So F v = J^T (sigma^-2 * (J v_mu)) / B
    (+) 2 v_log_std: one forward-mode and one reverse product through the mean
    MLP linearized once per update (:class:`LinearizedMLP`), instead of double
    backpropagation through the KL at every conjugate-gradient iteration.
    ``obs`` [B, obs_dim] raw; ``params`` in the policy's order (the mean net's, then log_std).
    """

    def __init__(self, policy: nn.Module, obs: Tensor, params: Sequence[nn.Parameter], damping: float) -> None:
        if not isinstance(getattr(policy, "encoder", nn.Identity()), nn.Identity):
            raise ValueError("GaussianFisher needs the mean net to read the normalized observation directly")
        net = policy.mean_net  # type: ignore[attr-defined]
        names = {id(p): name for name, p in net.named_parameters()}
        self.mean_names = [names[id(p)] for p in params if id(p) in names]
        self.shapes = [p.shape for p in params]
        self.is_log_std = [id(p) == id(policy.log_std) for p in params]  # type: ignore[attr-defined]
        if sum(self.is_log_std) != 1 or len(self.mean_names) + 1 != len(params):
            raise ValueError("GaussianFisher needs exactly the mean net's parameters and log_std")
        with torch.no_grad():
            norm_obs = policy.normalizer(obs)  # type: ignore[attr-defined]
            self.inv_var = torch.exp(-2.0 * policy.log_std.detach())  # type: ignore[attr-defined]
        self.mean = LinearizedMLP(net, norm_obs)
        self.batch = obs.shape[0]
        self.damping = damping

    def __call__(self, v: Tensor) -> Tensor:
        parts = torch.split(v, [math.prod(s) for s in self.shapes])
        tangents, log_std_part = {}, None
        names = iter(self.mean_names)
        for part, shape, is_log_std in zip(parts, self.shapes, self.is_log_std, strict=True):
            if is_log_std:
                log_std_part = part
            else:
                tangents[next(names)] = part.view(shape)
        jv = self.mean.jvp(tangents)  # J v_mu: [B, act_dim]
        jtu = self.mean.vjp(jv * self.inv_var / self.batch)  # J^T (sigma^-2 J v_mu) / B
        out = []
        names = iter(self.mean_names)
        for is_log_std in self.is_log_std:
            out.append(2.0 * log_std_part if is_log_std else jtu[next(names)].reshape(-1))  # type: ignore[operator]
        return torch.cat(out) + self.damping * v


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
