# BEVDet-occ R50 = FlashOcc M1 (Yzichen/FlashOCC configs/flashocc/flashocc-r50.py), model only:
# BEVDet-R50 with the Occ3D grid (x, y: +-40 m at 0.4 m -> 200 x 200 BEV cells; z: one bin
# -1..5.4 m; depth 1..45 m at 0.5 m), no detection head, and FlashOcc's channel-to-height head
# (BEVOCCHead2D 256 -> 256, MLP to 16 x 18) with the camera-masked cross-entropy.
# Published (FlashOcc README): 32.08 mIoU on Occ3D-nuScenes val, 44.74 M parameters.
_base_ = ['./bevdet-r50.py']

occ_grid_config = {
    'x': [-40.0, 40.0, 0.4],
    'y': [-40.0, 40.0, 0.4],
    'z': [-1.0, 5.4, 6.4],
    'depth': [1.0, 45.0, 0.5],
}
model = dict(
    type='BEVDetOCC',
    img_view_transformer=dict(grid_config=occ_grid_config),
    pts_bbox_head=None,
    occ_head=dict(type='BEVOCCHead2D', in_dim=256, out_dim=256, Dz=16, num_classes=18,
                  use_predicter=True, use_mask=True, class_balance=False,
                  loss_occ=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False,
                                ignore_index=255, loss_weight=1.0)),
    train_cfg=None,
    test_cfg=None)
