#!/usr/bin/env python3
"""Writes the small PyTorch fixtures of internal/torchfile into this directory.

Run with PyTorch 1.13 and NumPy (Debian bookworm: apt-get install python3-torch):

    python3 testdata/torch/make_fixtures.py

The project never needs Python: the generated files are committed. Tensors are
drawn from a fixed seed, so a re-run reproduces every value; legacy-format files
differ only in their storage keys (memory addresses).

Expected values are written with numpy.savez_compressed as C-ordered float32
arrays, one member per tensor, in the order the loader must return them.

Files:

  old_layout_legacy.pt        legacy (pre-1.6) torch.save of an NVIDIA-style training
                              checkpoint {'model', 'iteration', 'optimizer',
                              'learning_rate'} whose WaveGlow uses the pre-2019 WN
                              layout of glow_old.py (cond_layers, res_layers,
                              skip_layers). Like checkpoints of torch 0.4, every
                              module carries a `_backend` attribute, the module
                              class persistent ids carry a source file and source
                              text, and the Adam state is keyed by id(param) with
                              Python-int steps.
  old_layout_legacy.expected.npz
                              named_parameters() of that model (weight_g/weight_v),
                              in order.
  old_layout_legacy.converted.npz
                              the same model as a current-layout inference state
                              dict: every weight-normed weight folded in float32
                              (torch._weight_norm, g*v/|v|), then concatenated as
                              NVIDIA's convert_model.py does: cond_layer =
                              cat(cond_layers), res_skip_layers[i] =
                              cat(res_layers[i], skip_layers[i]), the last one =
                              skip_layers[L-1]. (convert_model.py re-applies and
                              removes weight norm after concatenating, which
                              changes the values by float32 rounding only.)
  state_dict_fp16.pt          that converted state dict in float16 (zip format).
  state_dict_fp16.expected.npz
                              its values widened to float32.
  tensors_misc.pt             zip-format OrderedDict exercising dtypes (float64,
                              bfloat16, int64, bool), views (transpose, storage
                              offset, expand, shared storage), a 0-d and an empty
                              tensor, torch._utils._rebuild_tensor with a
                              torch.Size, and _rebuild_parameter_with_state.
  tensors_misc.expected.npz   the expected float32 values.
  mel_transposed.pt           torch.randn(20, 8).t(): a non-contiguous [8, 20] mel.
  mel_batched.pt              a contiguous [1, 8, 20] mel.
  mel_legacy_view.pt          legacy format: torch.randn(8, 30)[:, 5:25] (storage
                              offset 5, row stride 30).
  mels.expected.npz           the three mels, keyed by file name.
  evil_os_system.pt           a checkpoint whose pickle calls os.system (REDUCE of
                              posix.system). It must be refused, never executed.
  huge_storage.pt             zip whose data.pkl declares a float storage of 2^31
                              elements (8 GiB) backed by a 4-byte record.
"""

import collections
import importlib.util
import io
import os
import pickle
import sys
import tempfile
import zipfile

import numpy as np
import torch
from torch.nn.utils.weight_norm import WeightNorm

OUT = os.path.dirname(os.path.abspath(__file__))

