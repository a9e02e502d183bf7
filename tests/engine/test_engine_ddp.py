"""Two gloo processes on CPU (launcher='pytorch'): same calibration, same selection, identical
weights after DDP fine-tuning; the hook re-wraps DDP so frozen parameters are not waited for."""
import os
import os.path as osp
import socket
import subprocess
import sys

import torch

HERE = osp.dirname(osp.abspath(__file__))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_ddp(tmp_path, fp_ckpt):
    work = str(tmp_path / 'work')
    port = _free_port()
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE='2', MASTER_ADDR='127.0.0.1',
                   MASTER_PORT=str(port), OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
        procs.append(subprocess.Popen([sys.executable, osp.join(HERE, 'ddp_worker.py'), work, fp_ckpt], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    for rank, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f'rank {rank} failed:\n{out[-4000:]}'
    r0, r1 = (torch.load(osp.join(work, f'rank{r}.pth'), weights_only=False) for r in range(2))
    assert r0['selected'] == r1['selected'] and len(r0['selected']) == 3
    assert r0['wrapper'] == 'PTQATToyCPUDDP' and r0['rewrapped'] and r1['rewrapped']
    assert r0['state_dict'].keys() == r1['state_dict'].keys()
    for k in r0['state_dict']:
        assert torch.equal(r0['state_dict'][k], r1['state_dict'][k]), k
    # training happened (on the selected layers only) and files came from rank 0 only
    before = torch.load(osp.join(work, 'ptq_calibrated.pth'))['state_dict']
    for k, v in r0['state_dict'].items():
        layer_selected = any(k.startswith(s + '.') for s in r0['selected'])
        if k.endswith('.weight') and layer_selected:
            assert not torch.equal(before[k], v), k
        elif not layer_selected:
            assert torch.equal(before[k], v), k
    assert osp.isfile(osp.join(work, 'discrepancy.json'))
    assert 're-wrapped the model in PTQATToyCPUDDP' in outs[0]
    assert 'world_size' in open(osp.join(work, 'discrepancy.json')).read()
