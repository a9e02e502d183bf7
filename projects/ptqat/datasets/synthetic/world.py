"""One synthetic scene's world: road layout, ego trajectory, moving and static objects.

All motion is analytic (constant velocity along the road), so every sensor samples the same
world at its own timestamp, and nuScenes' centred-difference velocities are exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from .constants import DETECTION_CLASSES, OBJECT_CLASSES, ObjectClass, attribute_for
from .layout import (CARPARK_DEPTH, CARPARK_LENGTH, LANE_WIDTH, ROAD_HALF_WIDTH, WALKWAY_OUTER,
                     RoadLayout)

# Objects per class and scene (the police car and the bike rack are non-detection objects).
DEFAULT_OBJECT_COUNTS: Dict[str, int] = dict(
    car=8, truck=2, construction_vehicle=1, bus=2, trailer=1, barrier=3, motorcycle=2, bicycle=2,
    pedestrian=8, traffic_cone=4, police_car=1, bicycle_rack=1)

EGO_LANE_V = -LANE_WIDTH / 2
EGO_WIGGLE, EGO_WIGGLE_PERIOD = 0.4, 8.0  # lateral sway amplitude (m) and period (s)
EGO_SIZE = (1.9, 4.6)  # (w, l)
ANNOTATION_RANGE = 80.0
# How far before/after the ego path objects spawn (m): inside nuScenes' detection class ranges
# (30 m for cones and barriers, 40 m for pedestrians and cycles, 50 m for vehicles).
SPAWN_REACH = dict(traffic_cone=22.0, barrier=22.0, pedestrian=30.0, bicycle=30.0,
                   motorcycle=30.0, bicycle_rack=30.0)  # objects farther than this from the ego are not annotated


@dataclass
class Ego:
    """Ego vehicle on the right inner lane: constant speed, gentle lateral sway."""
    u0: float
    speed: float

    def road_state(self, t: float) -> Tuple[float, float, float]:
        """(u, v, yaw relative to the road) at time ``t`` seconds."""
        w = 2 * math.pi / EGO_WIGGLE_PERIOD
        amp = EGO_WIGGLE if self.speed > 0.5 else 0.0
        u = self.u0 + self.speed * t
        v = EGO_LANE_V + amp * math.sin(w * t)
        yaw = math.atan2(amp * w * math.cos(w * t), self.speed) if self.speed > 0.5 else 0.0
        return u, v, yaw


@dataclass
class Agent:
    """An annotated object moving at constant velocity along the road (speed may be 0)."""
    index: int
    kind: ObjectClass
    wlh: Tuple[float, float, float]
    u0: float
    v0: float
    speed: float  # signed, along +u, m/s
    yaw_rel: float  # heading relative to the road direction, radians

    @property
    def attribute(self):
        return attribute_for(self.kind.name, abs(self.speed))

    def road_center(self, t: float) -> Tuple[float, float]:
        return self.u0 + self.speed * t, self.v0


@dataclass
class SceneWorld:
    layout: RoadLayout
    ego: Ego
    agents: List[Agent]
    structures: List[dict] = field(default_factory=list)

    def ego_pose(self, t: float) -> Tuple[np.ndarray, float]:
        """Global ego translation (3,) (z = 0) and yaw (radians) at time ``t``."""
        u, v, yaw = self.ego.road_state(t)
        xy = self.layout.to_global(u, v)
        return np.array([xy[0], xy[1], 0.0]), self.layout.heading + yaw

    def agent_box(self, agent: Agent, t: float) -> dict:
        """Global box of ``agent`` at time ``t``: center (3,), wlh, yaw, velocity (3,)."""
        u, v = agent.road_center(t)
        xy = self.layout.to_global(u, v)
        h = self.layout.heading
        vel = np.array([agent.speed * math.cos(h), agent.speed * math.sin(h), 0.0])
        return dict(center=np.array([xy[0], xy[1], agent.wlh[2] / 2]), wlh=agent.wlh,
                    yaw=_wrap(h + agent.yaw_rel), velocity=vel, color=agent.kind.color,
                    occ_label=agent.kind.occ_label, agent=agent)

    def boxes_at(self, t: float) -> List[dict]:
        """Every box in the world at time ``t`` (agents first, then static structures)."""
        return [self.agent_box(a, t) for a in self.agents] + list(self.structures)


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


# ------------------------------------------------------------------------------------------
# placement
# ------------------------------------------------------------------------------------------
def _slot(name: str, rng: np.random.Generator, flows: Dict[str, float], layout: RoadLayout):
    """Choose (v, speed, yaw_rel, u_hint) for an object of class ``name``.

    ``u_hint`` is None (anywhere along the ego path) or a fixed u (car park).
    """
    parked_v = ROAD_HALF_WIDTH - 1.6
    choice = rng.random()
    if name in ('car', 'truck', 'bus', 'trailer', 'motorcycle'):
        if choice < 0.4:
            return -LANE_WIDTH * 1.5, flows['right'], 0.0, None
        if choice < 0.75:
            return LANE_WIDTH / 2, -flows['left'], math.pi, None
        if name == 'motorcycle':
            return float(rng.choice([-1, 1])) * 8.0, 0.0, float(rng.choice([0, math.pi])), None
        if name == 'car' and choice < 0.9:
            u = layout.carpark_u + rng.uniform(2, CARPARK_LENGTH - 2)
            v = WALKWAY_OUTER + rng.uniform(3, CARPARK_DEPTH - 3)
            return v, 0.0, float(rng.choice([1, -1])) * math.pi / 2, u
        return parked_v, 0.0, math.pi + rng.uniform(-0.05, 0.05), None
    if name in ('construction_vehicle', 'police_car'):
        return parked_v, 0.0, math.pi + rng.uniform(-0.05, 0.05), None
    if name == 'bicycle':
        if choice < 0.6:
            return -(ROAD_HALF_WIDTH + 0.6), flows['bike'], 0.0, None
        return ROAD_HALF_WIDTH + 1.0, 0.0, float(rng.choice([0, math.pi])), None
    if name == 'pedestrian':
        side = float(rng.choice([-1, 1]))
        v = side * rng.uniform(8.4, 10.0)
        if choice < 0.65:
            speed = float(rng.choice([-1, 1]) * rng.uniform(0.8, 1.6))
            return v, speed, 0.0 if speed > 0 else math.pi, None
        return v, 0.0, rng.uniform(-math.pi, math.pi), None
    if name == 'traffic_cone':
        return float(rng.choice([-1, 1])) * (ROAD_HALF_WIDTH - 0.25), 0.0, 0.0, None
    if name == 'barrier':
        return float(rng.choice([-1, 1])) * (WALKWAY_OUTER + 0.4), 0.0, math.pi / 2, None
    if name == 'bicycle_rack':
        return WALKWAY_OUTER - 0.5, 0.0, 0.0, None
    raise ValueError(f'unknown object class {name!r}')


def _footprints(u, v, wlh, yaw_rel):
    """Axis-aligned road-frame half extents (du, dv) of a footprint, conservative for any yaw."""
    w, l = wlh[0], wlh[1]
    c, s = abs(math.cos(yaw_rel)), abs(math.sin(yaw_rel))
    return u, v, (l * c + w * s) / 2, (l * s + w * c) / 2


def build_world(layout: RoadLayout, ego: Ego, times: np.ndarray, counts: Dict[str, int],
                rng: np.random.Generator, max_tries: int = 400) -> SceneWorld:
    """Place objects so that no two footprints (nor the ego) overlap at any of ``times``.

    Args:
        times: (T,) check times in seconds (dense enough that nothing passes through anything).
        counts: objects per class name (keys of ``OBJECT_CLASSES``).
    Raises:
        RuntimeError: a detection class could not be placed at all.
    """
    unknown = set(counts) - set(OBJECT_CLASSES)
    if unknown:
        raise ValueError(f'unknown object classes {sorted(unknown)}; allowed: {sorted(OBJECT_CLASSES)}')
    flows = dict(right=float(rng.uniform(3, 9)), left=float(rng.uniform(3, 9)),
                 bike=float(rng.uniform(2.5, 5)))
    structures = layout.static_structures(rng)
    # Occupied road-frame rectangles per time: (T, K, 4) as (u, v, du, dv).
    occupied = []
    ego_state = np.array([ego.road_state(t) for t in times])
    occupied.append(np.stack([ego_state[:, 0], ego_state[:, 1], np.full(len(times), EGO_SIZE[1] / 2 + 0.6),
                              np.full(len(times), EGO_SIZE[0] / 2 + 0.3)], 1))
    for s in structures:
        u, v = layout.to_road(np.asarray(s['center'][:2]))
        fp = _footprints(float(u), float(v), s['wlh'], s['yaw'] - layout.heading)
        occupied.append(np.tile(np.array(fp), (len(times), 1)))
    t_mid = float(times.mean())
    agents: List[Agent] = []
    order = [n for n in OBJECT_CLASSES if counts.get(n, 0) > 0]
    # Big things first: they are the hardest to fit.
    order.sort(key=lambda n: -OBJECT_CLASSES[n].size[1])
    for name in order:
        kind = OBJECT_CLASSES[name]
        placed = 0
        for _ in range(max_tries):
            if placed == counts[name]:
                break
            v, speed, yaw_rel, u_fixed = _slot(name, rng, flows, layout)
            scale = rng.uniform(0.92, 1.08)
            wlh = tuple(float(x * scale) for x in kind.size)
            # spawn along the ego path, within the class's evaluation range of nuScenes
            reach = SPAWN_REACH.get(name, 45.0)
            u_lo, u_hi = ego_state[:, 0].min() - reach, ego_state[:, 0].max() + reach
            u0 = u_fixed if u_fixed is not None else rng.uniform(u_lo, u_hi) - speed * t_mid
            _, _, du, dv = _footprints(0, 0, wlh, yaw_rel)
            traj = np.stack([u0 + speed * times, np.full(len(times), v)], 1)
            if any(_overlaps(traj, du + 0.3, dv + 0.2, occ) for occ in occupied):
                continue
            occupied.append(np.concatenate([traj, np.tile([du, dv], (len(times), 1))], 1))
            agents.append(Agent(len(agents), kind, wlh, float(u0), float(v), float(speed),
                                float(yaw_rel)))
            placed += 1
        if placed == 0 and name in DETECTION_CLASSES:
            raise RuntimeError(f'could not place any {name!r} in the scene after {max_tries} tries')
    agents.sort(key=lambda a: a.index)
    return SceneWorld(layout=layout, ego=ego, agents=agents, structures=structures)


def _overlaps(traj: np.ndarray, du: float, dv: float, occ: np.ndarray) -> bool:
    """Whether a moving rectangle overlaps an occupied one at any time. Shapes (T, 2), (T, 4)."""
    return bool(np.any((np.abs(traj[:, 0] - occ[:, 0]) < du + occ[:, 2])
                       & (np.abs(traj[:, 1] - occ[:, 1]) < dv + occ[:, 3])))