# The pre-2019 glow.py (NVIDIA glow_old.py), reduced to what gets pickled. It is
# written to a file named glow.py and imported as module `glow`, so that the
# pickles reference glow.WaveGlow, glow.WN and glow.Invertible1x1Conv and the
# legacy module persistent ids carry a source file and source text.
GLOW_OLD = '''
import torch
from torch.nn.utils.weight_norm import WeightNorm


class Invertible1x1Conv(torch.nn.Module):
    def __init__(self, c):
        super(Invertible1x1Conv, self).__init__()
        self.conv = torch.nn.Conv1d(c, c, kernel_size=1, stride=1, padding=0,
                                    bias=False)
        W = torch.linalg.qr(torch.FloatTensor(c, c).normal_())[0]
        if torch.det(W) < 0:
            W[:, 0] = -1 * W[:, 0]
        W = W.view(c, c, 1)
        self.conv.weight.data = W


class WN(torch.nn.Module):
    def __init__(self, n_in_channels, n_mel_channels, n_layers, n_channels,
                 kernel_size):
        super(WN, self).__init__()
        self.n_layers = n_layers
        self.n_channels = n_channels
        self.in_layers = torch.nn.ModuleList()
        self.res_layers = torch.nn.ModuleList()
        self.skip_layers = torch.nn.ModuleList()
        self.cond_layers = torch.nn.ModuleList()

        start = torch.nn.Conv1d(n_in_channels, n_channels, 1)
        start = torch.nn.utils.weight_norm(start, name='weight')
        self.start = start

        end = torch.nn.Conv1d(n_channels, 2*n_in_channels, 1)
        self.end = end

        for i in range(n_layers):
            dilation = 2 ** i
            padding = int((kernel_size*dilation - dilation)/2)
            in_layer = torch.nn.Conv1d(n_channels, 2*n_channels, kernel_size,
                                       dilation=dilation, padding=padding)
            in_layer = torch.nn.utils.weight_norm(in_layer, name='weight')
            self.in_layers.append(in_layer)

            cond_layer = torch.nn.Conv1d(n_mel_channels, 2*n_channels, 1)
            cond_layer = torch.nn.utils.weight_norm(cond_layer, name='weight')
            self.cond_layers.append(cond_layer)

            if i < n_layers - 1:
                res_layer = torch.nn.Conv1d(n_channels, n_channels, 1)
                res_layer = torch.nn.utils.weight_norm(res_layer, name='weight')
                self.res_layers.append(res_layer)

            skip_layer = torch.nn.Conv1d(n_channels, n_channels, 1)
            skip_layer = torch.nn.utils.weight_norm(skip_layer, name='weight')
            self.skip_layers.append(skip_layer)


class WaveGlow(torch.nn.Module):
    def __init__(self, n_mel_channels, n_flows, n_group, n_early_every,
                 n_early_size, WN_config):
        super(WaveGlow, self).__init__()
        self.upsample = torch.nn.ConvTranspose1d(n_mel_channels,
                                                 n_mel_channels,
                                                 1024, stride=256)
        self.n_flows = n_flows
        self.n_group = n_group
        self.n_early_every = n_early_every
        self.n_early_size = n_early_size
        self.WN = torch.nn.ModuleList()
        self.convinv = torch.nn.ModuleList()

        n_half = int(n_group/2)
        n_remaining_channels = n_group
        for k in range(n_flows):
            if k % self.n_early_every == 0 and k > 0:
                n_half = n_half - int(self.n_early_size/2)
                n_remaining_channels = n_remaining_channels - self.n_early_size
            self.convinv.append(Invertible1x1Conv(n_remaining_channels))
            self.WN.append(WN(n_half, n_mel_channels*n_group, **WN_config))
        self.n_remaining_channels = n_remaining_channels
'''

OLD_CONFIG = dict(n_mel_channels=1, n_flows=4, n_group=8, n_early_every=2,
                  n_early_size=2,
                  WN_config=dict(n_layers=2, n_channels=4, kernel_size=3))


