"""One rank of the 2-process gloo DDP test (run by test_engine_ddp.py, not by pytest).

    python ddp_worker.py WORK_DIR FP_CHECKPOINT   (env: RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)

Trains the toy PTQAT config with launcher='pytorch' and writes ``rank<r>.pth`` with the
selection, the wrapper type and the final state_dict.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

from ptqat_toys import toy_cfg  # noqa: E402
from ptqat.quant import trainable_layers  # noqa: E402


def main(work_dir: str, fp_ckpt: str) -> None:
    torch.set_num_threads(1)
    # mmengine's pytorch launcher calls torch.cuda.set_device; with a process group already
    # initialised the Runner skips its own initialisation
    dist.init_process_group(backend='gloo')
    rank = dist.get_rank()
    cfg = toy_cfg(work_dir, load_from=fp_ckpt, hook=dict(strategy='small', ratio=0.5, calib_batches=4),
                  max_iters=3, launcher='pytorch', model_wrapper_cfg=dict(type='PTQATToyCPUDDP'),
                  experiment_name='ptqat_ddp_toy')
    runner = Runner.from_cfg(Config(cfg))
    first_wrapper = id(runner.model)
    runner.train()
    module = runner.model.module
    torch.save(dict(selected=trainable_layers(module), wrapper=type(runner.model).__name__,
                    rewrapped=id(runner.model) != first_wrapper,
                    state_dict={k: v.detach().clone() for k, v in module.state_dict().items()}),
               osp.join(work_dir, f'rank{rank}.pth'))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
