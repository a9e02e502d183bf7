"""Road layout of one synthetic scene: the single source of truth for the ground.

The camera renderer, the lidar, the Occ3D labels and the map expansion all read the ground
from here, so that what an image shows, what the map says and what the occupancy labels say
agree. Geometry lives in a road frame (u along the road, v to the left, metres) placed in the
global frame by ``origin`` (x, y) and ``heading`` (radians).

Layout (|v| in metres): road 0..7 with a yellow centre divider and dashed white lane dividers
at ±3.5; walkway 7..10.5; terrain beyond, with trees; building walls at 13.5..17; a cross
street of width 14 centred on ``u = cross_u`` with zebra crossings and stop lines; a car park on
the left at ``carpark_u``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

ROAD_HALF_WIDTH = 7.0
LANE_WIDTH = 3.5
WALKWAY_OUTER = 10.5
CROSS_HALF_WIDTH = 7.0
CROSS_LENGTH = 60.0  # the cross street spans |v| < 60
ZEBRA_GAP, ZEBRA_DEPTH = 1.0, 3.0   # crossings span u in cross ± (half + gap .. half + gap + depth)
STOP_LINE_DEPTH = 0.4
CARPARK_DEPTH, CARPARK_LENGTH = 22.0, 30.0

# Ground classes (index into GROUND_NAMES); ordered from the least to the most specific.
GROUND_NAMES = ('terrain', 'walkway', 'carpark', 'road', 'lane_divider', 'road_divider',
                'ped_crossing', 'stop_line')
GROUND_COLORS = np.array([(86, 125, 62), (165, 163, 158), (112, 112, 118), (68, 68, 72),
                          (235, 235, 235), (225, 200, 60), (240, 240, 240), (245, 245, 245)],
                         dtype=np.uint8)
# Occ3D label of each ground class.
GROUND_OCC = np.array([14, 13, 12, 11, 11, 11, 11, 11], dtype=np.uint8)


@dataclass
class RoadLayout:
    """A straight road with a cross street, in the global frame.

    Attributes:
        origin: (x, y) global position of road coordinate (0, 0), metres.
        heading: global yaw of the +u direction, radians.
        u_range: (min, max) extent of the road along u, metres.
        cross_u: u of the cross street centre line.
        carpark_u: u where the car park on the left side starts.
    """
    origin: Tuple[float, float]
    heading: float
    u_range: Tuple[float, float]
    cross_u: float
    carpark_u: float

    # --- frames ---------------------------------------------------------------------------
    def to_road(self, xy: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Global (..., 2) xy → road coordinates (u, v), each (...)."""
        c, s = math.cos(self.heading), math.sin(self.heading)
        dx = xy[..., 0] - self.origin[0]
        dy = xy[..., 1] - self.origin[1]
        return c * dx + s * dy, -s * dx + c * dy

    def to_global(self, u, v) -> np.ndarray:
        """Road coordinates (u, v) → global (..., 2) xy."""
        c, s = math.cos(self.heading), math.sin(self.heading)
        u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
        return np.stack([self.origin[0] + c * u - s * v, self.origin[1] + s * u + c * v], -1)

    # --- ground ---------------------------------------------------------------------------
    def in_cross(self, u):
        return np.abs(u - self.cross_u) < CROSS_HALF_WIDTH

    def ground_class(self, xy: np.ndarray) -> np.ndarray:
        """Ground class index (see GROUND_NAMES) of global points (..., 2) → uint8 (...)."""
        u, v = self.to_road(xy)
        av = np.abs(v)
        du = np.abs(u - self.cross_u)
        inside = (u > self.u_range[0]) & (u < self.u_range[1])
        road = inside & ((av < ROAD_HALF_WIDTH) | ((du < CROSS_HALF_WIDTH) & (av < CROSS_LENGTH)))
        cls = np.zeros(np.shape(u), dtype=np.uint8)
        cls[inside & (av < WALKWAY_OUTER)] = 1
        carpark = (inside & (v > WALKWAY_OUTER) & (v < WALKWAY_OUTER + CARPARK_DEPTH)
                   & (u > self.carpark_u) & (u < self.carpark_u + CARPARK_LENGTH))
        cls[carpark] = 2
        cls[road] = 3
        main = road & (du >= CROSS_HALF_WIDTH + ZEBRA_GAP + ZEBRA_DEPTH)
        dash = np.mod(u, 9.0) < 3.0
        cls[main & (np.abs(av - LANE_WIDTH) < 0.08) & dash] = 4
        cls[main & (av < 0.12)] = 5
        zebra_band = ((du >= CROSS_HALF_WIDTH + ZEBRA_GAP)
                      & (du < CROSS_HALF_WIDTH + ZEBRA_GAP + ZEBRA_DEPTH))
        stripes = np.mod(v, 1.2) < 0.6
        cls[road & zebra_band & (av < ROAD_HALF_WIDTH) & stripes] = 6
        stop = ((du >= CROSS_HALF_WIDTH + ZEBRA_GAP + ZEBRA_DEPTH)
                & (du < CROSS_HALF_WIDTH + ZEBRA_GAP + ZEBRA_DEPTH + STOP_LINE_DEPTH)
                & (np.sign(u - self.cross_u) == np.sign(v)) & (av < ROAD_HALF_WIDTH))
        cls[road & stop] = 7
        return cls

    # --- static structures (walls and trees; not annotated) --------------------------------
    def static_structures(self, rng: np.random.Generator) -> List[dict]:
        """Walls (Occ3D manmade) and trees (vegetation) beside the road.

        Returns dicts with global ``center`` (3,), ``wlh`` (3,), ``yaw``, ``color`` and
        ``occ_label``, in the same form as annotated objects.
        """
        out: List[dict] = []
        for side in (-1, 1):
            u = self.u_range[0]
            while u < self.u_range[1]:
                length = float(rng.uniform(12, 30))
                gap = float(rng.uniform(3, 10))
                mid = u + length / 2
                clear_cross = abs(mid - self.cross_u) > CROSS_HALF_WIDTH + length / 2 + 4
                clear_park = side < 0 or not (self.carpark_u - length / 2 - 3 < mid
                                              < self.carpark_u + CARPARK_LENGTH + length / 2 + 3)
                if clear_cross and clear_park:
                    height = float(rng.uniform(4, 9))
                    depth = 3.5
                    v = side * (13.5 + depth / 2)
                    xy = self.to_global(mid, v)
                    shade = int(rng.integers(120, 200))
                    out.append(dict(center=np.array([xy[0], xy[1], height / 2]),
                                    wlh=(depth, length, height), yaw=self.heading,
                                    color=(shade, shade - 25, shade - 50), occ_label=15))
                u += length + gap
            for u_tree in np.arange(self.u_range[0] + 5, self.u_range[1], 14.0):
                if abs(u_tree - self.cross_u) < CROSS_HALF_WIDTH + 3:
                    continue
                if side > 0 and self.carpark_u - 2 < u_tree < self.carpark_u + CARPARK_LENGTH + 2:
                    continue
                xy = self.to_global(u_tree + rng.uniform(-2, 2), side * 11.9)
                out.append(dict(center=np.array([xy[0], xy[1], 2.5]), wlh=(1.6, 1.6, 5.0),
                                yaw=self.heading, color=(40, 110, 45), occ_label=16))
        return out

    # --- map expansion ------------------------------------------------------------------------
    def map_polygons(self) -> Dict[str, List[List[Tuple[float, float]]]]:
        """Polygons (global xy rings) per map-expansion layer, and line strings for dividers.

        Keys: drivable_area, road_segment, lane, ped_crossing, walkway, stop_line, carpark_area
        (polygons) and road_divider, lane_divider (lines).
        """
        u0, u1 = self.u_range
        cu, h = self.cross_u, CROSS_HALF_WIDTH

        def rect(ua, ub, va, vb):
            return [tuple(p) for p in self.to_global([ua, ub, ub, ua], [va, va, vb, vb])]

        def line(ua, ub, v):
            return [tuple(p) for p in self.to_global([ua, ub], [v, v])]

        zebra = [(cu - h - ZEBRA_GAP - ZEBRA_DEPTH, cu - h - ZEBRA_GAP),
                 (cu + h + ZEBRA_GAP, cu + h + ZEBRA_GAP + ZEBRA_DEPTH)]
        stop_far = h + ZEBRA_GAP + ZEBRA_DEPTH
        main_road = rect(u0, u1, -ROAD_HALF_WIDTH, ROAD_HALF_WIDTH)
        cross_road = rect(cu - h, cu + h, -CROSS_LENGTH, CROSS_LENGTH)
        out = {
            'drivable_area': [main_road, cross_road],
            'road_segment': [main_road, cross_road],
            'lane': [rect(u0, u1, a, a + LANE_WIDTH) for a in (-7.0, -3.5, 0.0, 3.5)],
            'ped_crossing': [rect(a, b, -ROAD_HALF_WIDTH, ROAD_HALF_WIDTH) for a, b in zebra],
            'walkway': [rect(a, b, s * ROAD_HALF_WIDTH, s * WALKWAY_OUTER)
                        for a, b in ((u0, cu - h), (cu + h, u1)) for s in (-1, 1)],
            'stop_line': [rect(cu - stop_far - STOP_LINE_DEPTH, cu - stop_far, -ROAD_HALF_WIDTH, 0),
                          rect(cu + stop_far, cu + stop_far + STOP_LINE_DEPTH, 0, ROAD_HALF_WIDTH)],
            'carpark_area': [rect(self.carpark_u, self.carpark_u + CARPARK_LENGTH,
                                  WALKWAY_OUTER, WALKWAY_OUTER + CARPARK_DEPTH)],
            'road_divider': [line(u0, zebra[0][0], 0.0), line(zebra[1][1], u1, 0.0)],
            'lane_divider': [line(u0, zebra[0][0], s * LANE_WIDTH) for s in (-1, 1)]
            + [line(zebra[1][1], u1, s * LANE_WIDTH) for s in (-1, 1)],
        }
        return out
