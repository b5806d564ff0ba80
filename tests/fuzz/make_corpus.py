#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (standard library and numpy; python3-torch for the
checkpoint target's archive seed).

usage: make_corpus.py [OUTDIR]   (default: the corpus/ folder beside this script)

One folder per target, a few small valid inputs each, in the input layout the target's harness
documents (recordio: uint16 index length, index, records; ijb: three files cut at "\\n--\\n";
state_dict: storage records, then data.pkl). The files are committed; rerun this after changing a
harness's input layout. The output is deterministic but for the checkpoint archive (torch.jit.save).
"""
import collections
import json
import os
import pickle
import struct
import sys
import types
import zlib

import numpy as np

RECORD_MAGIC = 0xCED7230A
TELEMETRY_RECORD_MAGIC = 0x4D54454C


# --- images ----------------------------------------------------------------------------------

def pixels(w, h, channels, seed):
    return bytes((x * 37 + y * 11 + c * 71 + seed) % 256
                 for y in range(h) for x in range(w) for c in range(channels))


def pgm(w=8, h=8, seed=0):
    return b"P5\n%d %d\n255\n" % (w, h) + pixels(w, h, 1, seed)


def ppm(w=8, h=8, seed=0):
    return b"P6\n%d %d\n255\n" % (w, h) + pixels(w, h, 3, seed)


def png(w=8, h=8, seed=0):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = pixels(w, h, 3, seed)
    rows = b"".join(b"\0" + raw[y * w * 3:(y + 1) * w * 3] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def bmp(w=8, h=8, seed=0):
    raw = pixels(w, h, 3, seed)
    stride = (w * 3 + 3) & ~3
    rows = b"".join(raw[y * w * 3:(y + 1) * w * 3] + b"\0" * (stride - w * 3)
                    for y in reversed(range(h)))
    header = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(rows), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(header) + len(rows), 0, 0, 14 + len(header)) + \
        header + rows


# --- verification .bin ----------------------------------------------------------------------

def py2_pairs(images, issame):
    """Protocol 2 as Python 2's cPickle wrote it: BINSTRING images with memo puts."""
    out = bytearray(b"\x80\x02]q\x00(")
    for i, img in enumerate(images):
        if len(img) < 256:
            out += b"U" + bytes([len(img)]) + img
        else:
            out += b"T" + struct.pack("<I", len(img)) + img
        out += b"q" + bytes([i + 1])
    out += b"e]q" + bytes([len(images) + 1]) + b"("
    out += b"".join(b"\x88" if s else b"\x89" for s in issame)
    out += b"e\x86."
    return bytes(out)


# --- RecordIO --------------------------------------------------------------------------------

def irheader(labels, label, image):
    if labels:
        return (struct.pack("<IfQQ", len(labels), 0.0, 0, 0) +
                struct.pack("<%df" % len(labels), *labels) + image)
    return struct.pack("<IfQQ", 0, float(label), 0, 0) + image


def record_bytes(payload):
    """dmlc-core's writer: split where the magic sits at a 4-byte boundary."""
    magic = struct.pack("<I", RECORD_MAGIC)
    out, dptr, n = bytearray(), 0, len(payload)
    for i in range(0, n - n % 4, 4):
        if payload[i:i + 4] == magic:
            out += magic + struct.pack("<I", ((1 if dptr == 0 else 2) << 29) | (i - dptr))
            out += payload[dptr:i]
            dptr = i + 4
    out += magic + struct.pack("<I", ((3 if dptr else 0) << 29) | (n - dptr)) + payload[dptr:]
    return bytes(out + b"\0" * ((-n) % 4))


def recordio_input(records):
    rec, idx = bytearray(), ""
    for key, payload in records:
        idx += "%d\t%d\n" % (key, len(rec))
        rec += record_bytes(payload)
    idx = idx.encode()
    return struct.pack("<H", len(idx)) + idx + bytes(rec)


# --- telemetry -------------------------------------------------------------------------------

def telemetry(header, records, cut=0):
    text = json.dumps(header).encode()
    out = bytearray(b"MSCTLM01" + struct.pack("<I", len(text)) + text)
    for step, wall, loss, layers, grads, gates in records:
        p = struct.pack("<qdf", step, wall, loss)
        for stats in layers:
            p += struct.pack("<4f", *stats)
        p += struct.pack("<%df" % len(grads), *grads)
        for hist in gates:
            p += struct.pack("<%df" % len(hist), *hist)
        out += struct.pack("<II", TELEMETRY_RECORD_MAGIC, len(p)) + p
        out += struct.pack("<I", zlib.crc32(p) & 0xFFFFFFFF)
    return bytes(out[:len(out) - cut])


