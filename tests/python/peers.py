"""The paper's other Table 7 peers, written as their authors' public code writes them (names and
all), for the reference tests:

- GhostModule: huawei-noah/Efficient-AI-Backbones ghostnet_pytorch/ghostnet.py;
- GhostModuleV2 (mode 'attn'): ghostnetv2_pytorch/model/ghostnetv2_torch.py;
- Partial_conv3 (split_cat), MLPBlock and FasterNet: JierunChen/FasterNet models/fasternet.py
  (timm's DropPath and trunc_normal_ left out: drop_path 0, and the tests set their own weights);
- Block: ma-xu/Rewrite-the-Stars imagenet/starnet.py (drop_path 0).

As 3x3 operators of a frame (MSConv Lab's `ghost`, `ghostv2`, `pconv`, `star`), the modules take
the unit's stride where their papers have none: GhostModule(V2) and StarNet's first depthwise conv
through their own `stride`, FasterNet's block through a 3x3 average pool before it (PConvOp), and
StarNet's residual only at stride 1 (StarOp).
"""
import math
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- GhostNet ------------------------------------------------------------------------------

class GhostModule(nn.Module):
    def __init__(self, inp, oup, kernel_size=1, ratio=2, dw_size=3, stride=1, relu=True):
        super(GhostModule, self).__init__()
        self.oup = oup
        init_channels = math.ceil(oup / ratio)
        new_channels = init_channels * (ratio - 1)
        self.primary_conv = nn.Sequential(
            nn.Conv2d(inp, init_channels, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(init_channels),
            nn.ReLU(inplace=True) if relu else nn.Sequential(),
        )
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(init_channels, new_channels, dw_size, 1, dw_size // 2, groups=init_channels,
                      bias=False),
            nn.BatchNorm2d(new_channels),
            nn.ReLU(inplace=True) if relu else nn.Sequential(),
        )

    def forward(self, x):
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        out = torch.cat([x1, x2], dim=1)
        return out[:, :self.oup, :, :]


