"""One rank of the 2-process gloo metric test (run by test_dense_metrics.py, not by pytest).

    python metric_ddp_worker.py OUT_JSON   (env: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)

Each rank processes its DistributedSampler share of 5 samples (rank 1 gets the padding
duplicate of sample 0) and calls ``evaluate(size=5)``, as mmengine's ValLoop does.
"""
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch.distributed as dist  # noqa: E402

from metric_samples import map_samples, occ_samples  # noqa: E402
from ptqat.evaluation import BEVMapSegMetric, Occ3DMetric  # noqa: E402


def main(out: str) -> None:
    dist.init_process_group(backend='gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    n = 5
    padded = list(range(n)) + list(range(n))[:(-n) % world]  # DistributedSampler padding
    mine = padded[rank::world]
    res = {}
    for metric, samples in ((Occ3DMetric(), occ_samples(n)),
                            (BEVMapSegMetric(), map_samples(n))):
        for i in mine:
            metric.process({}, [samples[i]])
        res.update(metric.evaluate(size=n))
    if rank == 0:
        with open(out, 'w') as f:
            json.dump(res, f)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
