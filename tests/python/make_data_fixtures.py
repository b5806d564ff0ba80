"""Independent writers (standard library and numpy only) for the data-format fixtures.

usage: make_data_fixtures.py OUTDIR

Writes small PPM/PGM face-sized images, insightface RecordIO files (with a header record 0 and
identity records, and without), records whose payload holds the RecordIO magic so they must be
split, and verification .bin files in every pickle variant the readers must accept.
manifest.json describes what each file must decode to.
"""
import io
import json
import os
import pickle
import struct
import sys

import numpy as np

MAGIC = 0xCED7230A


def ppm(img):
    h, w = img.shape[:2]
    if img.ndim == 2:
        return b"P5\n%d %d\n255\n" % (w, h) + img.tobytes()
    return b"P6\n%d %d\n255\n" % (w, h) + img.tobytes()


def make_images(rng, n):
    out = []
    for i in range(n):
        size = [112, 112, 96, 128][i % 4]
        if i % 5 == 3:
            img = rng.integers(0, 256, (size, size), dtype=np.uint8)  # grayscale
        else:
            img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        data = ppm(img)
        if i % 3 == 0:
            # Comments are legal in PNM headers; put the RecordIO magic in one at a 4-byte
            # aligned offset of the payload (24-byte header + image), forcing a split record.
            magic = struct.pack("<I", MAGIC)
            head = b"P6\n#" if img.ndim == 3 else b"P5\n#"
            pad = (-(24 + len(head))) % 4
            data = head + b"x" * pad + magic + magic + b"\n" + data[3:]
        out.append(data)
    return out


def pack(flag_labels, label, image):
    if flag_labels:
        return struct.pack("<IfQQ", len(flag_labels), 0.0, 0, 0) + struct.pack(
            "<%df" % len(flag_labels), *flag_labels) + image
    return struct.pack("<IfQQ", 0, float(label), 0, 0) + image


def write_record(f, payload):
    """dmlc-core's writer: split where the magic sits at a 4-byte boundary."""
    magic = struct.pack("<I", MAGIC)
    n = len(payload)
    dptr = 0
    for i in range(0, n - n % 4, 4):
        if payload[i:i + 4] == magic:
            f.write(magic + struct.pack("<I", ((1 if dptr == 0 else 2) << 29) | (i - dptr)))
            f.write(payload[dptr:i])
            dptr = i + 4
    f.write(magic + struct.pack("<I", ((3 if dptr else 0) << 29) | (n - dptr)))
    f.write(payload[dptr:])
    f.write(b"\0" * ((-n) % 4))


def write_rec(prefix, records):
    with open(prefix + ".rec", "wb") as rec, open(prefix + ".idx", "w") as idx:
        for key, payload in records:
            idx.write("%d\t%d\n" % (key, rec.tell()))
            write_record(rec, payload)


class Py2Str(bytes):
    """Pickled as a Python 2 str (SHORT_BINSTRING / BINSTRING), as files written by Python 2."""


def py2_pickle(images, issame):
    """Protocol 2 as Python 2's cPickle wrote it: BINSTRING images, memo puts, a shared object."""
    out = io.BytesIO()
    out.write(b"\x80\x02")
    memo = 0
    out.write(b"]q%c(" % memo)
    memo += 1
    for img in images:
        if len(img) < 256:
            out.write(b"U" + bytes([len(img)]) + img)
        else:
            out.write(b"T" + struct.pack("<I", len(img)) + img)
        out.write(b"q" + bytes([memo]))
        memo += 1
    out.write(b"e")
    out.write(b"]q" + bytes([memo]) + b"(")
    for s in issame:
        out.write(b"\x88" if s else b"\x89")
    out.write(b"e\x86.")
    return out.getvalue()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(123)
    images = make_images(rng, 12)
    for i, img in enumerate(images):
        with open(os.path.join(out, "img_%02d.pnm" % i), "wb") as f:
            f.write(img)
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4]
    n, classes = len(images), max(labels) + 1
    # insightface layout: record 0, images 1..n, identity records n+1..n+classes.
    recs = [(0, pack([n + 1, n + 1 + classes], 0, b""))]
    recs += [(i + 1, pack(None, labels[i], images[i])) for i in range(n)]
    for c in range(classes):
        ks = [i + 1 for i in range(n) if labels[i] == c]
        recs.append((n + 1 + c, pack([ks[0], ks[-1] + 1], 0, b"")))
    write_rec(os.path.join(out, "insightface"), recs)
    # No header record: keys in shuffled order, labels from each image's own header, one with
    # its label in the label array instead.
    order = list(rng.permutation(n))
    noh = []
    for k in order:
        lab = [float(labels[k])] if k == 4 else None
        noh.append((int(k) + 10, pack(lab, labels[k], images[k])))
    write_rec(os.path.join(out, "noheader"), noh)

    issame = [True, False, True, False, False, True]
    pair_images = images[:12]
    for proto in (2, 3, 4, 5):
        with open(os.path.join(out, "pairs_p%d.bin" % proto), "wb") as f:
            pickle.dump((pair_images, issame), f, protocol=proto)
    with open(os.path.join(out, "pairs_py2.bin"), "wb") as f:
        f.write(py2_pickle(pair_images, issame))
    with open(os.path.join(out, "pairs_numpy.bin"), "wb") as f:
        pickle.dump(([np.frombuffer(b, dtype=np.uint8) for b in pair_images], np.array(issame)), f,
                    protocol=2)
    with open(os.path.join(out, "pairs_numpy_p4.bin"), "wb") as f:
        pickle.dump(([np.frombuffer(b, dtype=np.uint8) for b in pair_images], issame), f, protocol=4)
    with open(os.path.join(out, "pairs_foreign.bin"), "wb") as f:
        f.write(b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    with open(os.path.join(out, "pairs_mismatch.bin"), "wb") as f:
        pickle.dump((pair_images[:5], issame), f, protocol=4)
    manifest = {"images": n, "labels": labels, "classes": classes,
                "noheader_keys": [int(k) + 10 for k in order], "issame": issame,
                "pairs": ["pairs_p2.bin", "pairs_p3.bin", "pairs_p4.bin", "pairs_p5.bin",
                          "pairs_py2.bin", "pairs_numpy.bin", "pairs_numpy_p4.bin"]}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