# --- PyTorch state_dicts ---------------------------------------------------------------------
# data.pkl as torch.save writes it (protocol 2, persistent ids for storages), from stand-ins for
# torch's globals, so that neither torch nor a tensor is needed.

def _home(obj, module, name):
    obj.__module__, obj.__qualname__, obj.__name__ = module, name, name
    mod = sys.modules.get(module) or types.ModuleType(module)
    setattr(mod, name, obj)
    sys.modules[module] = mod


def _rebuild_tensor_v2(*args):
    raise RuntimeError("stand-in, never called")


def _rebuild_parameter(*args):
    raise RuntimeError("stand-in, never called")


STORAGE_TYPES = {}
for _name in ("FloatStorage", "LongStorage", "HalfStorage", "ByteStorage"):
    STORAGE_TYPES[_name] = type(_name, (), {})
    _home(STORAGE_TYPES[_name], "torch", _name)
_home(_rebuild_tensor_v2, "torch._utils", "_rebuild_tensor_v2")
_home(_rebuild_parameter, "torch._utils", "_rebuild_parameter")
sys.modules["torch"]._utils = sys.modules["torch._utils"]


class Storage:
    def __init__(self, key, kind, numel):
        self.key, self.kind, self.numel = key, kind, numel


class Tensor:
    def __init__(self, storage, offset, size, stride, parameter=False):
        self.args = (storage, offset, tuple(size), tuple(stride))
        self.parameter = parameter

    def __reduce__(self):
        t = (_rebuild_tensor_v2, self.args + (False, collections.OrderedDict()))
        if not self.parameter:
            return t
        inner = Tensor(*self.args)
        return (_rebuild_parameter, (inner, False, collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", STORAGE_TYPES[obj.kind], obj.key, "cpu", obj.numel)
        return None


def torch_pickle(obj):
    out = __import__("io").BytesIO()
    TorchPickler(out, protocol=2).dump(obj)
    return out.getvalue()


def checkpoint_archive(attributes):
    """A LibTorch archive holding `attributes` (str or int), as torch.jit.save writes a scripted
    module's attributes and MSConv Lab's OutputArchive does; None without python3-torch. (In a
    process of its own: this one stands in fake torch modules for pickling.)"""
    import subprocess
    script = """
import io, json, sys, torch
attributes = json.loads(sys.argv[1])
class Entries(torch.nn.Module):
    def __init__(self):
        super().__init__()
        for key, value in attributes.items():
            setattr(self, key, value)
    def forward(self):
        return 0
buf = io.BytesIO()
torch.jit.save(torch.jit.script(Entries()), buf)
sys.stdout.buffer.write(buf.getvalue())
"""
    import tempfile
    # From a file: torch.jit.script reads the class's source.
    with tempfile.NamedTemporaryFile("w", suffix=".py") as f:
        f.write(script)
        f.flush()
        for python in ("/usr/bin/python3", sys.executable):
            r = subprocess.run([python, f.name, json.dumps(attributes)], capture_output=True)
            if r.returncode == 0:
                return r.stdout
    print("no python3-torch: the checkpoint target gets no raw archive seed", file=sys.stderr)
    return None


def state_dict_input(storages, obj):
    """The state_dict harness's layout: count, (uint16 length, bytes) per storage, data.pkl."""
    out = bytearray([len(storages)])
    for blob in storages:
        out += struct.pack("<H", len(blob)) + blob
    return bytes(out + torch_pickle(obj))


# --- writing ---------------------------------------------------------------------------------

def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    files = {}

    def put(target, name, data):
        files[(target, name)] = data if isinstance(data, bytes) else data.encode()

    images = [pgm(seed=1), ppm(seed=2), png(seed=3), pgm(seed=4)]
    issame = [True, False]

    # pickle: the variants the readers meet.
    put("pickle", "pairs_p2.pkl", pickle.dumps((images, issame), protocol=2))
    put("pickle", "pairs_p4.pkl", pickle.dumps((images, issame), protocol=4))
    put("pickle", "pairs_py2.pkl", py2_pairs(images, issame))
    put("pickle", "protocol0.pkl", pickle.dumps({"a": [1, 2.5, None, True], "b": (b"x", "y")}, 0))
    put("pickle", "numpy_p2.pkl", pickle.dumps(np.array([True, False, True]), protocol=2))
    put("pickle", "set_p5.pkl", pickle.dumps([{1, 2}, frozenset([3]), bytearray(b"z"), -2**40], 5))

    # pairs_bin: verification sets.
    put("pairs_bin", "p2.bin", pickle.dumps((images, issame), protocol=2))
    put("pairs_bin", "p4.bin", pickle.dumps((images, issame), protocol=4))
    put("pairs_bin", "py2.bin", py2_pairs(images, issame))
    put("pairs_bin", "numpy.bin", pickle.dumps(
        ([np.frombuffer(b, dtype=np.uint8) for b in images], np.array(issame)), protocol=2))

    # decode_image: formats OpenCV decodes without a library of its own, and PNG.
    put("decode_image", "gray.pgm", pgm(8, 8, 5))
    put("decode_image", "color.ppm", ppm(8, 8, 6))
    put("decode_image", "color.png", png(8, 8, 7))
    put("decode_image", "color.bmp", bmp(8, 8, 8))

    # recordio: insightface's layout (header record 0, images, identity records), and a record
    # whose payload holds the magic (split into parts).
    magic = struct.pack("<I", RECORD_MAGIC)
    put("recordio", "insightface.in", recordio_input(
        [(0, irheader([1.0, 3.0], 0, b"")), (1, irheader(None, 0, pgm(4, 4, 1))),
         (2, irheader(None, 1, pgm(4, 4, 2))), (3, irheader([1.0, 3.0], 0, b""))]))
    put("recordio", "split.in", recordio_input(
        [(7, irheader(None, 2, b"P5\n#" + magic + magic + b"\n4 4\n255\n" + bytes(16))),
         (9, irheader([5.0], 0, b"abc"))]))

    # recordio_dataset: insightface's layout (images 1..4, header [5, 7), identities 5 and 6 with
    # their image ranges), and a set without a header (labels in each image's header).
    put("recordio_dataset", "insightface.in", recordio_input(
        [(0, irheader([5.0, 7.0], 0, b""))] +
        [(k, irheader(None, 0, pgm(4, 4, k))) for k in range(1, 5)] +
        [(5, irheader([1.0, 3.0], 0, b"")), (6, irheader([3.0, 5.0], 0, b""))]))
    put("recordio_dataset", "noheader.in", recordio_input(
        [(12, irheader(None, 1, pgm(4, 4, 1))), (10, irheader(None, 0, pgm(4, 4, 2))),
         (11, irheader([2.0], 0, pgm(4, 4, 3)))]))

    # record_unpack: payloads.
    put("record_unpack", "label.rec", irheader(None, 3, pgm(4, 4, 3)))
    put("record_unpack", "labels.rec", irheader([1.0, 2.0, 3.0], 0, b"image"))

    # ijb: face_tid_mid, name_5pts_score, template_pair_label.
    faces = "1.jpg 1 10\n2.jpg 1 11\n3.jpg 2 12\n"
    points = ("1.jpg 38.3 51.7 73.5 51.5 56.0 71.7 41.5 92.4 70.7 92.2 0.99\n"
              "2.jpg 30.1 50.0 70.2 49.5 50.5 70.0 35.0 90.0 66.0 91.0 0.87\n"
              "3.jpg 40 52 72 52 56 72 42 92 70 92 0.5\n")
    put("ijb", "ijbc.txt", faces + "--\n" + points + "--\n" + "1 2 0\n2 1 0\n1 1 1\n")

    # telemetry: a run's file (two records), and one cut inside its last record.
    header = {"version": 1, "layers": ["stem", "stage1.0"], "gates": ["stage1.0.op"],
              "groups": ["stem", "head"], "bins": 4, "every": 20}
    recs = [(20 * i, 1.5 * i, 9.0 - i, [(0.1, 1.0, 3.0, 0.0), (0.2, 0.9, 2.5, 0.125)],
             [0.5, 1.25], [[0.25, 0.25, 0.25, 0.25]]) for i in (1, 2)]
    put("telemetry", "run.tlm", telemetry(header, recs))
    put("telemetry", "torn.tlm", telemetry(header, recs, cut=7))
    whole = telemetry(header, recs)
    text = json.dumps(header).encode()
    put("telemetry_header", "run.txt", text + b"\n--\n" + whole[12 + len(text):])
    put("telemetry_header", "header_only.txt", json.dumps(dict(header, gates=[], bins=1)))

    # config_json / config_set / spec / queue.
    put("config_json", "full.json", json.dumps({
        "model": {"arch": "msnet-tiny", "op": "msconv-official"},
        "data": {"train": "synthetic", "val": ["synthetic"], "threads": 2, "flip": True,
                 "channels_last": False, "synthetic_identities": 200,
                 "synthetic_images_per_id": 40},
        "train": {"batch_size": 128, "epochs": 20, "max_steps": 0, "lr": 0.02, "lr_min": 5e-06,
                  "momentum": 0.9, "weight_decay": 0.0005, "schedule": "cosine",
                  "warmup_epochs": 0.0, "clip_grad": 5.0, "accum": 1, "threads": 0,
                  "amp": False, "device": "cpu", "log_every": 10, "val_every": 0,
                  "checkpoint_every": 0, "keep_last": 3},
        "loss": {"type": "arcface", "s": 64.0, "m1": -1.0, "m2": -1.0, "m3": -1.0,
                 "sample_rate": 1.0},
        "telemetry": {"every": 20}, "seed": 0}, indent=2))
    put("config_json", "options.json", json.dumps({
        "model": {"arch": "iresnet-tiny:width=0.25,blocks=1-2-2-1,embedding=128",
                  "op": "msconv:fusion=add,kernels=k5k7,r=8,L=16,G=8"},
        "data": {"val": "lfw.bin,cfp_fp.bin"}, "train.lr": 0.1, "seed": 7.0}))
    put("config_set", "sets.txt", "model.arch=fasternet-t0:act=relu\nmodel.op=ghostv2:s=3,d=5,k=3\n"
        "train.lr=1e-3\ntrain.amp=yes\ndata.val=a.bin,b.bin\nseed=42\nloss.type=cosface\n")
    put("spec", "arch.txt", "msnet50:width=0.5,blocks=2-2-2-2,G=16,L=8,stem_stride=1,prelu=channel")
    put("spec", "op.txt", "msconv-official:fusion=first,diff=add,kernels=k3k3,r=4,L=8,G=4")
    put("spec", "peer.txt", "star:k=5,mlp=3")
    put("queue", "lab-queue.json", json.dumps({"queue": [
        {"name": "tiny", "settings": ["model.arch=msnet-tiny", "train.epochs=1"]},
        {"name": "base", "settings": []}]}, indent=2))

    put("study", "grid.json", json.dumps({
        "name": "grid", "base": {"model.arch": "msnet-tiny", "train.max_steps": 10,
                                 "data.val": ["synthetic"], "data.synthetic_seed": 0},
        "axes": {"model.op": ["msconv", "skconv:r=8", "msconv-official:kernels=k5k7"],
                 "train.lr": [0.1, 0.05], "data.flip": [True, False]},
        "seeds": [0, 1, 2], "reference": {"model.op": "skconv:r=8", "train.lr": 0.05},
        "checkpoint": "last"}, indent=2))

    # state_dict: a state_dict, a wrapped one with parameters, an arcface_torch checkpoint.
    f32 = struct.pack("<6f", *range(6))
    i64 = struct.pack("<q", 3)
    w = Storage("0", "FloatStorage", 6)
    n = Storage("1", "LongStorage", 1)
    sd = collections.OrderedDict([("conv.weight", Tensor(w, 0, (2, 3), (3, 1))),
                                  ("bn.num_batches_tracked", Tensor(n, 0, (), ()))])
    put("state_dict", "state_dict.in", state_dict_input([f32, i64], sd))
    wrapped = {"state_dict": collections.OrderedDict(
        [("module.fc.weight", Tensor(w, 1, (2, 2), (1, 2), parameter=True)),
         ("module.fc.bias", Tensor(w, 4, (2,), (1,), parameter=True))])}
    put("state_dict", "wrapped.in", state_dict_input([f32], wrapped))
    half = Storage("2", "HalfStorage", 4)
    ckpt = {"epoch": 3, "global_step": 100,
            "state_dict_backbone": collections.OrderedDict([("features.weight", Tensor(w, 0, (6,),
                                                                                        (1,)))]),
            "state_dict_softmax_fc": collections.OrderedDict([("weight", Tensor(half, 0, (2, 2),
                                                                               (2, 1)))]),
            "state_optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
            "state_lr_scheduler": {"last_epoch": 3}}
    put("state_dict", "checkpoint.in", state_dict_input([f32, b"", struct.pack("<4e", 1, 2, 3, 4)],
                                                        ckpt))

    # checkpoint: structured entries (the harness's layout: byte 0 even, then format, version,
    # arch, op and prelu cut at "\n"; "i" an int, "x" missing), and raw archives when python3-torch
    # is there to write one the way LibTorch's OutputArchive does (a scripted module's attributes).
    marker = "msconv-lab-checkpoint"
    put("checkpoint", "entries.in", b"\x00\ni\x02\nmsnet-tiny:embedding=128\nmsconv:G=8\nchannel")
    put("checkpoint", "version1.in", b"\x00\nx\nmsnet26\nskconv\nx")
    put("checkpoint", "foreign.in", b"\x02other-format\ni\x02\nmsnet50\nscconv\nshared")
    archive = checkpoint_archive({"format": marker, "version": 2, "arch": "msnet-tiny",
                                  "op": "msconv-official", "prelu": "shared"})
    if archive:
        put("checkpoint", "archive.in", b"\x01" + archive)

    for (target, name), data in sorted(files.items()):
        os.makedirs(os.path.join(root, target), exist_ok=True)
        with open(os.path.join(root, target, name), "wb") as f:
            f.write(data)
    total = sum(len(d) for d in files.values())
    print("%d seeds, %d bytes, under %s" % (len(files), total, root))


if __name__ == "__main__":
    main()
