# BEVDepth4D-occ R50, model only: BEVDepth4D-R50 (1 adjacent frame, DepthNet, depth loss) on the
# Occ3D grid (+-40 m at 0.4 m, one z bin, depth 1..45 m at 0.5 m) with FlashOcc's
# channel-to-height head, as FlashOcc's 4D models and BEVDet dev3.0's BEVDepth4DOCC (dev3.0's
# published BEVDet-occ 4D model is the stereo variant, 36.1 mIoU, not reproduced here).
_base_ = ['./bevdepth4d-r50.py']

occ_grid_config = {
    'x': [-40.0, 40.0, 0.4],
    'y': [-40.0, 40.0, 0.4],
    'z': [-1.0, 5.4, 6.4],
    'depth': [1.0, 45.0, 0.5],
}
model = dict(
    type='BEVDepth4DOCC',
    img_view_transformer=dict(grid_config=occ_grid_config, loss_depth_weight=0.05),
    pts_bbox_head=None,
    occ_head=dict(type='BEVOCCHead2D', in_dim=256, out_dim=256, Dz=16, num_classes=18,
                  use_predicter=True, use_mask=True,
                  loss_occ=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False,
                                ignore_index=255, loss_weight=1.0)),
    train_cfg=None,
    test_cfg=None)
