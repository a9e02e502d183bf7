"""SparseBEV components and the tiny detector: mixing, SASA, denoising, train / predict."""
import pytest
import torch

from sparsebev_testutils import build_sparsebev, make_samples

from ptqat.models.sparsebev import AdaptiveMixing, SparseBEVSelfAttention, encode_bbox
from ptqat.quant import MatMul

PC = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]


@pytest.fixture(scope='module')
def tiny():
    model, cfg = build_sparsebev('sparsebev-tiny.py')
    return model, cfg


def test_adaptive_mixing_matches_einsum_reference():
    torch.manual_seed(0)
    mix = AdaptiveMixing(in_dim=16, in_points=6, n_groups=2, out_points=5)
    torch.nn.init.normal_(mix.parameter_generator.weight, std=0.1)
    x, q = torch.randn(2, 3, 2, 6, 8), torch.randn(2, 3, 16)
    params = mix.parameter_generator(q).reshape(2, 3, 2, -1)
    M = params[..., :64].reshape(2, 3, 2, 8, 8)
    S = params[..., 64:].reshape(2, 3, 2, 5, 6)
    out = torch.einsum('bqgpc,bqgcd->bqgpd', x, M)
    out = torch.relu(torch.nn.functional.layer_norm(out, out.shape[-2:]))
    out = torch.einsum('bqgop,bqgpd->bqgod', S, out)
    out = torch.relu(torch.nn.functional.layer_norm(out, out.shape[-2:]))
    ref = q + mix.out_proj(out.reshape(2, 3, -1))
    torch.testing.assert_close(mix(x, q), ref, atol=1e-5, rtol=1e-5)
    assert isinstance(mix.channel_matmul, MatMul) and isinstance(mix.point_matmul, MatMul)
    with pytest.raises(ValueError, match=r'AdaptiveMixing: input \(G, P, C\)'):
        mix(torch.randn(2, 3, 2, 7, 8), q)


def test_sasa_bias_is_minus_tau_times_distance():
    attn = SparseBEVSelfAttention(embed_dims=8, num_heads=2, pc_range=PC)
    attn.init_weights()
    boxes = torch.tensor([[0.0, 0.0, 0, 1, 1, 1, 0, 0, 0], [3.0, 4.0, 0, 1, 1, 1, 0, 0, 0]])
    code = encode_bbox(boxes, PC)[None]
    feat = torch.randn(1, 2, 8)
    tau = attn.gen_tau.bias  # zero weights: tau is the bias
    bias = attn.attention_bias(code, feat, None).view(1, 2, 2, 2)
    torch.testing.assert_close(bias[0, :, 0, 1], -5.0 * tau, atol=1e-4, rtol=1e-4)
    assert torch.all(bias[0, :, 0, 0] == 0)
    mask = torch.tensor([[False, True], [False, False]])
    blocked = attn.attention_bias(code, feat, mask).view(1, 2, 2, 2)
    assert torch.isinf(blocked[0, :, 0, 1]).all() and torch.isfinite(blocked[0, :, 1]).all()


def test_dn_queries_and_mask(tiny):
    model, _ = tiny
    head = model.pts_bbox_head
    head.train()
    gts = [(torch.tensor([[1.0, 2.0, 0.0, 4.0, 2.0, 1.5, 0.0, 1.0, 0.0],
                          [5.0, 2.0, 0.0, 4.0, 2.0, 1.5, 0.0, 0.0, 0.0]]),
            torch.tensor([0, 3])),
           (torch.zeros(0, 9), torch.zeros(0, dtype=torch.long))]
    dn = head.dn_queries(gts)
    groups = head.dn_groups
    assert dn['pad'] == 2 * groups and dn['single'] == 2
    assert dn['valid'][0].all() and not dn['valid'][1].any()
    assert (dn['feat'][0, :, -1] == 1).all()  # DN indicator bit
    mask = head.dn_attn_mask(dn['pad'], dn['single'], 'cpu')
    Q, D = head.num_query, dn['pad']
    assert mask.shape == (D + Q, D + Q)
    assert mask[D:, :D].all() and not mask[D:, D:].any() and not mask[:D, D:].any()
    for i in range(groups):
        s, e = 2 * i, 2 * i + 2
        assert not mask[s:e, s:e].any()
        assert mask[s:e, :s].all() and mask[s:e, e:D].all()


def test_tiny_train_step_and_predict(tiny):
    model, cfg = tiny
    T = cfg.model.pts_bbox_head.transformer.num_frames
    samples = make_samples(2, T, img_hw=(32, 96))
    x = torch.randn(2, T * 6, 3, 32, 96)
    model.train()
    losses = model.loss(dict(imgs=x), samples)
    S = model.pts_bbox_head.transformer.decoder.num_layers
    assert len(losses) == 4 * S
    assert {'loss_cls', 'loss_bbox', 'loss_cls_dn', 'loss_bbox_dn', 'd0.loss_cls_dn'} <= set(losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    layer = model.pts_bbox_head.transformer.decoder.decoder_layer
    assert layer.mixing.parameter_generator.weight.grad.abs().sum() > 0
    assert layer.sampling.sampling_offset.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        raw = model._forward(dict(imgs=x), samples)
        out = model.predict(dict(imgs=x), samples)
    assert raw['all_cls_scores'].shape == (S, 2, 100, 10)
    assert raw['dn'] is None
    res = out[0].pred_instances_3d
    assert res.bboxes_3d.tensor.shape[1] == 9 and len(res.scores_3d) == len(res.labels_3d)


def test_bad_inputs_raise(tiny):
    model, cfg = tiny
    T = cfg.model.pts_bbox_head.transformer.num_frames
    model.eval()
    samples = make_samples(1, T - 1)
    with pytest.raises(ValueError, match='frames'):
        with torch.no_grad():
            model._forward(dict(imgs=torch.randn(1, (T - 1) * 6, 3, 64, 176)), samples)
    with pytest.raises(ValueError, match=r'\(B, T\*N, 3, H, W\)'):
        model._forward(dict(imgs=torch.randn(1, 3, 64, 176)), samples)


@pytest.mark.parametrize('head', ['occ_head', 'map_head'])
def test_dense_task_head_is_a_clear_error(head):
    """SparseBEV has no dense BEV feature: an occupancy / map head in its config says so."""
    from mmdet3d.registry import MODELS
    _, cfg = build_sparsebev(init=False)
    model_cfg = dict(cfg.model)
    model_cfg[head] = dict(type='BEVOCCHead2D')
    with pytest.raises(ValueError, match=f'SparseBEV has no dense BEV feature .*{head}=.*BEVDetOCC'):
        MODELS.build(model_cfg)
