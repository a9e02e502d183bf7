"""``AdaptiveMixing``: channel and point mixing with query-generated weights (AdaMixer)."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet3d.registry import MODELS
from ...quant import MatMul


@MODELS.register_module()
class AdaptiveMixing(nn.Module):
    """Per query and group: ``x (P_in, C_in) -> relu(LN(x · M)) -> relu(LN(S · ·))`` with
    ``M (C_in, C_out)`` and ``S (P_out, P_in)`` generated from the query by
    ``parameter_generator``, then ``out_proj`` and a residual.

    The two products of runtime tensors are :class:`ptqat.quant.MatMul` modules
    (``channel_matmul``, ``point_matmul``), so ``quantize_model`` quantizes both operands
    (they hold no parameters; the state_dict keys are upstream's).

    Args:
        in_dim: query / feature channels C; in_points: P_in (frames x points);
        n_groups: G; query_dim, out_dim: default C; out_points: P_out (default P_in).
    """

    def __init__(self, in_dim: int, in_points: int, n_groups: int = 1, query_dim: int = None,
                 out_dim: int = None, out_points: int = None):
        super().__init__()
        out_dim = out_dim or in_dim
        self.out_points = out_points or in_points
        self.query_dim = query_dim or in_dim
        self.in_dim, self.in_points, self.n_groups, self.out_dim = in_dim, in_points, n_groups, out_dim
        self.eff_in_dim = in_dim // n_groups
        self.eff_out_dim = out_dim // n_groups
        self.m_parameters = self.eff_in_dim * self.eff_out_dim
        self.s_parameters = in_points * self.out_points
        self.total_parameters = self.m_parameters + self.s_parameters
        self.parameter_generator = nn.Linear(self.query_dim, n_groups * self.total_parameters)
        self.out_proj = nn.Linear(self.eff_out_dim * self.out_points * n_groups, self.query_dim)
        self.act = nn.ReLU(inplace=True)
        self.channel_matmul = MatMul()
        self.point_matmul = MatMul()

    def init_weights(self) -> None:
        """Upstream: zero generator weights (the mixing starts from the generator bias)."""
        with torch.no_grad():
            nn.init.zeros_(self.parameter_generator.weight)

    def forward(self, x: Tensor, query: Tensor) -> Tensor:
        """``x (B, Q, G, P_in, C_in/G)`` sampled features, ``query (B, Q, C)`` ->
        ``(B, Q, C)``."""
        B, Q, G, P, C = x.shape
        if (G, P, C) != (self.n_groups, self.in_points, self.eff_in_dim):
            raise ValueError(f'AdaptiveMixing: input (G, P, C) = {(G, P, C)}, expected '
                             f'{(self.n_groups, self.in_points, self.eff_in_dim)}')
        params = self.parameter_generator(query).reshape(B * Q, G, -1)
        m, s = params.split([self.m_parameters, self.s_parameters], 2)
        m = m.reshape(B * Q, G, self.eff_in_dim, self.eff_out_dim)
        s = s.reshape(B * Q, G, self.out_points, self.in_points)
        out = self.channel_matmul(x.reshape(B * Q, G, P, C), m)
        out = self.act(F.layer_norm(out, out.shape[-2:]))
        out = self.point_matmul(s, out)
        out = self.act(F.layer_norm(out, out.shape[-2:]))
        return query + self.out_proj(out.reshape(B, Q, -1))
