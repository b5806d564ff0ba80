"""Writes the reference fixtures the C++ tests compare against, with Debian's python3-torch.

usage: make_fixtures.py OUTDIR

For each operator case: <case>_state.pt (the module's state_dict, torch.save zip format) and
<case>_io.pt (input x, upstream gradient g, output y = op(x) in training mode, and the gradients of
sum(y * g) with respect to x and every parameter, named grad.x and grad.<param>).
For each model case: <case>_state.pt (state_dict of the authors' MSNet-26 / MSNet-50, built by
authors_msnet.py as their model.py writes it, or of insightface's iResNet-18), <case>_io.pt (images x
and eval-mode embeddings emb) and <case>_face{0,1}.ppm (the same images as 8-bit RGB files).
scconv_original_{state,io}.pt: cheng-haha/ScConv's module (SRU.*, CRU.* names), its input, SRU
output and output. arcface1/ and arcface2/: arcface_torch training checkpoints
(checkpoint_gpu_<rank>.pt, as train_v2.py saves them with save_all_states) of one and two ranks of
the authors' frame at msnet-tiny's shape, the two-rank backbone DDP-wrapped ("module."), beside
model.pt; arcface_io.pt holds the whole head, images and embeddings. manifest.json lists the cases
and the authors' parameter counts of msnet26 / msnet50 / msnet101.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import authors_msnet as am  # noqa: E402
import peers  # noqa: E402
import reference_models as rm  # noqa: E402

OPS = [
    # name, op spec (C++ registry), channels, stride, input shape, groups, min_dim, builder; the
    # frame's PReLU slopes are "shared" unless the name ends in _ch (one slope per channel)
    ("msconv_official", "msconv-official", 64, 1, (2, 64, 9, 9), 32, 32,
     lambda: rm.MSConv(64, 1, 32, 16, 32)),
    ("msconv_official_ch", "msconv-official", 64, 2, (3, 64, 11, 11), 32, 32,
     lambda: rm.MSConv(64, 2, 32, 16, 32, slopes="channel")),
    ("msconv_official_k5k7_add_add", "msconv-official:fusion=add,diff=add,kernels=k5k7", 64, 2,
     (3, 64, 11, 11), 32, 32,
     lambda: rm.MSConv(64, 2, 32, 16, 32, (2, 3), "add", "add")),
    ("msconv_official_first_r8", "msconv-official:fusion=first,r=8,L=8,G=16", 128, 2,
     (2, 128, 7, 7), 32, 32,
     lambda: rm.MSConv(128, 2, 16, 8, 8, (1, 2), "first", "sub")),
    ("msconv_paper", "msconv", 64, 2, (2, 64, 10, 10), 32, 32,
     lambda: rm.MSConv(64, 2, 32, 16, 32, official=False)),
    ("msconv_mo_so", "msconv-mo-so:G=8", 32, 1, (2, 32, 7, 7), 32, 32,
     lambda: rm.MSConv(32, 1, 8, 16, 32, (1, 2), "first", "add", official=False)),
    # SKConv's squeeze (fc + training-mode BN on a 1 x 1 map) normalises over the batch alone: at
    # batch 2 its output is +-1 whatever the input, so fc's gradient is rounding-dominated and
    # differs between CPUs; batch 4 makes it a well-conditioned comparison.
    ("skconv", "skconv", 64, 1, (4, 64, 9, 9), 32, 32, lambda: rm.SKConv(64, 1, 32, 16, 32)),
    ("skconv_k3k3_s2", "skconv:kernels=k3k3", 64, 2, (4, 64, 8, 8), 32, 32,
     lambda: rm.SKConv(64, 2, 32, 16, 32, (1, 1))),
    ("scconv", "scconv", 64, 1, (2, 64, 9, 9), 32, 32, lambda: rm.SCConv(64, 1)),
    ("scconv_s2", "scconv", 32, 2, (2, 32, 9, 9), 32, 32, lambda: rm.SCConv(32, 2)),
    ("scconv_ch", "scconv:gn=8", 64, 1, (2, 64, 8, 8), 32, 32,
     lambda: rm.SCConv(64, 1, 8, slopes="channel")),
    ("conv3x3_s2", "conv3x3", 64, 2, (2, 64, 9, 9), 32, 32, lambda: rm.conv3x3_baseline(64, 2)),
    ("conv3x3_ch", "conv3x3", 64, 1, (2, 64, 9, 9), 32, 32,
     lambda: rm.conv3x3_baseline(64, 1, slopes="channel")),
    # The Table 7 peers, as their authors' code writes them (tests/python/peers.py).
    ("ghost", "ghost", 64, 1, (2, 64, 9, 9), 32, 32,
     lambda: peers.GhostModule(64, 64, kernel_size=3, ratio=2, dw_size=3, stride=1)),
    ("ghost_s3_s2", "ghost:s=3,d=5", 48, 2, (2, 48, 9, 9), 32, 32,
     lambda: peers.GhostModule(48, 48, kernel_size=3, ratio=3, dw_size=5, stride=2)),
    ("ghostv2", "ghostv2", 64, 1, (2, 64, 9, 9), 32, 32,
     lambda: peers.GhostModuleV2(64, 64, kernel_size=3, ratio=2, dw_size=3, stride=1)),
    ("ghostv2_s2", "ghostv2:k=3", 32, 2, (3, 32, 11, 11), 32, 32,
     lambda: peers.GhostModuleV2(32, 32, kernel_size=3, ratio=2, dw_size=3, stride=2, dfc=3)),
    ("pconv", "pconv", 64, 1, (2, 64, 9, 9), 32, 32, lambda: peers.PConvOp(64, 1)),
    ("pconv_s2_gelu", "pconv:div=2,mlp=3", 32, 2, (2, 32, 9, 9), 32, 32,
     lambda: peers.PConvOp(32, 2, n_div=2, mlp_ratio=3, act="gelu")),
    ("star", "star", 32, 1, (2, 32, 9, 9), 32, 32, lambda: peers.StarOp(32, 1)),
    ("star_s2", "star:k=3,mlp=2", 32, 2, (2, 32, 9, 9), 32, 32,
     lambda: peers.StarOp(32, 2, mlp_ratio=2, k=3)),
]


def save(obj, path):
    torch.save(obj, path)


def write_ppm(path, img):
    """img: H x W x 3 uint8 tensor (RGB)."""
    h, w, _ = img.shape
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h))
        f.write(img.contiguous().numpy().tobytes())


def op_case(out, name, spec, channels, stride, shape, groups, min_dim, build, gen, manifest):
    torch.manual_seed(1234)
    op = build()
    rm.randomize(op, gen)
    op.train()
    x = torch.randn(*shape, generator=gen, requires_grad=True)
    y = op(x)
    g = torch.randn(*y.shape, generator=gen)
    (y * g).sum().backward()
    io = {"x": x.detach(), "g": g, "y": y.detach(), "grad.x": x.grad}
    for pname, p in op.named_parameters():
        io["grad." + pname] = p.grad
    save(op.state_dict(), os.path.join(out, name + "_state.pt"))
    save(io, os.path.join(out, name + "_io.pt"))
    manifest["ops"].append({"name": name, "op": spec, "channels": channels, "stride": stride,
                            "groups": groups, "min_dim": min_dim,
                            "prelu": "channel" if name.endswith("_ch") else "shared",
                            "act": "gelu" if name.endswith("_gelu") else "relu"})


def face_batch(gen):
    imgs = (torch.rand(2, 112, 112, 3, generator=gen) * 255).round().to(torch.uint8)
    return imgs, ((imgs.permute(0, 3, 1, 2).float() / 255.0) - 0.5) / 0.5


def model_case(out, name, arch, op, model, gen, manifest):
    rm.randomize(model, gen)
    model.eval()
    imgs, x = face_batch(gen)
    with torch.no_grad():
        emb = model(x)
    save(model.state_dict(), os.path.join(out, name + "_state.pt"))
    save({"x": x, "emb": emb}, os.path.join(out, name + "_io.pt"))
    for i in range(2):
        write_ppm(os.path.join(out, "%s_face%d.ppm" % (name, i)), imgs[i])
    manifest["models"].append({"name": name, "arch": arch, "op": op})


def scconv_original_case(out, gen):
    """cheng-haha/ScConv's own module, names and all; the C++ test loads its state_dict."""
    torch.manual_seed(99)
    sc = rm.ScConv(64)
    rm.randomize(sc, gen)
    x = torch.randn(2, 64, 9, 9, generator=gen)
    with torch.no_grad():
        sru = sc.SRU(x)
        y = sc(x)
    save(sc.state_dict(), os.path.join(out, "scconv_original_state.pt"))
    save({"x": x, "sru": sru, "y": y}, os.path.join(out, "scconv_original_io.pt"))


