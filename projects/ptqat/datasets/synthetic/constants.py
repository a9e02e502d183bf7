"""Fixed facts of the synthetic nuScenes world: sensors, classes, colours, Occ3D labels.

Units: metres, seconds, degrees only where the name says ``_deg``. Sizes are (w, l, h) as in
nuScenes ``sample_annotation.size``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

CAMERAS: Tuple[str, ...] = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK',
                            'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
LIDAR = 'LIDAR_TOP'

# Real nuScenes-like rig: translations (m, ego frame) and intrinsics from the nuScenes
# calibration of the Renault Zoe; yaws are the nominal mounting yaws (degrees, left positive).
CAMERA_RIG: Dict[str, dict] = {
    'CAM_FRONT': dict(translation=(1.70, 0.016, 1.51), yaw_deg=0.0,
                      focal=1266.4, cx=816.3, cy=491.5, time_offset=0.012),
    'CAM_FRONT_RIGHT': dict(translation=(1.55, -0.493, 1.50), yaw_deg=-55.0,
                            focal=1260.8, cx=808.0, cy=495.3, time_offset=0.020),
    'CAM_FRONT_LEFT': dict(translation=(1.52, 0.495, 1.51), yaw_deg=55.0,
                           focal=1272.6, cx=826.6, cy=479.8, time_offset=0.004),
    'CAM_BACK': dict(translation=(0.028, 0.003, 1.58), yaw_deg=180.0,
                     focal=809.2, cx=829.2, cy=481.8, time_offset=0.037),
    'CAM_BACK_LEFT': dict(translation=(1.04, 0.485, 1.59), yaw_deg=110.0,
                          focal=1256.7, cx=792.1, cy=492.8, time_offset=0.045),
    'CAM_BACK_RIGHT': dict(translation=(1.01, -0.481, 1.56), yaw_deg=-110.0,
                           focal=1259.5, cx=807.3, cy=501.2, time_offset=0.029),
}
NUSCENES_IMAGE_SIZE = (1600, 900)  # (width, height) of every nuScenes camera
LIDAR_TRANSLATION = (0.986, 0.0, 1.840)
LIDAR_YAW_DEG = -90.0  # nuScenes LIDAR_TOP: x to the right of the car, y forward
LIDAR_ELEVATIONS_DEG = tuple(-30.67 + i * 1.333 for i in range(32))  # HDL-32E beams
LIDAR_MAX_RANGE = 70.0

DETECTION_CLASSES: Tuple[str, ...] = (
    'car', 'truck', 'construction_vehicle', 'bus', 'trailer', 'barrier', 'motorcycle',
    'bicycle', 'pedestrian', 'traffic_cone')

# The 23 nuScenes categories (detection-era category.json).
CATEGORIES: Tuple[str, ...] = (
    'human.pedestrian.adult', 'human.pedestrian.child', 'human.pedestrian.wheelchair',
    'human.pedestrian.stroller', 'human.pedestrian.personal_mobility',
    'human.pedestrian.police_officer', 'human.pedestrian.construction_worker', 'animal',
    'vehicle.car', 'vehicle.motorcycle', 'vehicle.bicycle', 'vehicle.bus.bendy',
    'vehicle.bus.rigid', 'vehicle.truck', 'vehicle.construction', 'vehicle.emergency.ambulance',
    'vehicle.emergency.police', 'vehicle.trailer', 'movable_object.barrier',
    'movable_object.trafficcone', 'movable_object.pushable_pullable', 'movable_object.debris',
    'static_object.bicycle_rack')

ATTRIBUTES: Tuple[str, ...] = (
    'vehicle.moving', 'vehicle.stopped', 'vehicle.parked', 'cycle.with_rider',
    'cycle.without_rider', 'pedestrian.sitting_lying_down', 'pedestrian.standing',
    'pedestrian.moving')

LOCATIONS: Tuple[str, ...] = ('boston-seaport', 'singapore-onenorth', 'singapore-queenstown',
                              'singapore-hollandvillage')


@dataclass(frozen=True)
class ObjectClass:
    """An object kind of the synthetic world.

    Attributes:
        name: short name (detection class, or ``police_car`` / ``bicycle_rack``).
        category: nuScenes category name.
        size: mean (w, l, h) in metres.
        color: RGB colour of the rendered box.
        occ_label: Occ3D semantic label.
        detection: whether it is one of the 10 detection classes.
    """
    name: str
    category: str
    size: Tuple[float, float, float]
    color: Tuple[int, int, int]
    occ_label: int
    detection: bool = True


OBJECT_CLASSES: Dict[str, ObjectClass] = {c.name: c for c in (
    ObjectClass('car', 'vehicle.car', (1.95, 4.6, 1.7), (200, 40, 40), 4),
    ObjectClass('truck', 'vehicle.truck', (2.5, 7.0, 2.9), (40, 90, 210), 10),
    ObjectClass('construction_vehicle', 'vehicle.construction', (2.8, 6.4, 3.2), (240, 190, 20), 5),
    ObjectClass('bus', 'vehicle.bus.rigid', (2.9, 11.0, 3.5), (230, 110, 20), 3),
    ObjectClass('trailer', 'vehicle.trailer', (2.9, 11.5, 3.8), (120, 70, 160), 9),
    ObjectClass('barrier', 'movable_object.barrier', (2.5, 0.5, 1.0), (250, 250, 245), 1),
    ObjectClass('motorcycle', 'vehicle.motorcycle', (0.8, 2.1, 1.5), (30, 30, 30), 6),
    ObjectClass('bicycle', 'vehicle.bicycle', (0.6, 1.7, 1.3), (30, 200, 200), 2),
    ObjectClass('pedestrian', 'human.pedestrian.adult', (0.7, 0.7, 1.75), (240, 120, 190), 7),
    ObjectClass('traffic_cone', 'movable_object.trafficcone', (0.4, 0.4, 1.0), (255, 100, 0), 8),
    ObjectClass('police_car', 'vehicle.emergency.police', (2.0, 4.9, 1.6), (20, 20, 120), 4,
                detection=False),
    ObjectClass('bicycle_rack', 'static_object.bicycle_rack', (0.6, 3.0, 0.9), (150, 150, 160), 0,
                detection=False),
)}

# Occ3D-nuScenes labels (0..17).
OCC_CLASSES: Tuple[str, ...] = (
    'others', 'barrier', 'bicycle', 'bus', 'car', 'construction_vehicle', 'motorcycle',
    'pedestrian', 'traffic_cone', 'trailer', 'truck', 'driveable_surface', 'other_flat',
    'sidewalk', 'terrain', 'manmade', 'vegetation', 'free')
OCC_FREE = 17

SPEED_RULE_THRESHOLD = 0.2  # m/s, the rule mmdet3d's NuScenesMetric uses for attributes


def attribute_for(name: str, speed: float) -> Optional[str]:
    """The attribute mmdet3d's ``NuScenesMetric`` would assign to a box of this class and speed.

    Synthetic ground truth follows the same rule, so a perfect prediction scores mAAE = 0.
    Returns None for classes without attributes (cones, barriers, non-detection objects).
    """
    moving = speed > SPEED_RULE_THRESHOLD
    if name in ('car', 'truck', 'bus', 'trailer', 'construction_vehicle', 'police_car'):
        if moving:
            return 'vehicle.moving'
        return 'vehicle.stopped' if name == 'bus' else 'vehicle.parked'
    if name in ('bicycle', 'motorcycle'):
        return 'cycle.with_rider' if moving else 'cycle.without_rider'
    if name == 'pedestrian':
        return 'pedestrian.moving' if moving else 'pedestrian.standing'
    return None
