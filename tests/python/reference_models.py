"""Independent PyTorch reference implementations, written the way the original authors wrote them.

MSConv in the authors' layout (convs / fc / fcs / fc_d, BN + PReLU everywhere), the paper's form,
SKConv as in SKNet's reference code (stacked branches, softmax over the branch axis), SCConv as in
its reference code (SRU then CRU), the authors' MSNet frame and insightface's iResNet. Used by the
test fixtures only; the C++ library shares no code with this file.
"""
import torch
from torch import nn
import torch.nn.functional as F


def conv_bn(cin, cout, k=1, stride=1, dilation=1, groups=1, act=None):
    pad = dilation * (k // 2)
    layers = [nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act == "prelu":
        layers.append(nn.PReLU(cout))
    elif act == "relu":
        layers.append(nn.ReLU(inplace=False))
    return nn.Sequential(*layers)


class MSConv(nn.Module):
    """MSConv. official=True: the authors' layer details; False: the paper's Algorithm 1."""

    def __init__(self, features, stride=1, G=32, r=16, L=32, dilations=(1, 2), fusion="mul",
                 diff="sub", official=True):
        super().__init__()
        d = max(features // r, L)
        act = "prelu" if official else "relu"
        self.official, self.fusion, self.diff = official, fusion, diff
        self.convs = nn.ModuleList([conv_bn(features, features, 3, stride, dl, G, act)
                                    for dl in dilations])
        self.fc = conv_bn(features, d, act=act)
        if official:
            self.fcs = nn.ModuleList([conv_bn(d, features, act="prelu") for _ in range(2)])
            self.fc_d = conv_bn(features, features, act="prelu")
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


class SCConv(nn.Module):
    """SRU (GroupNorm, gamma-weighted gate, mask split, cross reconstruction), then CRU, then the
    frame's BN + PReLU. Stride: a 3x3 average pool between SRU and CRU."""

    def __init__(self, features, stride=1, gn_groups=4, alpha=0.5, squeeze=2, group_size=2):
        super().__init__()
        self.stride = stride
        self.gn = nn.GroupNorm(gn_groups, features)
        self.up = up = int(alpha * features)
        self.low = low = features - up
        self.squeeze1 = nn.Conv2d(up, up // squeeze, 1, bias=False)
        self.squeeze2 = nn.Conv2d(low, low // squeeze, 1, bias=False)
        self.GWC = nn.Conv2d(up // squeeze, features, 3, 1, 1, groups=group_size)
        self.PWC1 = nn.Conv2d(up // squeeze, features, 1, bias=False)
        self.PWC2 = nn.Conv2d(low // squeeze, features - low // squeeze, 1, bias=False)
        self.bn = nn.BatchNorm2d(features)
        self.act = nn.PReLU(features)

    def sru(self, x):
        gn_x = self.gn(x)
        w_gamma = (self.gn.weight / torch.sum(self.gn.weight)).view(1, -1, 1, 1)
        reweights = torch.sigmoid(gn_x * w_gamma)
        info_mask = reweights >= 0.5
        noninfo_mask = reweights < 0.5
        x_1, x_2 = info_mask * gn_x, noninfo_mask * gn_x
        x_11, x_12 = torch.split(x_1, x_1.size(1) // 2, dim=1)
        x_21, x_22 = torch.split(x_2, x_2.size(1) // 2, dim=1)
        return torch.cat([x_11 + x_22, x_12 + x_21], dim=1)

    def cru(self, x):
        up, low = torch.split(x, [self.up, self.low], dim=1)
        up, low = self.squeeze1(up), self.squeeze2(low)
        y1 = self.GWC(up) + self.PWC1(up)
        y2 = torch.cat([self.PWC2(low), low], dim=1)
        out = torch.cat([y1, y2], dim=1)
        out = F.softmax(F.adaptive_avg_pool2d(out, 1), dim=1) * out
        out1, out2 = torch.split(out, out.size(1) // 2, dim=1)
        return out1 + out2

    def forward(self, x):
        y = self.sru(x)
        if self.stride > 1:
            y = F.avg_pool2d(y, 3, self.stride, 1, count_include_pad=False)
        return self.act(self.bn(self.cru(y)))


def conv3x3_baseline(features, stride=1, G=32):
    return conv_bn(features, features, 3, stride, 1, G, "prelu")


# ---- the authors' MSNet frame --------------------------------------------------------------

class MSUnit(nn.Module):
    def __init__(self, cin, mid, cout, stride, make_op):
        super().__init__()
        self.conv1 = conv_bn(cin, mid, act="prelu")
        self.conv2_msconv = make_op(mid, stride)
        self.conv3 = conv_bn(mid, cout)
        self.shortcut = nn.Sequential()
        if cin != cout or stride != 1:
            self.shortcut = conv_bn(cin, cout, stride=stride)
        self.prelu = nn.PReLU(cout)

    def forward(self, x):
        return self.prelu(self.conv3(self.conv2_msconv(self.conv1(x))) + self.shortcut(x))


class MSNet(nn.Module):
    def __init__(self, blocks, make_op, width=1.0, embedding=512):
        super().__init__()
        w = lambda c: max(8, int(round(c * width / 8.0)) * 8)
        self.basic_conv = nn.Sequential(nn.Conv2d(3, w(64), 7, 2, 3, bias=False),
                                        nn.BatchNorm2d(w(64)), nn.PReLU(w(64)))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        full = [(64, 128, 256), (256, 256, 512), (512, 512, 1024), (1024, 1024, 2048)]
        cin = w(64)
        for s, n in enumerate(blocks):
            units = []
            for u in range(n):
                units.append(MSUnit(cin, w(full[s][1]), w(full[s][2]),
                                    2 if (u == 0 and s > 0) else 1, make_op))
                cin = w(full[s][2])
            setattr(self, "stage_%d" % (s + 1), nn.Sequential(*units))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, embedding)

    def forward(self, x):
        x = self.maxpool(self.basic_conv(x))
        x = self.stage_4(self.stage_3(self.stage_2(self.stage_1(x))))
        return self.classifier(torch.flatten(self.gap(x), 1))


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
        self.prelu = nn.PReLU(planes)
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
