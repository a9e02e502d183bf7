# The synthetic nuScenes set (true nuScenes layout, v1.0-mini) for BEVDet-style models.
#
# Make it (from the repo root; users run everything from there):
#   python tools/make_synthetic_nuscenes.py data/nuscenes_synth --version v1.0-mini \
#       --train-scenes 8 --val-scenes 2 --samples-per-scene 6
#   python tools/create_data.py nuscenes --root-path data/nuscenes_synth --version v1.0-mini
# The version must be passed to the dataset: NuScenesDataset's default is v1.0-trainval and
# the info files do not override it (NuScenesMetric reads it from the dataset meta).
# tools/quickstart.sh writes a bigger v1.0-trainval set to the same path; the config that
# trains on it (configs/bevdet/bevdet-tiny_synth.py) sets `metainfo.version` accordingly.
_base_ = ['./nus-bevdet.py']

data_root = 'data/nuscenes_synth/'
metainfo = dict(version='v1.0-mini')

train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root, ann_file=data_root + 'nuscenes_infos_val.pkl')
test_evaluator = val_evaluator
