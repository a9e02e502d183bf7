"""Generate a synthetic data set in the true nuScenes on-disk layout.

Example::

    python tools/make_synthetic_nuscenes.py data/nuscenes_synth --version v1.0-mini \
        --train-scenes 8 --val-scenes 2 --samples-per-scene 6
"""
import argparse
import json
import sys

from ptqat.datasets.synthetic import SyntheticNuScenesConfig, generate_synthetic_nuscenes


def parse_args(argv=None):
    d = SyntheticNuScenesConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('root', help='output data root (created; refused if it holds nuScenes tables, '
                   'see --overwrite)')
    p.add_argument('--version', default=d.version, choices=['v1.0-mini', 'v1.0-trainval'])
    p.add_argument('--train-scenes', type=int, default=d.train_scenes)
    p.add_argument('--val-scenes', type=int, default=d.val_scenes)
    p.add_argument('--samples-per-scene', type=int, default=d.samples_per_scene,
                   help='key frames per scene, 0.5 s apart')
    p.add_argument('--cam-sweeps', type=int, default=d.cam_sweeps,
                   help='camera sweeps between consecutive key frames')
    p.add_argument('--lidar-sweeps', type=int, default=d.lidar_sweeps,
                   help='lidar sweeps between consecutive key frames')
    p.add_argument('--image-size', type=int, nargs=2, default=d.image_size, metavar=('W', 'H'),
                   help='nuScenes is 1600 900; mmdet3d\'s 2-D re-projection assumes it')
    p.add_argument('--lidar-azimuths', type=int, default=d.lidar_azimuths)
    p.add_argument('--no-occupancy', action='store_true', help='skip the Occ3D labels')
    p.add_argument('--seed', type=int, default=d.seed)
    p.add_argument('--workers', type=int, default=1,
                   help='processes simulating scenes side by side; the set is the same for any '
                        'number (default 1)')
    p.add_argument('--overwrite', action='store_true',
                   help='write even if ROOT already holds nuScenes tables (v1.0-*/*.json); '
                        'without it such a ROOT is refused')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    cfg = SyntheticNuScenesConfig(
        version=a.version, train_scenes=a.train_scenes, val_scenes=a.val_scenes,
        samples_per_scene=a.samples_per_scene, cam_sweeps=a.cam_sweeps,
        lidar_sweeps=a.lidar_sweeps, image_size=tuple(a.image_size),
        lidar_azimuths=a.lidar_azimuths, occupancy=not a.no_occupancy, seed=a.seed)
    try:
        summary = generate_synthetic_nuscenes(a.root, cfg, overwrite=a.overwrite,
                                              workers=a.workers)
    except (ValueError, FileExistsError) as e:
        sys.exit(f'make_synthetic_nuscenes: {e}')
    print(json.dumps(summary, indent=1))


if __name__ == '__main__':
    main()
