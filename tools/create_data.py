"""Create nuScenes info files for the ptqat models (mmdet3d's converter + the extra BEV fields).

Example::

    python tools/create_data.py nuscenes --root-path data/nuscenes --version v1.0-trainval

Writes ``<out-dir>/<extra-tag>_infos_{train,val}.pkl`` (``_test`` for v1.0-test). See
``ptqat.datasets.nuscenes_infos`` for the fields added to mmdet3d's v2 infos.
"""
import argparse
import sys

from ptqat.datasets.nuscenes_infos import SUPPORTED_VERSIONS, create_nuscenes_infos


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('dataset', choices=['nuscenes'], help='only nuScenes is supported')
    p.add_argument('--root-path', required=True, help='nuScenes data root')
    p.add_argument('--out-dir', default=None, help='default: the data root')
    p.add_argument('--version', default='v1.0-trainval', choices=SUPPORTED_VERSIONS)
    p.add_argument('--extra-tag', default='nuscenes', help='info file prefix')
    p.add_argument('--max-sweeps', type=int, default=10, help='lidar sweeps per sample')
    p.add_argument('--max-cam-sweeps', type=int, default=6, help='camera sweeps per camera')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    try:
        paths = create_nuscenes_infos(a.root_path, a.version, out_dir=a.out_dir,
                                      info_prefix=a.extra_tag, max_sweeps=a.max_sweeps,
                                      max_cam_sweeps=a.max_cam_sweeps)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'create_data: {e}')
    for p in paths:
        print(f'wrote {p}')


if __name__ == '__main__':
    main()
