"""Independent PyTorch reference implementations, written the way the original authors wrote them.

MSConv in the authors' layout (convs / fc / fcs / fc_d, BN + PReLU everywhere, one shared PReLU
slope as their nn.PReLU()) with the ablation switches, the paper's form, SKConv as in SKNet's
reference code (stacked branches, softmax over the branch axis), SCConv as its reference code
(cheng-haha/ScConv: SRU then CRU, line for line in behaviour) and insightface's iResNet. The
authors' MSNet frame is in authors_msnet.py, as their file writes it. Used by the test fixtures
only; the C++ library shares no code with this file.

`slopes` is the frame's PReLU: "shared" (nn.PReLU(), the authors' MSNet) or "channel"
(nn.PReLU(C), insightface's iResNet); an operator's own PReLUs follow its frame.
"""
import torch
from torch import nn
import torch.nn.functional as F


def prelu(channels, slopes):
    return nn.PReLU() if slopes == "shared" else nn.PReLU(channels)


def conv_bn(cin, cout, k=1, stride=1, dilation=1, groups=1, act=None, slopes="shared"):
    pad = dilation * (k // 2)
    layers = [nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act == "prelu":
        layers.append(prelu(cout, slopes))
    elif act == "relu":
        layers.append(nn.ReLU(inplace=False))
    return nn.Sequential(*layers)


class MSConv(nn.Module):
    """MSConv. official=True: the authors' layer details; False: the paper's Algorithm 1."""

    def __init__(self, features, stride=1, G=32, r=16, L=32, dilations=(1, 2), fusion="mul",
                 diff="sub", official=True, slopes="shared"):
        super().__init__()
        d = max(features // r, L)
        act = "prelu" if official else "relu"
        self.official, self.fusion, self.diff = official, fusion, diff
        self.convs = nn.ModuleList([conv_bn(features, features, 3, stride, dl, G, act, slopes)
                                    for dl in dilations])
        self.fc = conv_bn(features, d, act=act, slopes=slopes)
        if official:
            self.fcs = nn.ModuleList([conv_bn(d, features, act="prelu", slopes=slopes)
                                      for _ in range(2)])
            self.fc_d = conv_bn(features, features, act="prelu", slopes=slopes)
        else:
            self.fcs = nn.ModuleList([nn.Conv2d(d, features, 1) for _ in range(2)])
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        u1, u2 = self.convs[0](x), self.convs[1](x)
        fused = {"mul": u1 * u2, "add": u1 + u2, "first": u1}[self.fusion]
        z = self.fc(self.gap(fused))
        a, b = self.fcs[0](z), self.fcs[1](z)
        c = torch.sigmoid(a - b + 1e-6) if self.official else torch.sigmoid(a - b)
        u4 = u1 - u2 if self.diff == "sub" else u1 + u2
        v = u4 * c + u2
        return self.fc_d(v) if self.official else v


class SKConv(nn.Module):
    def __init__(self, features, stride=1, G=32, r=16, L=32, dilations=(1, 2)):
        super().__init__()
        d = max(features // r, L)
        self.features = features
        self.convs = nn.ModuleList([conv_bn(features, features, 3, stride, dl, G, "relu")
                                    for dl in dilations])
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = conv_bn(features, d, act="relu")
        self.fcs = nn.ModuleList([nn.Conv2d(d, features, 1) for _ in range(2)])
        self.softmax = nn.Softmax(dim=1)

    def forward(self, x):
        n = x.shape[0]
        feats = torch.stack([conv(x) for conv in self.convs], dim=1)
        z = self.fc(self.gap(feats.sum(dim=1)))
        att = torch.cat([fc(z) for fc in self.fcs], dim=1).view(n, 2, self.features, 1, 1)
        return (feats * self.softmax(att)).sum(dim=1)


class SRU(nn.Module):
    """cheng-haha/ScConv's SRU (torch_gn=True): the gate weights the input x itself, softly at or
    below the threshold."""

    def __init__(self, oup_channels, group_num=16, gate_treshold=0.5):
        super().__init__()
        self.gn = nn.GroupNorm(num_channels=oup_channels, num_groups=group_num)
        self.gate_treshold = gate_treshold
        self.sigomid = nn.Sigmoid()

    def forward(self, x):
        gn_x = self.gn(x)
        w_gamma = self.gn.weight / sum(self.gn.weight)
        w_gamma = w_gamma.view(1, -1, 1, 1)
        reweigts = self.sigomid(gn_x * w_gamma)
        w1 = torch.where(reweigts > self.gate_treshold, torch.ones_like(reweigts), reweigts)
        w2 = torch.where(reweigts > self.gate_treshold, torch.zeros_like(reweigts), reweigts)
        x_1 = w1 * x
        x_2 = w2 * x
        return self.reconstruct(x_1, x_2)

    def reconstruct(self, x_1, x_2):
        x_11, x_12 = torch.split(x_1, x_1.size(1) // 2, dim=1)
        x_21, x_22 = torch.split(x_2, x_2.size(1) // 2, dim=1)
        return torch.cat([x_11 + x_22, x_12 + x_21], dim=1)


class CRU(nn.Module):
    """cheng-haha/ScConv's CRU: the group-wise conv (GWC) keeps its bias."""

    def __init__(self, op_channel, alpha=1 / 2, squeeze_radio=2, group_size=2, group_kernel_size=3):
        super().__init__()
        self.up_channel = up_channel = int(alpha * op_channel)
        self.low_channel = low_channel = op_channel - up_channel
        self.squeeze1 = nn.Conv2d(up_channel, up_channel // squeeze_radio, kernel_size=1, bias=False)
        self.squeeze2 = nn.Conv2d(low_channel, low_channel // squeeze_radio, kernel_size=1,
                                  bias=False)
        self.GWC = nn.Conv2d(up_channel // squeeze_radio, op_channel, kernel_size=group_kernel_size,
                             stride=1, padding=group_kernel_size // 2, groups=group_size)
        self.PWC1 = nn.Conv2d(up_channel // squeeze_radio, op_channel, kernel_size=1, bias=False)
        self.PWC2 = nn.Conv2d(low_channel // squeeze_radio, op_channel - low_channel // squeeze_radio,
                              kernel_size=1, bias=False)
        self.advavg = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        up, low = torch.split(x, [self.up_channel, self.low_channel], dim=1)
        up, low = self.squeeze1(up), self.squeeze2(low)
        Y1 = self.GWC(up) + self.PWC1(up)
        Y2 = torch.cat([self.PWC2(low), low], dim=1)
        out = torch.cat([Y1, Y2], dim=1)
        out = F.softmax(self.advavg(out), dim=1) * out
        out1, out2 = torch.split(out, out.size(1) // 2, dim=1)
        return out1 + out2


class ScConv(nn.Module):
    """cheng-haha/ScConv's module: SRU then CRU (group_num 4)."""

    def __init__(self, op_channel, group_num=4, gate_treshold=0.5, alpha=1 / 2, squeeze_radio=2,
                 group_size=2, group_kernel_size=3):
        super().__init__()
        self.SRU = SRU(op_channel, group_num=group_num, gate_treshold=gate_treshold)
        self.CRU = CRU(op_channel, alpha=alpha, squeeze_radio=squeeze_radio, group_size=group_size,
                       group_kernel_size=group_kernel_size)

    def forward(self, x):
        x = self.SRU(x)
        x = self.CRU(x)
        return x


class SCConv(nn.Module):
    """The 3x3 operator of the frame: ScConv's SRU and CRU (a 3x3 average pool between them for
    stride 2, SCConv having no stride of its own), then the frame's BN + PReLU. Parameter names
    are MSConv Lab's (gn, squeeze1, ..., bn, act): ScConv's SRU.gn.* and CRU.* without the
    prefixes."""

    def __init__(self, features, stride=1, gn_groups=4, slopes="shared"):
        super().__init__()
        self.stride = stride
        core = ScConv(features, group_num=gn_groups)
        object.__setattr__(self, "core", core)  # not registered: its parts are, under our names
        self.gn = core.SRU.gn
        for name in ("squeeze1", "squeeze2", "GWC", "PWC1", "PWC2"):
            setattr(self, name, getattr(core.CRU, name))
        self.bn = nn.BatchNorm2d(features)
        self.act = prelu(features, slopes)

    def forward(self, x):
        y = self.core.SRU(x)
        if self.stride > 1:
            y = F.avg_pool2d(y, 3, self.stride, 1, count_include_pad=False)
        return self.act(self.bn(self.core.CRU(y)))


def conv3x3_baseline(features, stride=1, G=32, slopes="shared"):
    return conv_bn(features, features, 3, stride, 1, G, "prelu", slopes)


# ---- insightface's iResNet -----------------------------------------------------------------

def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class IBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)  # insightface: one slope per channel
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.bn1(x)
        out = self.conv1(out)
        out = self.bn2(out)
        out = self.prelu(out)
        out = self.conv2(out)
        out = self.bn3(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return out


class IResNet(nn.Module):
    fc_scale = 7 * 7

    def __init__(self, layers, num_features=512, width=1.0):
        super().__init__()
        w = lambda c: max(8, int(round(c * width / 8.0)) * 8)
        self.inplanes = w(64)
        self.conv1 = nn.Conv2d(3, w(64), 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w(64), eps=1e-05)
        self.prelu = nn.PReLU(w(64))
        self.layer1 = self._make_layer(w(64), layers[0], 2)
        self.layer2 = self._make_layer(w(128), layers[1], 2)
        self.layer3 = self._make_layer(w(256), layers[2], 2)
        self.layer4 = self._make_layer(w(512), layers[3], 2)
        self.bn2 = nn.BatchNorm2d(w(512), eps=1e-05)
        self.dropout = nn.Dropout(p=0, inplace=True)
        self.fc = nn.Linear(w(512) * self.fc_scale, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes, eps=1e-05))
        layers = [IBasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(IBasicBlock(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.bn2(x)
        x = torch.flatten(x, 1)
        x = self.dropout(x)
        x = self.fc(x)
        return self.features(x)


def randomize(module, generator):
    """Give BN, PReLU and biases non-default values so that the tests exercise them."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
                if m.weight.requires_grad:
                    m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.uniform_(-0.2, 0.2, generator=generator)
                m.running_mean.uniform_(-0.1, 0.1, generator=generator)
                m.running_var.uniform_(0.5, 1.5, generator=generator)
            elif isinstance(m, nn.PReLU):
                m.weight.uniform_(0.05, 0.4, generator=generator)
            elif isinstance(m, nn.GroupNorm):
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.uniform_(-0.2, 0.2, generator=generator)