def arcface_case(out, gen, classes=11):
    """arcface_torch training checkpoints, one rank and two, as train_v2.py writes them."""
    torch.manual_seed(5)
    backbone = am.msnet_tiny(512)
    rm.randomize(backbone, gen)
    head = torch.normal(0, 0.01, (classes, 512), generator=gen)
    imgs, x = face_batch(gen)
    labels = torch.tensor([3, classes - 1])

    def train_step(model, weight):
        # One SGD step on an arcface-like loss, so the optimizer holds momentum buffers and the
        # scheduler has stepped, as in a checkpoint written after an epoch.
        w = torch.nn.Parameter(weight.clone())
        opt = torch.optim.SGD(params=[{"params": model.parameters()}, {"params": [w]}], lr=0.02,
                              momentum=0.9, weight_decay=5e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer=opt, T_max=100, eta_min=5e-6)
        model.train()
        emb = torch.nn.functional.normalize(model(x))
        logits = 64 * emb @ torch.nn.functional.normalize(w).t()
        local = labels - (classes - w.shape[0]) if w.shape[0] < classes else labels
        torch.nn.functional.cross_entropy(logits, local.clamp(0, w.shape[0] - 1)).backward()
        opt.step()
        sched.step()
        return w, opt, sched

    w1, opt1, sched1 = train_step(backbone, head)
    head = w1.detach().clone()
    backbone.eval()
    with torch.no_grad():
        emb = backbone(x)
    if not torch.isfinite(emb).all():
        raise SystemExit("arcface_case: the embeddings after the training step are not finite")
    one = os.path.join(out, "arcface1")
    two = os.path.join(out, "arcface2")
    os.makedirs(one, exist_ok=True)
    os.makedirs(two, exist_ok=True)
    save({"epoch": 1, "global_step": 120, "state_dict_backbone": backbone.state_dict(),
          "state_dict_softmax_fc": {"weight": head}, "state_optimizer": opt1.state_dict(),
          "state_lr_scheduler": sched1.state_dict()}, os.path.join(one, "checkpoint_gpu_0.pt"))
    save(backbone.state_dict(), os.path.join(one, "model.pt"))
    # Partial FC's split over two ranks: 11 classes -> 6 and 5.
    world = 2
    ddp_state = type(backbone.state_dict())(
        ("module." + k, v) for k, v in backbone.state_dict().items())
    for rank in range(world):
        num_local = classes // world + int(rank < classes % world)
        start = classes // world * rank + min(rank, classes % world)
        shard = head[start:start + num_local].clone()
        opt = torch.optim.SGD(params=[{"params": backbone.parameters()},
                                      {"params": [torch.nn.Parameter(shard)]}],
                              lr=0.02, momentum=0.9, weight_decay=5e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer=opt, T_max=100, eta_min=5e-6)
        for group in opt.param_groups:
            for p in group["params"]:
                opt.state[p]["momentum_buffer"] = torch.randn(p.shape, generator=gen)
        save({"epoch": 3, "global_step": 360, "state_dict_backbone": ddp_state,
              "state_dict_softmax_fc": {"weight": shard}, "state_optimizer": opt.state_dict(),
              "state_lr_scheduler": sched.state_dict()},
             os.path.join(two, "checkpoint_gpu_%d.pt" % rank))
    save({"head": head, "x": x, "emb": emb}, os.path.join(out, "arcface_io.pt"))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(20260101)
    manifest = {"ops": [], "models": []}
    for case in OPS:
        op_case(out, *case, gen, manifest)
    torch.manual_seed(7)
    model_case(out, "msnet50", "msnet50", "msconv-official", am.msnet50(512), gen, manifest)
    model_case(out, "msnet26", "msnet26", "msconv-official", am.msnet26(512), gen, manifest)
    model_case(out, "iresnet18", "iresnet18", "conv", rm.IResNet([2, 2, 2, 2]), gen, manifest)
    model_case(out, "fasternet_t0", "fasternet-t0", "pconv", peers.fasternet_t0(512), gen,
               manifest)
    model_case(out, "fasternet_s", "fasternet-s", "pconv", peers.fasternet_s(512), gen, manifest)
    scconv_original_case(out, gen)
    # Its own generator, so that changing an operator case above does not change its draws.
    arcface_case(out, torch.Generator().manual_seed(20260105))
    # The authors' parameter counts (their model.py, as authors_msnet.py builds it).
    manifest["authors_params"] = {
        name: sum(p.numel() for p in build(512).parameters())
        for name, build in (("msnet26", am.msnet26), ("msnet50", am.msnet50),
                            ("msnet101", am.msnet101))}
    manifest["peer_params"] = {
        name: sum(p.numel() for p in build(512).parameters())
        for name, build in (("fasternet-s", peers.fasternet_s), ("fasternet-t0", peers.fasternet_t0))}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
