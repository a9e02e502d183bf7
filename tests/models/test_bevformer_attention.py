"""BEVFormer's deformable attentions (TSA, SCA + MSDeformableAttention3D, the decoder's
MultiScaleDeformableAttention) against a brute-force bilinear-sampling loop."""
import torch

from bevformer_testutils import bilinear


def _randomize(module, scale=0.5):
    """Random weights so that offsets and weights are non-trivial."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def _maps(v, shapes, heads):
    """``(sum HW, C)`` projected values -> per level, per head ``(H, W, C/heads)``."""
    out, start = [], 0
    for (h, w) in shapes:
        lv = v[start:start + h * w].view(h, w, heads, -1)
        out.append([lv[:, :, k] for k in range(heads)])
        start += h * w
    return out


def test_temporal_self_attention_matches_bruteforce():
    from ptqat.models.bevformer import TemporalSelfAttention
    torch.manual_seed(0)
    C, heads, P, Hb, Wb = 8, 2, 3, 4, 5
    tsa = TemporalSelfAttention(embed_dims=C, num_heads=heads, num_levels=1, num_points=P,
                                dropout=0.0, batch_first=True).eval()
    _randomize(tsa)
    Q = Hb * Wb
    query, pos = torch.randn(1, Q, C), torch.randn(1, Q, C)
    prev = torch.randn(1, Q, C)
    value = torch.stack([prev, query], 1).reshape(2, Q, C)
    ref = torch.rand(2, Q, 1, 2)
    shapes = torch.tensor([[Hb, Wb]])
    out = tsa(query, value=value, query_pos=pos, reference_points=ref, spatial_shapes=shapes,
              level_start_index=torch.tensor([0]))

    with torch.no_grad():
        feat = torch.cat([prev[0], query[0] + pos[0]], -1)
        off = tsa.sampling_offsets(feat).view(Q, heads, 2, 1, P, 2)
        aw = tsa.attention_weights(feat).view(Q, heads, 2, P).softmax(-1)
        v = tsa.value_proj(value)  # (2, Q, C)
        per_t = []
        for t in range(2):
            maps = _maps(v[t], [(Hb, Wb)], heads)[0]
            rows = []
            for q in range(Q):
                hs = []
                for h in range(heads):
                    acc = torch.zeros(C // heads)
                    for p in range(P):
                        x = ref[t, q, 0, 0] + off[q, h, t, 0, p, 0] / Wb
                        y = ref[t, q, 0, 1] + off[q, h, t, 0, p, 1] / Hb
                        acc = acc + aw[q, h, t, p] * bilinear(maps[h], x, y)
                    hs.append(acc)
                rows.append(torch.cat(hs))
            per_t.append(torch.stack(rows))
        expected = tsa.output_proj((per_t[0] + per_t[1]) / 2) + query[0]
    torch.testing.assert_close(out[0], expected, atol=1e-5, rtol=1e-5)


def test_spatial_cross_attention_matches_bruteforce():
    from ptqat.models.bevformer import SpatialCrossAttention
    torch.manual_seed(0)
    C, heads, P, D, N, Q = 8, 2, 4, 2, 3, 7
    shapes = [(3, 4), (2, 2)]
    sca = SpatialCrossAttention(
        embed_dims=C, num_cams=N, dropout=0.0,
        deformable_attention=dict(type='MSDeformableAttention3D', embed_dims=C, num_heads=heads,
                                  num_levels=2, num_points=P)).eval()
    _randomize(sca)
    msda = sca.deformable_attention
    nv = sum(h * w for h, w in shapes)
    query = torch.randn(1, Q, C)
    value = torch.randn(N, nv, 1, C)
    ref_cam = torch.rand(N, 1, Q, D, 2)
    bev_mask = torch.rand(N, 1, Q, D) > 0.5
    bev_mask[:, :, 0] = False  # a query no camera sees: output = residual + proj(0)
    st = torch.tensor(shapes)
    out = sca(query, value, value, reference_points_cam=ref_cam, bev_mask=bev_mask,
              spatial_shapes=st, level_start_index=torch.tensor([0, 12]))

    with torch.no_grad():
        slots = torch.zeros(Q, C)
        for q in range(Q):
            cams = [n for n in range(N) if bev_mask[n, 0, q].any()]
            for n in cams:
                off = msda.sampling_offsets(query[0, q]).view(heads, 2, P, 2)
                aw = msda.attention_weights(query[0, q]).view(heads, 2 * P).softmax(-1)
                aw = aw.view(heads, 2, P)
                maps = _maps(msda.value_proj(value[n, :, 0]), shapes, heads)
                hs = []
                for h in range(heads):
                    acc = torch.zeros(C // heads)
                    for lvl, (hh, ww) in enumerate(shapes):
                        for p in range(P):
                            d = p % D  # points split as (P / D offsets) x (D anchors)
                            x = ref_cam[n, 0, q, d, 0] + off[h, lvl, p, 0] / ww
                            y = ref_cam[n, 0, q, d, 1] + off[h, lvl, p, 1] / hh
                            acc = acc + aw[h, lvl, p] * bilinear(maps[lvl][h], x, y)
                    hs.append(acc)
                slots[q] += torch.cat(hs)
            slots[q] /= max(len(cams), 1)
        expected = sca.output_proj(slots) + query[0]
    torch.testing.assert_close(out[0], expected, atol=1e-5, rtol=1e-5)


def test_decoder_cross_attention_matches_bruteforce():
    """The decoder's MultiScaleDeformableAttention (mmcv, pytorch path) on the BEV."""
    from bevformer_testutils import build_bevformer
    model, _ = build_bevformer()
    layer = model.pts_bbox_head.transformer.decoder.layers[0]
    attn = layer.attentions[1].eval()
    _randomize(attn)
    C, heads, P = attn.embed_dims, attn.num_heads, attn.num_points
    Hb, Wb, Q = 4, 6, 5
    query, pos = torch.randn(Q, 1, C), torch.randn(Q, 1, C)
    value = torch.randn(Hb * Wb, 1, C)
    ref = torch.rand(1, Q, 1, 2)
    out = attn(query, value=value, query_pos=pos, reference_points=ref,
               spatial_shapes=torch.tensor([[Hb, Wb]]), level_start_index=torch.tensor([0]))
    with torch.no_grad():
        qp = query[:, 0] + pos[:, 0]
        off = attn.sampling_offsets(qp).view(Q, heads, 1, P, 2)
        aw = attn.attention_weights(qp).view(Q, heads, P).softmax(-1)
        maps = _maps(attn.value_proj(value[:, 0]), [(Hb, Wb)], heads)[0]
        rows = []
        for q in range(Q):
            hs = []
            for h in range(heads):
                acc = torch.zeros(C // heads)
                for p in range(P):
                    x = ref[0, q, 0, 0] + off[q, h, 0, p, 0] / Wb
                    y = ref[0, q, 0, 1] + off[q, h, 0, p, 1] / Hb
                    acc = acc + aw[q, h, p] * bilinear(maps[h], x, y)
                hs.append(acc)
            rows.append(torch.cat(hs))
        expected = attn.output_proj(torch.stack(rows)) + query[:, 0]
    torch.testing.assert_close(out[:, 0], expected, atol=1e-5, rtol=1e-5)


def test_decoder_refines_reference_points():
    """ref' = sigmoid(reg[0:2] + logit(ref[0:2])), z from reg[4]; detached."""
    from bevformer_testutils import build_bevformer
    model, _ = build_bevformer()
    model.eval()
    dec = model.pts_bbox_head.transformer.decoder
    reg = model.pts_bbox_head.reg_branches
    C = dec.embed_dims
    Q = 4
    ref0 = torch.rand(1, Q, 3) * 0.8 + 0.1
    with torch.no_grad():
        states, refs = dec(torch.randn(Q, 1, C), value=torch.randn(6, 1, C),
                           query_pos=torch.randn(Q, 1, C), reference_points=ref0,
                           reg_branches=reg, spatial_shapes=torch.tensor([[2, 3]]),
                           level_start_index=torch.tensor([0]))
        tmp = reg[0](states[0].permute(1, 0, 2))
        logit = torch.log(ref0 / (1 - ref0))
        exp_xy = (tmp[..., :2] + logit[..., :2]).sigmoid()
        exp_z = (tmp[..., 4:5] + logit[..., 2:3]).sigmoid()
    assert states.shape == (dec.num_layers, Q, 1, C) and refs.shape == (dec.num_layers, 1, Q, 3)
    torch.testing.assert_close(refs[0], torch.cat([exp_xy, exp_z], -1), atol=1e-4, rtol=1e-4)
