#!/usr/bin/env python3
"""OpenCV's Haar cascade as the peer, side by side, of Strata's face detector.

Reads a folder written by Strata: pictures (PNG) and boxes.json of the form

    {"pictures": [{"file": "0000.png", "width": 640, "height": 480,
                   "faces": [[x, y, side], ...],       # square LFW-style boxes: top-left x, y and side (px)
                   "ignore": [[x, y, w, h], ...]}]}    # optional: a detection here neither counts nor costs

runs haarcascade_frontalface_default.xml on each picture (greyscale, scaleFactor 1.1, minNeighbors 3,
minSize (20, 20), detectMultiScale3 with outputRejectLevels=True; the levelWeights are the scores),
turns each Haar rectangle into an LFW-style square box (calibration measured by
Tools/measure_lfw_box.py) and prints

    AP at IoU 0.5, recall at 1 false positive per picture, mean ms per picture (cv2.setNumThreads(2)).

The metric is `evaluate()`, importable (Strata computes the same; see its docstring for the exact rule).

    nice -n 10 python3 Tools/haar_reference.py DIR [--json out.json]
    python3 Tools/haar_reference.py --self-test
"""
import argparse, json, math, os, sys, time

# Haar box -> LFW box. Measured by Tools/measure_lfw_box.py on the 4,110 photos of
# /work/shared/data/lfw_train (OpenCV 4.14.0, scaleFactor 1.1, minNeighbors 3, minSize (30, 30),
# greyscale; output in Tools/measure_lfw_box.out.txt):
#   median(Haar side / 113.6) = 1.0120 (median Haar side 115.0 px against the nominal 250/2.2 = 113.6 px)
#   median (Haar centre - (125, 125)) / Haar side = (+0.0043, +0.0000)   (+0.50 px, +0.00 px)
HAAR_SIDE_PER_LFW_SIDE = 1.0120
HAAR_CENTRE_DX_PER_SIDE = 0.0043
HAAR_CENTRE_DY_PER_SIDE = 0.0000

SCALE_FACTOR, MIN_NEIGHBORS, MIN_SIZE = 1.1, 3, (20, 20)
IOU_THRESHOLD = 0.5
IGNORE_COVER = 0.5


# ---------------------------------------------------------------------------------------------- metric

def _xywh(box):
    """[x, y, side] or [x, y, w, h] -> (x, y, w, h) floats."""
    if len(box) == 3:
        return float(box[0]), float(box[1]), float(box[2]), float(box[2])
    if len(box) == 4:
        return tuple(float(v) for v in box)
    raise ValueError(f"a box has 3 (x, y, side) or 4 (x, y, w, h) numbers, not {box!r}")