def import_glow(tmp):
    path = os.path.join(tmp, 'glow.py')
    with open(path, 'w') as f:
        f.write(GLOW_OLD)
    os.chdir(tmp)  # the pickled source_file is then the stable name 'glow.py'
    spec = importlib.util.spec_from_file_location('glow', 'glow.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules['glow'] = mod
    spec.loader.exec_module(mod)
    return mod


class ThnnBackend:
    """Pickles like torch 0.4's module `_backend` attribute."""

    def __reduce__(self):
        import torch.nn.backends.thnn
        return (torch.nn.backends.thnn._get_thnn_function_backend, ())


def weight_normed(module):
    return any(isinstance(h, WeightNorm)
               for h in module._forward_pre_hooks.values())


def folded(module):
    return torch._weight_norm(module.weight_v.detach(), module.weight_g.detach(), 0)


def convert(model):
    """The current-layout inference state dict of an old-layout model."""
    out = collections.OrderedDict()
    up = model.upsample
    out['upsample.weight'] = up.weight.detach()
    out['upsample.bias'] = up.bias.detach()
    for k, wn in enumerate(model.WN):
        p = 'WN.%d.' % k
        L = wn.n_layers
        for i in range(L):
            out[p + 'in_layers.%d.bias' % i] = wn.in_layers[i].bias.detach()
            out[p + 'in_layers.%d.weight' % i] = folded(wn.in_layers[i])
        for i in range(L):
            skip = wn.skip_layers[i]
            if i < L - 1:
                res = wn.res_layers[i]
                b = torch.cat([res.bias.detach(), skip.bias.detach()])
                w = torch.cat([folded(res), folded(skip)])
            else:
                b, w = skip.bias.detach(), folded(skip)
            out[p + 'res_skip_layers.%d.bias' % i] = b
            out[p + 'res_skip_layers.%d.weight' % i] = w
        out[p + 'start.bias'] = wn.start.bias.detach()
        out[p + 'start.weight'] = folded(wn.start)
        out[p + 'end.weight'] = wn.end.weight.detach()
        out[p + 'end.bias'] = wn.end.bias.detach()
        out[p + 'cond_layer.bias'] = torch.cat([c.bias.detach() for c in wn.cond_layers])
        out[p + 'cond_layer.weight'] = torch.cat([folded(c) for c in wn.cond_layers])
    for k, c in enumerate(model.convinv):
        out['convinv.%d.conv.weight' % k] = c.conv.weight.detach()
    return out


def savez(name, arrays):
    np.savez_compressed(os.path.join(OUT, name),
                        **{k: np.array(v.detach().float().numpy(), order="C")
                           for k, v in arrays.items()})


def old_layout(glow):
    torch.manual_seed(1)
    model = glow.WaveGlow(**OLD_CONFIG)
    with torch.no_grad():
        for m in model.modules():
            if weight_normed(m):
                # g != |v| and a stale `weight` attribute, as in NVIDIA's checkpoints
                m.weight_g.mul_(torch.empty_like(m.weight_g).uniform_(0.5, 1.5))
            if isinstance(m, torch.nn.Conv1d) and m.bias is not None:
                m.bias.normal_(0, 0.1)
        for m in model.modules():
            m._backend = ThnnBackend()
    params = list(model.named_parameters())
    # torch < 1.5 keyed the Adam state by id(param); torch < 1.12 used int steps.
    ids = [139871996510208 + 64 * i for i in range(len(params))]
    state = {}
    for i in reversed(range(len(params))):
        p = params[i][1].detach()
        state[ids[i]] = {'step': 5, 'exp_avg': p * 0.5, 'exp_avg_sq': p * p}
    optimizer = {'state': state,
                 'param_groups': [{'lr': 0.001, 'betas': (0.9, 0.999), 'eps': 1e-08,
                                   'weight_decay': 0, 'amsgrad': False,
                                   'params': ids}]}
    ckpt = {'model': model, 'iteration': 7, 'optimizer': optimizer,
            'learning_rate': 0.001}
    torch.save(ckpt, os.path.join(OUT, 'old_layout_legacy.pt'),
               _use_new_zipfile_serialization=False)
    savez('old_layout_legacy.expected.npz', collections.OrderedDict(params))
    conv = convert(model)
    savez('old_layout_legacy.converted.npz', conv)
    half = collections.OrderedDict((k, v.half()) for k, v in conv.items())
    torch.save(half, os.path.join(OUT, 'state_dict_fp16.pt'))
    savez('state_dict_fp16.expected.npz', half)


class OldTensor:
    """Pickles like a tensor of torch 0.3: torch._utils._rebuild_tensor(storage,
    offset, torch.Size, stride)."""

    def __init__(self, t):
        self.t = t

    def __reduce__(self):
        t = self.t
        return (torch._utils._rebuild_tensor,
                (t.storage(), t.storage_offset(), torch.Size(t.size()), t.stride()))


def _rebuild_parameter_with_state(data, requires_grad, backward_hooks, state):
    """Stand-in for the function of newer PyTorch versions (only pickled by name)."""
    raise NotImplementedError


_rebuild_parameter_with_state.__module__ = 'torch._utils'
torch._utils._rebuild_parameter_with_state = _rebuild_parameter_with_state


class ParameterWithState:
    """Pickles like a Parameter with attributes in newer PyTorch versions."""

    def __init__(self, t):
        self.t = t

    def __reduce__(self):
        return (torch._utils._rebuild_parameter_with_state,
                (self.t, True, collections.OrderedDict(), {'tag': 'extra'}))


def misc():
    torch.manual_seed(2)
    base = torch.randn(4, 6)
    sd = collections.OrderedDict()
    sd['f64'] = torch.randn(3, 2, dtype=torch.float64)
    sd['bf16'] = torch.randn(5).bfloat16()
    sd['i64'] = torch.tensor([-3, 0, 7, 1 << 40])
    sd['bool'] = torch.tensor([True, False, True])
    sd['transposed'] = base.t()
    sd['offset_view'] = base[1:3, 2:5]
    sd['shared_row'] = base[3]
    sd['expanded'] = torch.randn(3).expand(2, 3)
    sd['scalar'] = torch.tensor(2.5)
    sd['empty'] = torch.zeros(0, 3)
    sd['permuted'] = torch.randn(2, 3, 4).permute(2, 0, 1)
    expected = collections.OrderedDict((k, v) for k, v in sd.items())
    old = torch.randn(6)[1:4]
    sd['old_rebuild'] = OldTensor(old)
    expected['old_rebuild'] = old
    pws = torch.randn(2, 2)
    sd['param_with_state'] = ParameterWithState(pws)
    expected['param_with_state'] = pws
    torch.save(sd, os.path.join(OUT, 'tensors_misc.pt'))
    savez('tensors_misc.expected.npz', expected)


def mels():
    torch.manual_seed(3)
    transposed = torch.randn(20, 8).t()
    batched = torch.randn(1, 8, 20)
    view = torch.randn(8, 30)[:, 5:25]
    torch.save(transposed, os.path.join(OUT, 'mel_transposed.pt'))
    torch.save(batched, os.path.join(OUT, 'mel_batched.pt'))
    torch.save(view, os.path.join(OUT, 'mel_legacy_view.pt'),
               _use_new_zipfile_serialization=False)
    savez('mels.expected.npz', {'mel_transposed.pt': transposed,
                                'mel_batched.pt': batched,
                                'mel_legacy_view.pt': view})


class Evil:
    def __reduce__(self):
        return (os.system, ('echo torchfile fixture: this must never run',))


def evil():
    torch.save({'model': Evil(), 'iteration': 1}, os.path.join(OUT, 'evil_os_system.pt'))


class FakeTensor:
    def __init__(self, storage, n):
        self.storage, self.n = storage, n

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, 0, (self.n,), (1,), False, collections.OrderedDict()))


class FakeStorage:
    pass


def huge():
    storage = FakeStorage()
    n = 1 << 31
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=2)
    p.persistent_id = lambda obj: (('storage', torch.FloatStorage, '0', 'cpu', n)
                                   if obj is storage else None)
    p.dump(collections.OrderedDict([('weight', FakeTensor(storage, n))]))
    with zipfile.ZipFile(os.path.join(OUT, 'huge_storage.pt'), 'w',
                         zipfile.ZIP_STORED) as z:
        z.writestr('huge_storage/data.pkl', buf.getvalue())
        z.writestr('huge_storage/data/0', b'\0\0\0\0')
        z.writestr('huge_storage/version', b'3\n')


def main():
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        glow = import_glow(tmp)
        try:
            old_layout(glow)
        finally:
            os.chdir(cwd)
    misc()
    mels()
    evil()
    huge()


if __name__ == '__main__':
    main()
