#!/usr/bin/env python3
"""Evaluation fixtures computed the way insightface computes them, with the libraries its code
uses (numpy, scikit-learn's KFold / roc_curve / auc / normalize, scipy's interp1d): the
independent reference the C++ evaluator is checked against.

Writes into OUT:
  verification.f64  N x 2 x D float64 embeddings (pair i: rows 2i, 2i+1), issame.u8, and
  verification.json with accuracy, std, best threshold, VAL, VAL std and FAR;
  roc.f32 / roc.u8  scores and labels (with ties), roc.json with the curve, AUC and TAR@FAR;
  ijb_images.f64 (flip-summed image features), ijb_meta.json (template, media, score per image)
  and ijb_templates.f64 (the aggregated, normalised template features, ascending template id);
  align_image.png (a loose crop), align.json (its five landmarks and the transform) and
  align_expected.png: the face aligned as insightface's eval_ijbc.py aligns it (the 112 x 112
  ArcFace template, skimage's SimilarityTransform.estimate, cv2.warpAffine with border 0).
"""
import json
import os
import sys

import numpy as np
from scipy import interpolate
from sklearn.metrics import auc, roc_curve
from sklearn.model_selection import KFold
from sklearn.preprocessing import normalize


# --- insightface recognition/arcface_torch/eval/verification.py, transcribed -------------------
def calculate_accuracy(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    tp = np.sum(np.logical_and(predict_issame, actual_issame))
    fp = np.sum(np.logical_and(predict_issame, np.logical_not(actual_issame)))
    tn = np.sum(np.logical_and(np.logical_not(predict_issame), np.logical_not(actual_issame)))
    fn = np.sum(np.logical_and(np.logical_not(predict_issame), actual_issame))
    return float(tp + tn) / dist.size


def calculate_roc(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds=10):
    nrof_pairs = min(len(actual_issame), embeddings1.shape[0])
    k_fold = KFold(n_splits=nrof_folds, shuffle=False)
    accuracy = np.zeros((nrof_folds))
    indices = np.arange(nrof_pairs)
    diff = np.subtract(embeddings1, embeddings2)
    dist = np.sum(np.square(diff), 1)
    for fold_idx, (train_set, test_set) in enumerate(k_fold.split(indices)):
        acc_train = np.zeros((len(thresholds)))
        for threshold_idx, threshold in enumerate(thresholds):
            acc_train[threshold_idx] = calculate_accuracy(threshold, dist[train_set],
                                                          actual_issame[train_set])
        best_threshold_index = np.argmax(acc_train)
        accuracy[fold_idx] = calculate_accuracy(thresholds[best_threshold_index], dist[test_set],
                                                actual_issame[test_set])
    return accuracy


def calculate_val_far(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    true_accept = np.sum(np.logical_and(predict_issame, actual_issame))
    false_accept = np.sum(np.logical_and(predict_issame, np.logical_not(actual_issame)))
    n_same = np.sum(actual_issame)
    n_diff = np.sum(np.logical_not(actual_issame))
    return float(true_accept) / float(n_same), float(false_accept) / float(n_diff)


def calculate_val(thresholds, embeddings1, embeddings2, actual_issame, far_target, nrof_folds=10):
    nrof_pairs = min(len(actual_issame), embeddings1.shape[0])
    k_fold = KFold(n_splits=nrof_folds, shuffle=False)
    val = np.zeros(nrof_folds)
    far = np.zeros(nrof_folds)
    diff = np.subtract(embeddings1, embeddings2)
    dist = np.sum(np.square(diff), 1)
    indices = np.arange(nrof_pairs)
    for fold_idx, (train_set, test_set) in enumerate(k_fold.split(indices)):
        far_train = np.zeros(len(thresholds))
        for threshold_idx, threshold in enumerate(thresholds):
            _, far_train[threshold_idx] = calculate_val_far(threshold, dist[train_set],
                                                            actual_issame[train_set])
        if np.max(far_train) >= far_target:
            # insightface: interpolate.interp1d(far_train, thresholds, kind='slinear'). SciPy
            # 1.10 refuses far_train's repeated values; older SciPy built this degree-1 B-spline
            # (make_interp_spline's k == 1 special case), which is what we evaluate here.
            f = interpolate.BSpline(np.r_[far_train[0], far_train, far_train[-1]], thresholds, 1)
            threshold = f(far_target)
        else:
            threshold = 0.0
        val[fold_idx], far[fold_idx] = calculate_val_far(threshold, dist[test_set],
                                                         actual_issame[test_set])
    return np.mean(val), np.std(val), np.mean(far)


def evaluate(embeddings, actual_issame, nrof_folds=10):
    thresholds = np.arange(0, 4, 0.01)
    e1, e2 = embeddings[0::2], embeddings[1::2]
    accuracy = calculate_roc(thresholds, e1, e2, np.asarray(actual_issame), nrof_folds)
    thresholds = np.arange(0, 4, 0.001)
    val, val_std, far = calculate_val(thresholds, e1, e2, np.asarray(actual_issame), 1e-3,
                                      nrof_folds)
    return accuracy, val, val_std, far


# --- insightface recognition/arcface_torch/eval_ijbc.py, transcribed ----------------------------
def image2template_feature(img_feats, templates, medias):
    unique_templates = np.unique(templates)
    template_feats = np.zeros((len(unique_templates), img_feats.shape[1]))
    for count_template, uqt in enumerate(unique_templates):
        (ind_t,) = np.where(templates == uqt)
        face_norm_feats = img_feats[ind_t]
        face_medias = medias[ind_t]
        unique_medias, unique_media_counts = np.unique(face_medias, return_counts=True)
        media_norm_feats = []
        for u, ct in zip(unique_medias, unique_media_counts):
            (ind_m,) = np.where(face_medias == u)
            if ct == 1:
                media_norm_feats += [face_norm_feats[ind_m]]
            else:
                media_norm_feats += [np.mean(face_norm_feats[ind_m], axis=0, keepdims=True)]
        media_norm_feats = np.array(media_norm_feats)
        template_feats[count_template] = np.sum(media_norm_feats, axis=0)
    return normalize(template_feats), unique_templates


def ijb_tar_at_far(label, score, x_labels):
    fpr, tpr, _ = roc_curve(label, score)
    roc_auc = auc(fpr, tpr)
    fpr = np.flipud(fpr)
    tpr = np.flipud(tpr)
    row = []
    for x in x_labels:
        _, min_index = min(list(zip(abs(fpr - x), range(len(fpr)))))
        row.append(float(tpr[min_index]))
    return np.flipud(fpr), np.flipud(tpr), roc_auc, row


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261129)

    # Verification: 1203 pairs (uneven folds), 64-d, genuine pairs noisier or cleaner at random.
    n, d = 1203, 64
    issame = rng.random(n) < 0.5
    a = rng.standard_normal((n, d))
    noise = rng.standard_normal((n, d)) * rng.uniform(0.8, 2.6, (n, 1))
    b = np.where(issame[:, None], a + noise, rng.standard_normal((n, d)))
    emb = np.empty((2 * n, d))
    emb[0::2], emb[1::2] = normalize(a), normalize(b)
    acc, val, val_std, far = evaluate(emb, issame)
    emb.astype("<f8").tofile(os.path.join(out, "verification.f64"))
    issame.astype(np.uint8).tofile(os.path.join(out, "verification_issame.u8"))
    with open(os.path.join(out, "verification.json"), "w") as f:
        json.dump({"pairs": n, "dim": d, "accuracy": float(np.mean(acc)),
                   "accuracy_std": float(np.std(acc)), "val": float(val),
                   "val_std": float(val_std), "far": float(far)}, f)

    # ROC with ties: 300k scores quantised to 1e-4, 2 % genuine.
    m = 300_000
    labels = rng.random(m) < 0.02
    scores = np.where(labels, rng.normal(0.45, 0.15, m), rng.normal(0.0, 0.1, m))
    scores = (np.round(scores * 1e4) / 1e4).astype(np.float32)
    fars = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    fpr, tpr, roc_auc, tars = ijb_tar_at_far(labels.astype(int), scores, fars)
    scores.tofile(os.path.join(out, "roc.f32"))
    labels.astype(np.uint8).tofile(os.path.join(out, "roc.u8"))
    with open(os.path.join(out, "roc.json"), "w") as f:
        json.dump({"n": m, "points": len(fpr), "auc": float(roc_auc), "fars": fars, "tars": tars,
                   "fpr_sample": [float(x) for x in fpr[::97]],
                   "tpr_sample": [float(x) for x in tpr[::97]]}, f)

    # IJB templates: 40 templates of 1-3 medias of 1-4 images, 32-d, detector scores.
    rows, tids, mids, dets = [], [], [], []
    media = 0
    for t in rng.permutation(40) * 3 + 7:  # template ids not in order, not contiguous
        for _ in range(rng.integers(1, 4)):
            media += 1
            for _ in range(rng.integers(1, 5)):
                tids.append(int(t))
                mids.append(media)
                dets.append(float(rng.uniform(0.5, 1.0)))
                rows.append(rng.standard_normal(32) * rng.uniform(5, 30))
    feats = np.array(rows)
    input_feats = feats * np.array(dets)[:, None]  # use_norm_score=True, use_detector_score=True
    templates, unique = image2template_feature(input_feats, np.array(tids), np.array(mids))
    feats.astype("<f8").tofile(os.path.join(out, "ijb_images.f64"))
    templates.astype("<f8").tofile(os.path.join(out, "ijb_templates.f64"))
    with open(os.path.join(out, "ijb_meta.json"), "w") as f:
        json.dump({"template": tids, "media": mids, "score": dets,
                   "unique": [int(u) for u in unique], "dim": 32}, f)

    align_case(out, rng)


def align_case(out, rng):
    """A face aligned the way insightface's eval_ijbc.py (and the authors' eval_ijbb.py) does."""
    import cv2
    from skimage import transform as trans

    # A 240 x 200 BGR loose crop with structure at every scale (smoothed noise and gradients).
    h, w = 240, 200
    img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 2.0)
    yy, xx = np.mgrid[0:h, 0:w]
    img[..., 1] = np.clip(img[..., 1] * 0.5 + xx * 0.6, 0, 255).astype(np.uint8)
    img[..., 2] = np.clip(img[..., 2] * 0.5 + yy * 0.5, 0, 255).astype(np.uint8)
    # eval_ijbc.py's template.
    src = np.array([
        [30.2946, 51.6963],
        [65.5318, 51.5014],
        [48.0252, 71.7366],
        [33.5493, 92.3655],
        [62.7299, 92.2041]], dtype=np.float32)
    src[:, 0] += 8.0
    # Landmarks as a detector reports them: the template rotated, scaled and moved, plus jitter.
    angle, scale = np.deg2rad(14.0), 1.45
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * scale
    landmark5 = (src @ rot.T + np.array([31.0, 22.0]) +
                 rng.uniform(-2.0, 2.0, (5, 2))).astype(np.float32)
    tform = trans.SimilarityTransform()
    tform.estimate(landmark5, src)
    M = tform.params[0:2, :]
    aligned = cv2.warpAffine(img, M, (112, 112), borderValue=0.0)
    cv2.imwrite(os.path.join(out, "align_image.png"), img)
    cv2.imwrite(os.path.join(out, "align_expected.png"), aligned)
    with open(os.path.join(out, "align.json"), "w") as f:
        json.dump({"landmarks": [float(v) for v in landmark5.reshape(-1)],
                   "template": [float(v) for v in src.reshape(-1)],
                   "matrix": [float(v) for v in M.reshape(-1)]}, f)


if __name__ == "__main__":
    main(sys.argv[1])