def _intersection(a, b):
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def iou(a, b):
    a, b = _xywh(a), _xywh(b)
    inter = _intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def evaluate(pictures, detections, iou_threshold=IOU_THRESHOLD):
    """AP at IoU `iou_threshold` and recall at 1 false positive per picture.

    pictures:   list of {"faces": [[x, y, side] or [x, y, w, h], ...], "ignore": [[x, y, w, h], ...]}
                ("ignore" may be absent).
    detections: list of (picture_index, score, box), box [x, y, side] or [x, y, w, h].

    All detections of all pictures are pooled and sorted by score, highest first (ties keep the
    order of `detections`). For each in turn, among its picture's faces not yet matched the one with
    the highest IoU is taken: IoU >= threshold -> true positive, the face is matched; otherwise, if
    the detection's intersection with any single ignore region covers >= 50 % of the detection's
    area, it is skipped; otherwise it is a false positive. Precision and recall (TP / all faces) are
    recorded after each counted detection. AP: precision made non-increasing from the right, then
    sum over the points where recall rises of (r[i] - r[i-1]) * p[i]. Recall at 1 FP per picture:
    the highest recall reached while FP <= number of pictures.

    Returns {"pictures", "faces", "tp", "fp", "skipped", "ap50", "recall_at_1fp",
             "precision": [...], "recall": [...]}.
    """
    faces = [[_xywh(f) for f in p.get("faces") or []] for p in pictures]
    ignore = [[_xywh(g) for g in p.get("ignore") or []] for p in pictures]
    total = sum(len(f) for f in faces)
    matched = [[False] * len(f) for f in faces]
    order = sorted(range(len(detections)), key=lambda i: -float(detections[i][1]))   # sorted() is stable
    tp = fp = skipped = 0
    precision, recall = [], []
    best_recall_1fp = 0.0
    for i in order:
        k, _, box = detections[i]
        d = _xywh(box)
        best, best_j = -1.0, -1
        for j, f in enumerate(faces[k]):
            if not matched[k][j]:
                v = iou(d, f)
                if v > best:
                    best, best_j = v, j
        if best_j >= 0 and best >= iou_threshold:
            matched[k][best_j] = True
            tp += 1
        else:
            area = d[2] * d[3]
            if area > 0 and any(_intersection(d, g) >= IGNORE_COVER * area for g in ignore[k]):
                skipped += 1
                continue
            fp += 1
        precision.append(tp / (tp + fp))
        recall.append(tp / total if total else 0.0)
        if fp <= len(pictures):
            best_recall_1fp = max(best_recall_1fp, recall[-1])
    if total == 0:
        ap = float("nan")
    else:
        p = list(precision)
        for i in range(len(p) - 2, -1, -1):
            p[i] = max(p[i], p[i + 1])
        ap, prev = 0.0, 0.0
        for i, r in enumerate(recall):
            if r > prev:
                ap += (r - prev) * p[i]
                prev = r
    return {"pictures": len(pictures), "faces": total, "tp": tp, "fp": fp, "skipped": skipped,
            "ap50": ap, "recall_at_1fp": best_recall_1fp if total else float("nan"),
            "precision": precision, "recall": recall}


# ---------------------------------------------------------------------------------------------- Haar

def haar_to_lfw(x, y, w, h):
    """A Haar rectangle -> the LFW-style square [x, y, side] of the same face region."""
    s = (w + h) / 2
    cx = x + w / 2 - HAAR_CENTRE_DX_PER_SIDE * s
    cy = y + h / 2 - HAAR_CENTRE_DY_PER_SIDE * s
    side = s / HAAR_SIDE_PER_LFW_SIDE
    return [cx - side / 2, cy - side / 2, side]


def run_haar(folder):
    import cv2
    import numpy as np
    cv2.setNumThreads(2)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        sys.exit("could not load the Haar cascade")
    with open(os.path.join(folder, "boxes.json")) as f:
        pictures = json.load(f)["pictures"]
    greys = []
    for p in pictures:
        g = cv2.imread(os.path.join(folder, p["file"]), cv2.IMREAD_GRAYSCALE)
        if g is None:
            sys.exit(f"cannot read {p['file']}")
        if ("width" in p and g.shape[1] != p["width"]) or ("height" in p and g.shape[0] != p["height"]):
            print(f"warning: {p['file']} is {g.shape[1]}x{g.shape[0]}, boxes.json says "
                  f"{p.get('width')}x{p.get('height')}", file=sys.stderr)
        greys.append(g)
    detections, seconds = [], 0.0
    if greys:   # one untimed call first, so that the mean does not carry one-off set-up costs
        cascade.detectMultiScale3(greys[0], scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS,
                                  minSize=MIN_SIZE, outputRejectLevels=True)
    for k, g in enumerate(greys):
        t = time.perf_counter()
        rects, _levels, weights = cascade.detectMultiScale3(g, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS,
                                                            minSize=MIN_SIZE, outputRejectLevels=True)
        seconds += time.perf_counter() - t
        weights = np.asarray(weights, np.float64).reshape(-1)
        for r, s in zip(np.asarray(rects).reshape(-1, 4), weights):
            detections.append((k, float(s), haar_to_lfw(*(float(v) for v in r))))
    ms = 1000 * seconds / len(greys) if greys else float("nan")
    return pictures, detections, ms


