#!/usr/bin/env python3
"""PyTorch yardstick for `vocode bench` and the training-step benchmark.

Optional and never needed by glowvoc: it times NVIDIA's WaveGlow (the
glow.py model, restated below with the same layers and the same order of
operations) on this machine so the Go figures can be compared with PyTorch
measured in the same conditions, not with numbers from another machine.

    apt-get install python3-torch
    python3 scripts/pytorch_bench.py infer --config configs/universal.json --threads 1,2
    python3 scripts/pytorch_bench.py train --config configs/small.json --threads 2 --batch 2

Random weights of realistic scale (the timing does not depend on them),
a 172-frame mel (2 s of 22.05 kHz audio), σ = 0.6; training steps run
forward, the WaveGlow loss, backward and Adam with weight norm as in
NVIDIA's train.py.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F


def gate(a, b, n):
    s = a + b
    return torch.tanh(s[:, :n]) * torch.sigmoid(s[:, n:])


class WN(torch.nn.Module):
    def __init__(self, n_in, n_mel, layers, channels, kernel):
        super().__init__()
        wn = torch.nn.utils.weight_norm
        self.layers, self.channels = layers, channels
        self.start = wn(torch.nn.Conv1d(n_in, channels, 1), name="weight")
        self.end = torch.nn.Conv1d(channels, 2 * n_in, 1)
        with torch.no_grad():  # NVIDIA zeroes it; small values keep the flow non-trivial
            self.end.weight.normal_(0, 0.02)
            self.end.bias.zero_()
        self.cond = wn(torch.nn.Conv1d(n_mel, 2 * channels * layers, 1), name="weight")
        self.ins, self.rs = torch.nn.ModuleList(), torch.nn.ModuleList()
        for i in range(layers):
            d = 2 ** i
            self.ins.append(wn(torch.nn.Conv1d(channels, 2 * channels, kernel, dilation=d,
                                               padding=(kernel * d - d) // 2), name="weight"))
            out = 2 * channels if i < layers - 1 else channels
            self.rs.append(wn(torch.nn.Conv1d(channels, out, 1), name="weight"))

    def forward(self, audio, spect):
        audio = self.start(audio)
        output = torch.zeros_like(audio)
        spect = self.cond(spect)
        c = self.channels
        for i in range(self.layers):
            acts = gate(self.ins[i](audio), spect[:, i * 2 * c:(i + 1) * 2 * c], c)
            rs = self.rs[i](acts)
            if i < self.layers - 1:
                audio = audio + rs[:, :c]
                output = output + rs[:, c:]
            else:
                output = output + rs
        return self.end(output)


class Inv1x1(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        w = torch.linalg.qr(torch.randn(c, c))[0]
        if torch.det(w) < 0:
            w[:, 0] = -w[:, 0]
        self.conv = torch.nn.Conv1d(c, c, 1, bias=False)
        self.conv.weight.data = w.view(c, c, 1)

    def forward(self, z):
        w = self.conv.weight.squeeze()
        logdet = z.size(0) * z.size(2) * torch.logdet(w)
        return self.conv(z), logdet

    def inverse(self, z):
        return F.conv1d(z, self.conv.weight.squeeze().inverse().unsqueeze(2))


class WaveGlow(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        w = cfg["waveglow_config"]
        n_mel, self.flows, self.group = w["n_mel_channels"], w["n_flows"], w["n_group"]
        self.early_every, self.early_size = w["n_early_every"], w["n_early_size"]
        wn = w["WN_config"]
        self.upsample = torch.nn.ConvTranspose1d(n_mel, n_mel, 1024, stride=256)
        self.WN, self.convinv = torch.nn.ModuleList(), torch.nn.ModuleList()
        half = self.group // 2
        remaining = self.group
        for k in range(self.flows):
            if k % self.early_every == 0 and k > 0:
                half -= self.early_size // 2
                remaining -= self.early_size
            self.convinv.append(Inv1x1(remaining))
            self.WN.append(WN(half, n_mel * self.group, wn["n_layers"], wn["n_channels"], wn["kernel_size"]))
        self.remaining = remaining

    def cond(self, spect, samples=None):
        spect = self.upsample(spect)
        if samples is None:
            spect = spect[:, :, :-(self.upsample.kernel_size[0] - self.upsample.stride[0])]
        else:
            spect = spect[:, :, :samples]
        spect = spect.unfold(2, self.group, self.group).permute(0, 2, 1, 3)
        return spect.contiguous().view(spect.size(0), spect.size(1), -1).permute(0, 2, 1)

    def forward(self, spect, audio):
        spect = self.cond(spect, audio.size(1))
        audio = audio.unfold(1, self.group, self.group).permute(0, 2, 1)
        out, logs, logdets = [], [], []
        for k in range(self.flows):
            if k % self.early_every == 0 and k > 0:
                out.append(audio[:, :self.early_size])
                audio = audio[:, self.early_size:]
            audio, ld = self.convinv[k](audio)
            logdets.append(ld)
            h = audio.size(1) // 2
            o = self.WN[k](audio[:, :h], spect)
            log_s, b = o[:, h:], o[:, :h]
            audio = torch.cat([audio[:, :h], torch.exp(log_s) * audio[:, h:] + b], 1)
            logs.append(log_s)
        out.append(audio)
        return torch.cat(out, 1), logs, logdets

    @torch.no_grad()
    def infer(self, spect, sigma):
        spect = self.cond(spect)
        audio = sigma * torch.randn(spect.size(0), self.remaining, spect.size(2))
        for k in reversed(range(self.flows)):
            h = audio.size(1) // 2
            o = self.WN[k](audio[:, :h], spect)
            s, b = o[:, h:], o[:, :h]
            audio = torch.cat([audio[:, :h], (audio[:, h:] - b) / torch.exp(s)], 1)
            audio = self.convinv[k].inverse(audio)
            if k % self.early_every == 0 and k > 0:
                z = torch.randn(spect.size(0), self.early_size, spect.size(2))
                audio = torch.cat((sigma * z, audio), 1)
        return audio.permute(0, 2, 1).contiguous().view(audio.size(0), -1)


def loss_fn(z, logs, logdets, sigma):
    total = sum(l.sum() for l in logs) + sum(logdets)
    return torch.sum(z * z) / (2 * sigma * sigma) / z.numel() - total / z.numel()


def timed(fn, count):
    fn()  # warm up
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["infer", "train"])
    p.add_argument("--config", required=True)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--frames", type=int, default=172)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--segment", type=int, default=16000)
    p.add_argument("--count", type=int, default=5)
    a = p.parse_args()
    cfg = json.load(open(a.config))
    torch.manual_seed(1)
    model = WaveGlow(cfg)
    print(f"torch {torch.__version__}, {a.mode}, {a.config}")
    for threads in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(threads)
        if a.mode == "infer":
            for m in model.modules():  # inference runs with weight norm folded, as NVIDIA's inference.py
                try:
                    torch.nn.utils.remove_weight_norm(m)
                except ValueError:
                    pass
            mel = torch.randn(1, model.upsample.in_channels, a.frames) * 2 - 6
            med, best = timed(lambda: model.infer(mel, 0.6), a.count)
            print(f"threads {threads}: median {med:.3f} s, best {best:.3f} s per {a.frames}-frame mel")
        else:
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)
            frames = a.segment // 256 + 1
            mel = torch.randn(a.batch, model.upsample.in_channels, frames) * 2 - 6
            audio = torch.randn(a.batch, a.segment) * 0.1

            def step():
                opt.zero_grad()
                z, logs, logdets = model(mel, audio)
                loss = loss_fn(z, logs, logdets, cfg["train_config"]["sigma"])
                loss.backward()
                opt.step()

            med, best = timed(step, a.count)
            print(f"threads {threads}: median {med:.3f} s, best {best:.3f} s per step of {a.batch} x {a.segment}")


if __name__ == "__main__":
    main()
