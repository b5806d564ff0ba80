"""Writes the reference fixtures the C++ tests compare against, with Debian's python3-torch.

usage: make_fixtures.py OUTDIR

For each operator case: <case>_state.pt (the module's state_dict, torch.save zip format) and
<case>_io.pt (input x, upstream gradient g, output y = op(x) in training mode, and the gradients of
sum(y * g) with respect to x and every parameter, named grad.x and grad.<param>).
For each model case: <case>_state.pt (state_dict of the authors' MSNet-50 or insightface's
iResNet-18), <case>_io.pt (images x and eval-mode embeddings emb) and <case>_face{0,1}.ppm (the
same images as 8-bit RGB files). manifest.json lists the cases.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_models as rm  # noqa: E402

OPS = [
    # name, op spec (C++ registry), channels, stride, input shape, groups, min_dim, builder
    ("msconv_official", "msconv-official", 64, 1, (2, 64, 9, 9), 32, 32,
     lambda: rm.MSConv(64, 1, 32, 16, 32)),
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
    ("skconv", "skconv", 64, 1, (2, 64, 9, 9), 32, 32, lambda: rm.SKConv(64, 1, 32, 16, 32)),
    ("skconv_k3k3_s2", "skconv:kernels=k3k3", 64, 2, (2, 64, 8, 8), 32, 32,
     lambda: rm.SKConv(64, 2, 32, 16, 32, (1, 1))),
    ("scconv", "scconv", 64, 1, (2, 64, 9, 9), 32, 32, lambda: rm.SCConv(64, 1)),
    ("scconv_s2", "scconv", 32, 2, (2, 32, 9, 9), 32, 32, lambda: rm.SCConv(32, 2)),
    ("conv3x3_s2", "conv3x3", 64, 2, (2, 64, 9, 9), 32, 32, lambda: rm.conv3x3_baseline(64, 2)),
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
                            "groups": groups, "min_dim": min_dim})


def model_case(out, name, arch, op, model, gen, manifest):
    rm.randomize(model, gen)
    model.eval()
    imgs = (torch.rand(2, 112, 112, 3, generator=gen) * 255).round().to(torch.uint8)
    x = ((imgs.permute(0, 3, 1, 2).float() / 255.0) - 0.5) / 0.5
    with torch.no_grad():
        emb = model(x)
    save(model.state_dict(), os.path.join(out, name + "_state.pt"))
    save({"x": x, "emb": emb}, os.path.join(out, name + "_io.pt"))
    for i in range(2):
        write_ppm(os.path.join(out, "%s_face%d.ppm" % (name, i)), imgs[i])
    manifest["models"].append({"name": name, "arch": arch, "op": op})


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(20260101)
    manifest = {"ops": [], "models": []}
    for case in OPS:
        op_case(out, *case, gen, manifest)
    torch.manual_seed(7)
    model_case(out, "msnet50", "msnet50", "msconv-official",
               rm.MSNet([3, 4, 6, 3], lambda c, s: rm.MSConv(c, s)), gen, manifest)
    model_case(out, "iresnet18", "iresnet18", "conv", rm.IResNet([2, 2, 2, 2]), gen, manifest)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