# ---------------------------------------------------------------------------------------------- self-test

def self_test():
    close = lambda a, b: abs(a - b) < 1e-12
    failures = []

    def check(name, got, want):
        ok = close(got, want) if isinstance(want, float) else got == want
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {got!r} (want {want!r})")
        if not ok:
            failures.append(name)

    # 1. Two pictures, three faces. A: F1 = [0, 0, 10], F2 = [100, 100, 10], ignore [200, 200, 50, 50].
    #    B: F3 = [0, 0, 20]. Detections, by score:
    #    .9 A on F1           -> TP  (tp 1, fp 0)  p 1    r 1/3
    #    .8 B at [50, 50, 10] -> FP  (tp 1, fp 1)  p 1/2  r 1/3
    #    .7 A inside ignore   -> skipped
    #    .6 A on F1 again     -> F1 taken, F2 IoU 0, not ignored -> FP (tp 1, fp 2)  p 1/3  r 1/3
    #    .5 B at [2, 0, 20]   -> IoU with F3 = 360 / 440 = 0.82 -> TP (tp 2, fp 2)  p 1/2  r 2/3
    #    Interpolated p: 1, 1/2, 1/2, 1/2. AP = 1/3 * 1 + 1/3 * 1/2 = 1/2.
    #    FP never passes 2 pictures -> recall at 1 FP per picture = 2/3.
    pics = [{"faces": [[0, 0, 10], [100, 100, 10]], "ignore": [[200, 200, 50, 50]]},
            {"faces": [[0, 0, 20]]}]
    dets = [(1, 0.5, [2, 0, 20]), (0, 0.6, [0, 0, 10]), (0, 0.9, [0, 0, 10]),
            (1, 0.8, [50, 50, 10]), (0, 0.7, [210, 210, 10])]
    r = evaluate(pics, dets)
    print("case 1: two pictures, three faces, a duplicate and an ignored detection")
    check("faces", r["faces"], 3)
    check("tp, fp, skipped", (r["tp"], r["fp"], r["skipped"]), (2, 2, 1))
    check("precision", r["precision"], [1.0, 0.5, 1 / 3, 0.5])
    check("recall", r["recall"], [1 / 3, 1 / 3, 1 / 3, 2 / 3])
    check("ap50", r["ap50"], 0.5)
    check("recall_at_1fp", r["recall_at_1fp"], 2 / 3)

    # 2. One picture, one face; FP .9, FP .8, TP .7. p 0, 0, 1/3; r 0, 0, 1. AP = 1 * 1/3.
    #    The TP comes at FP = 2 > 1 picture -> recall at 1 FP per picture = 0.
    r = evaluate([{"faces": [[10, 10, 40]]}],
                 [(0, 0.9, [100, 100, 40]), (0, 0.8, [200, 100, 40]), (0, 0.7, [12, 10, 40])])
    print("case 2: the face is found only after two false positives")
    check("ap50", r["ap50"], 1 / 3)
    check("recall_at_1fp", r["recall_at_1fp"], 0.0)

    # 3. Ties keep the input order: FP then TP at the same score -> p 0, 1/2; r 0, 1 -> AP 1/2.
    #    The other way round -> AP 1.
    face = [{"faces": [[10, 10, 40]]}]
    r = evaluate(face, [(0, 0.5, [100, 100, 40]), (0, 0.5, [10, 10, 40])])
    r2 = evaluate(face, [(0, 0.5, [10, 10, 40]), (0, 0.5, [100, 100, 40])])
    print("case 3: equal scores keep their order")
    check("ap50 FP first", r["ap50"], 0.5)
    check("ap50 TP first", r2["ap50"], 1.0)

    # 4. Ignore rule: exactly 50 % of the detection inside one ignore region -> skipped; 40 % -> FP;
    #    a detection that matches a face is a TP even inside an ignore region; IoU exactly 0.5 is a TP.
    pics = [{"faces": [[0, 0, 30, 20]], "ignore": [[0, 0, 100, 100], [300, 300, 100, 10]]}]
    r = evaluate(pics, [(0, 0.9, [0, 0, 20, 20]),      # IoU 400 / 600 = 2/3 -> TP though in ignore
                        (0, 0.8, [295, 300, 10]),     # 5 x 10 = 50 of 100 inside ignore -> skipped
                        (0, 0.7, [294, 300, 10])])    # 4 x 10 = 40 of 100 inside -> FP
    r2 = evaluate([{"faces": [[0, 0, 20, 10]]}], [(0, 1.0, [0, 0, 10])])   # IoU 100 / 200 = 0.5 -> TP
    print("case 4: ignore regions and the IoU threshold")
    check("tp, fp, skipped", (r["tp"], r["fp"], r["skipped"]), (1, 1, 1))
    check("IoU 0.5 counts", (r2["tp"], r2["fp"]), (1, 0))

    # 5. A picture without faces still counts in the FP budget; no detections at all -> AP 0.
    r = evaluate([{"faces": [[0, 0, 10]]}, {"faces": []}],
                 [(1, 0.9, [0, 0, 10]), (1, 0.8, [20, 0, 10]), (0, 0.7, [0, 0, 10])])
    print("case 5: two FPs on an empty picture, then the face (FP 2 <= 2 pictures)")
    check("ap50", r["ap50"], 1 / 3)
    check("recall_at_1fp", r["recall_at_1fp"], 1.0)
    check("no detections: ap50", evaluate([{"faces": [[0, 0, 10]]}], [])["ap50"], 0.0)

    # 6. Calibration: a Haar box where the measurement puts it on the nominal LFW box (centre
    #    (125, 125), side 113.6 * factor, centre shifted by the measured offsets) maps back onto it.
    s = 250 / 2.2 * HAAR_SIDE_PER_LFW_SIDE
    cx, cy = 125 + HAAR_CENTRE_DX_PER_SIDE * s, 125 + HAAR_CENTRE_DY_PER_SIDE * s
    b = haar_to_lfw(cx - s / 2, cy - s / 2, s, s)
    print("case 6: Haar box -> LFW box")
    check("round trip", max(abs(b[0] - (125 - 125 / 2.2)), abs(b[1] - (125 - 125 / 2.2)),
                            abs(b[2] - 250 / 2.2)) < 1e-9, True)

    print("self-test:", "FAILED " + ", ".join(failures) if failures else "all passed")
    return not failures


# ---------------------------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", nargs="?", help="folder with boxes.json and its PNG pictures")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    ap.add_argument("--self-test", action="store_true", help="check the metric on hand-made cases")
    a = ap.parse_args()
    if a.self_test:
        sys.exit(0 if self_test() else 1)
    if not a.folder:
        ap.error("give the folder, or --self-test")
    pictures, detections, ms = run_haar(a.folder)
    r = evaluate(pictures, detections)
    print(f"detector: opencv-haar  ({r['pictures']} pictures, {r['faces']} faces, {len(detections)} detections: "
          f"{r['tp']} TP, {r['fp']} FP, {r['skipped']} ignored)")
    print(f"AP at IoU 0.5: {r['ap50']:.4f}")
    print(f"recall at 1 false positive per picture: {r['recall_at_1fp']:.4f}")
    print(f"time per picture: {ms:.2f} ms (detectMultiScale3, cv2.setNumThreads(2))")
    if a.json:
        out = {"detector": "opencv-haar", "pictures": r["pictures"], "faces": r["faces"],
               "ap50": r["ap50"], "recall_at_1fp": r["recall_at_1fp"], "ms_per_picture": ms}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