class GhostModuleV2(nn.Module):
    """mode 'attn' (the DFC attention); 'original' is GhostModule above. dfc: MSConv Lab's k."""

    def __init__(self, inp, oup, kernel_size=1, ratio=2, dw_size=3, stride=1, relu=True, dfc=5):
        super(GhostModuleV2, self).__init__()
        self.gate_fn = nn.Sigmoid()
        self.oup = oup
        init_channels = math.ceil(oup / ratio)
        new_channels = init_channels * (ratio - 1)
        self.primary_conv = nn.Sequential(
            nn.Conv2d(inp, init_channels, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(init_channels),
            nn.ReLU(inplace=True) if relu else nn.Sequential(),
        )
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(init_channels, new_channels, dw_size, 1, dw_size // 2, groups=init_channels,
                      bias=False),
            nn.BatchNorm2d(new_channels),
            nn.ReLU(inplace=True) if relu else nn.Sequential(),
        )
        self.short_conv = nn.Sequential(
            nn.Conv2d(inp, oup, kernel_size, stride, kernel_size // 2, bias=False),
            nn.BatchNorm2d(oup),
            nn.Conv2d(oup, oup, kernel_size=(1, dfc), stride=1, padding=(0, dfc // 2), groups=oup,
                      bias=False),
            nn.BatchNorm2d(oup),
            nn.Conv2d(oup, oup, kernel_size=(dfc, 1), stride=1, padding=(dfc // 2, 0), groups=oup,
                      bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x):
        res = self.short_conv(F.avg_pool2d(x, kernel_size=2, stride=2))
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        out = torch.cat([x1, x2], dim=1)
        return out[:, :self.oup, :, :] * F.interpolate(self.gate_fn(res),
                                                       size=(out.shape[-2], out.shape[-1]),
                                                       mode='nearest')


# ---- FasterNet -----------------------------------------------------------------------------

class Partial_conv3(nn.Module):
    def __init__(self, dim, n_div, forward):
        super().__init__()
        self.dim_conv3 = dim // n_div
        self.dim_untouched = dim - self.dim_conv3
        self.partial_conv3 = nn.Conv2d(self.dim_conv3, self.dim_conv3, 3, 1, 1, bias=False)
        assert forward == 'split_cat'

    def forward(self, x):
        x1, x2 = torch.split(x, [self.dim_conv3, self.dim_untouched], dim=1)
        x1 = self.partial_conv3(x1)
        x = torch.cat((x1, x2), 1)
        return x


class MLPBlock(nn.Module):
    def __init__(self, dim, n_div, mlp_ratio, drop_path, layer_scale_init_value, act_layer,
                 norm_layer, pconv_fw_type):
        super().__init__()
        self.dim = dim
        self.mlp_ratio = mlp_ratio
        self.drop_path = nn.Identity()
        self.n_div = n_div
        mlp_hidden_dim = int(dim * mlp_ratio)
        mlp_layer = [
            nn.Conv2d(dim, mlp_hidden_dim, 1, bias=False),
            norm_layer(mlp_hidden_dim),
            act_layer(),
            nn.Conv2d(mlp_hidden_dim, dim, 1, bias=False)
        ]
        self.mlp = nn.Sequential(*mlp_layer)
        self.spatial_mixing = Partial_conv3(dim, n_div, pconv_fw_type)

    def forward(self, x):
        shortcut = x
        x = self.spatial_mixing(x)
        x = shortcut + self.drop_path(self.mlp(x))
        return x


class PConvOp(MLPBlock):
    def __init__(self, dim, stride=1, n_div=4, mlp_ratio=2, act="relu"):
        act_layer = nn.GELU if act == "gelu" else partial(nn.ReLU, inplace=True)
        super().__init__(dim, n_div, mlp_ratio, 0.0, 0, act_layer, nn.BatchNorm2d, 'split_cat')
        self.stride = stride

    def forward(self, x):
        if self.stride > 1:
            x = F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        return super().forward(x)


class BasicStage(nn.Module):
    def __init__(self, dim, depth, n_div, mlp_ratio, drop_path, layer_scale_init_value, norm_layer,
                 act_layer, pconv_fw_type):
        super().__init__()
        blocks_list = [MLPBlock(dim=dim, n_div=n_div, mlp_ratio=mlp_ratio, drop_path=drop_path[i],
                                layer_scale_init_value=layer_scale_init_value,
                                norm_layer=norm_layer, act_layer=act_layer,
                                pconv_fw_type=pconv_fw_type) for i in range(depth)]
        self.blocks = nn.Sequential(*blocks_list)

    def forward(self, x):
        return self.blocks(x)


class PatchEmbed(nn.Module):
    def __init__(self, patch_size, patch_stride, in_chans, embed_dim, norm_layer):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_stride,
                              bias=False)
        self.norm = norm_layer(embed_dim) if norm_layer is not None else nn.Identity()

    def forward(self, x):
        return self.norm(self.proj(x))


class PatchMerging(nn.Module):
    def __init__(self, patch_size2, patch_stride2, dim, norm_layer):
        super().__init__()
        self.reduction = nn.Conv2d(dim, 2 * dim, kernel_size=patch_size2, stride=patch_stride2,
                                   bias=False)
        self.norm = norm_layer(2 * dim) if norm_layer is not None else nn.Identity()

    def forward(self, x):
        return self.norm(self.reduction(x))


class FasterNet(nn.Module):
    def __init__(self, in_chans=3, num_classes=1000, embed_dim=96, depths=(1, 2, 8, 2),
                 mlp_ratio=2., n_div=4, patch_size=4, patch_stride=4, patch_size2=2,
                 patch_stride2=2, patch_norm=True, feature_dim=1280, drop_path_rate=0.1,
                 layer_scale_init_value=0, norm_layer='BN', act_layer='RELU',
                 pconv_fw_type='split_cat'):
        super().__init__()
        norm_layer = nn.BatchNorm2d
        act_layer = nn.GELU if act_layer == 'GELU' else partial(nn.ReLU, inplace=True)
        self.num_classes = num_classes
        self.num_stages = len(depths)
        self.embed_dim = embed_dim
        self.num_features = int(embed_dim * 2 ** (self.num_stages - 1))
        self.patch_embed = PatchEmbed(patch_size=patch_size, patch_stride=patch_stride,
                                      in_chans=in_chans, embed_dim=embed_dim,
                                      norm_layer=norm_layer if patch_norm else None)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]
        stages_list = []
        for i_stage in range(self.num_stages):
            stage = BasicStage(dim=int(embed_dim * 2 ** i_stage), n_div=n_div,
                               depth=depths[i_stage], mlp_ratio=mlp_ratio,
                               drop_path=dpr[sum(depths[:i_stage]):sum(depths[:i_stage + 1])],
                               layer_scale_init_value=layer_scale_init_value,
                               norm_layer=norm_layer, act_layer=act_layer,
                               pconv_fw_type=pconv_fw_type)
            stages_list.append(stage)
            if i_stage < self.num_stages - 1:
                stages_list.append(PatchMerging(patch_size2=patch_size2,
                                                patch_stride2=patch_stride2,
                                                dim=int(embed_dim * 2 ** i_stage),
                                                norm_layer=norm_layer))
        self.stages = nn.Sequential(*stages_list)
        self.avgpool_pre_head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(self.num_features, feature_dim, 1, bias=False),
            act_layer()
        )
        self.head = nn.Linear(feature_dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x):
        x = self.patch_embed(x)
        x = self.stages(x)
        x = self.avgpool_pre_head(x)
        x = torch.flatten(x, 1)
        x = self.head(x)
        return x


def fasternet_s(num_classes=512):
    """cfg/fasternet_s.yaml: embed 128, depths [1, 2, 13, 2], ReLU."""
    return FasterNet(num_classes=num_classes, embed_dim=128, depths=(1, 2, 13, 2),
                     act_layer='RELU', drop_path_rate=0.0)


def fasternet_t0(num_classes=512):
    """cfg/fasternet_t0.yaml: embed 40, depths [1, 2, 8, 2], GELU."""
    return FasterNet(num_classes=num_classes, embed_dim=40, depths=(1, 2, 8, 2),
                     act_layer='GELU', drop_path_rate=0.0)


# ---- StarNet -------------------------------------------------------------------------------

class ConvBN(torch.nn.Sequential):
    def __init__(self, in_planes, out_planes, kernel_size=1, stride=1, padding=0, dilation=1,
                 groups=1, with_bn=True):
        super().__init__()
        self.add_module('conv', torch.nn.Conv2d(in_planes, out_planes, kernel_size, stride,
                                                padding, dilation, groups))
        if with_bn:
            self.add_module('bn', torch.nn.BatchNorm2d(out_planes))
            torch.nn.init.constant_(self.bn.weight, 1)
            torch.nn.init.constant_(self.bn.bias, 0)


class Block(nn.Module):
    def __init__(self, dim, mlp_ratio=3, drop_path=0.):
        super().__init__()
        self.dwconv = ConvBN(dim, dim, 7, 1, (7 - 1) // 2, groups=dim, with_bn=True)
        self.f1 = ConvBN(dim, mlp_ratio * dim, 1, with_bn=False)
        self.f2 = ConvBN(dim, mlp_ratio * dim, 1, with_bn=False)
        self.g = ConvBN(mlp_ratio * dim, dim, 1, with_bn=True)
        self.dwconv2 = ConvBN(dim, dim, 7, 1, (7 - 1) // 2, groups=dim, with_bn=False)
        self.act = nn.ReLU6()
        self.drop_path = nn.Identity()

    def forward(self, x):
        input = x
        x = self.dwconv(x)
        x1, x2 = self.f1(x), self.f2(x)
        x = self.act(x1) * x2
        x = self.dwconv2(self.g(x))
        x = input + self.drop_path(x)
        return x


class StarOp(Block):
    """StarNet's block with the unit's stride on its first depthwise conv (K x K, StarNet's 7 by
    default); the residual only where the shape allows it (stride 1)."""

    def __init__(self, dim, stride=1, mlp_ratio=4, k=7):
        super().__init__(dim, mlp_ratio)
        self.stride = stride
        self.dwconv = ConvBN(dim, dim, k, stride, (k - 1) // 2, groups=dim, with_bn=True)
        self.dwconv2 = ConvBN(dim, dim, k, 1, (k - 1) // 2, groups=dim, with_bn=False)

    def forward(self, x):
        if self.stride == 1:
            return super().forward(x)
        x = self.dwconv(x)
        x = self.act(self.f1(x)) * self.f2(x)
        return self.dwconv2(self.g(x))
