# BEVDet-seg R50, model only: BEVDet-R50 (BEV feature 256 x 128 x 128 over +-51.2 m) with a
# BEVFusion-style map segmentation head: the feature is resampled to BEVFusion's grid
# (+-50 m at 0.5 m, 200 x 200, [y, x]), 2 x (3x3 conv-BN-ReLU), 1x1 to 6 classes, per-class
# sigmoid focal loss (gamma 2, no alpha). Classes as BEVFusion (divider = road + lane divider).
_base_ = ['./bevdet-r50.py']

map_classes = ['drivable_area', 'ped_crossing', 'walkway', 'stop_line', 'carpark_area', 'divider']
model = dict(
    type='BEVDetSeg',
    pts_bbox_head=None,
    map_head=dict(type='BEVMapSegHead', in_channels=256, classes=map_classes,
                  input_bounds=[[-51.2, 51.2, 0.8], [-51.2, 51.2, 0.8]],
                  output_bounds=[[-50.0, 50.0, 0.5], [-50.0, 50.0, 0.5]],
                  num_convs=2, loss_type='focal', gamma=2.0, alpha=-1.0),
    train_cfg=None,
    test_cfg=None)
