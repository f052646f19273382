#!/usr/bin/env python3
"""Measures where OpenCV's frontal-face Haar cascade puts its box on LFW photos.

Every LFW photo is a crop around a Viola-Jones detection enlarged about 2.2 times and rescaled to
250x250, so the "LFW face box" is nominally the square centred at (125, 125) with side
250 / 2.2 = 113.6 px. This tool runs the stock cascade (haarcascade_frontalface_default.xml,
scaleFactor 1.1, minNeighbors 3, minSize (30, 30), greyscale input) on every photo of a folder,
keeps per photo the detection whose centre is nearest the image centre, and prints

  * how many photos had a detection, and the median / 10th / 90th percentile of that detection's
    centre x, centre y and side (px);
  * the calibration between a Haar box and the LFW box: median of (Haar side / 113.6) and the
    median centre offsets (px, and relative to the Haar side, which is what carries over to other
    scales: Tools/haar_reference.py uses these);
  * other people: photos with a second (not nearest-centre) detection, and how many of those
    detections intersect the central square of side 2.0 x 113.6 px (the largest region Strata cuts
    around a face) and of side 1.7 x 113.6 px.

    nice -n 10 python3 Tools/measure_lfw_box.py                       # /work/shared/data/lfw_train
    nice -n 10 python3 Tools/measure_lfw_box.py --data DIR --json out.json
"""
import argparse, json, os, sys, time

import cv2
import numpy as np

LFW_SIDE = 250 / 2.2          # 113.6 px: the nominal LFW face box
SCALE_FACTOR, MIN_NEIGHBORS, MIN_SIZE = 1.1, 3, (30, 30)
CONTEXT_SIDES = (2.0, 1.7)    # central squares, in LFW face boxes, checked for other people


def photos(folder):
    out = []
    for root, _, files in os.walk(folder):
        out += [os.path.join(root, f) for f in files if f.lower().endswith((".jpg", ".jpeg", ".png"))]
    return sorted(out)


def overlaps(box, lo, hi):
    """True when the rectangle box = (x, y, w, h) and the square [lo, hi]^2 share a positive area."""
    x, y, w, h = box
    return min(x + w, hi) > max(x, lo) and min(y + h, hi) > max(y, lo)


def inside_fraction(box, lo, hi):
    """Share of the rectangle box = (x, y, w, h) that lies inside the square [lo, hi]^2."""
    x, y, w, h = box
    iw = max(0.0, min(x + w, hi) - max(x, lo))
    ih = max(0.0, min(y + h, hi) - max(y, lo))
    return iw * ih / (w * h)


def stats(values):
    a = np.asarray(values, np.float64)
    p10, p50, p90 = np.percentile(a, [10, 50, 90])
    return {"median": float(p50), "p10": float(p10), "p90": float(p90)}


def measure(folder, progress=True):
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        sys.exit("could not load the Haar cascade")
    files = photos(folder)
    if not files:
        sys.exit(f"no photos under {folder}")
    cx, cy, side, rel_dx, rel_dy = [], [], [], [], []
    with_second, seconds = 0, 0
    second_sides = []
    ctx = {k: {"detections": 0, "photos": 0, "centre_inside": 0, "half_area_inside": 0} for k in CONTEXT_SIDES}
    unreadable = 0
    t0 = time.time()
    for i, path in enumerate(files):
        grey = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if grey is None:
            unreadable += 1
            continue
        h, w = grey.shape
        mx, my = w / 2, h / 2
        found = cascade.detectMultiScale(grey, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS,
                                         minSize=MIN_SIZE)
        boxes = [tuple(float(v) for v in b) for b in found] if len(found) else []
        if boxes:
            dist = [(bx + bw / 2 - mx) ** 2 + (by + bh / 2 - my) ** 2 for bx, by, bw, bh in boxes]
            k = int(np.argmin(dist))
            bx, by, bw, bh = boxes[k]
            s = (bw + bh) / 2          # the cascade returns squares; average in case it does not
            cx.append(bx + bw / 2)
            cy.append(by + bh / 2)
            side.append(s)
            rel_dx.append((bx + bw / 2 - mx) / s)
            rel_dy.append((by + bh / 2 - my) / s)
            others = boxes[:k] + boxes[k + 1:]
            if others:
                with_second += 1
                seconds += len(others)
                second_sides += [(o[2] + o[3]) / 2 for o in others]
                for f in CONTEXT_SIDES:
                    half = f * LFW_SIDE / 2
                    hits = sum(overlaps(o, mx - half, mx + half) for o in others)
                    ctx[f]["detections"] += hits
                    ctx[f]["photos"] += hits > 0
                    for o in others:
                        ocx, ocy = o[0] + o[2] / 2, o[1] + o[3] / 2
                        ctx[f]["centre_inside"] += (mx - half < ocx < mx + half) and (my - half < ocy < my + half)
                        ctx[f]["half_area_inside"] += inside_fraction(o, mx - half, mx + half) >= 0.5
        if progress and (i + 1) % 500 == 0:
            print(f"  {i + 1}/{len(files)} photos, {time.time() - t0:.0f} s", file=sys.stderr)
    n = len(files) - unreadable
    return {
        "data": os.path.abspath(folder),
        "cascade": "haarcascade_frontalface_default.xml",
        "params": {"scaleFactor": SCALE_FACTOR, "minNeighbors": MIN_NEIGHBORS, "minSize": list(MIN_SIZE),
                   "input": "greyscale"},
        "opencv": cv2.__version__,
        "photos": n,
        "unreadable": unreadable,
        "detected": len(side),
        "centre_x": stats(cx),
        "centre_y": stats(cy),
        "side": stats(side),
        "lfw_side": LFW_SIDE,
        "calibration_factor": float(np.median(np.asarray(side) / LFW_SIDE)),   # Haar side / LFW side
        "centre_offset_px": {"dx": float(np.median(np.asarray(cx) - 125.0)),
                             "dy": float(np.median(np.asarray(cy) - 125.0))},
        "centre_offset_rel_haar_side": {"dx": float(np.median(rel_dx)), "dy": float(np.median(rel_dy))},
        "others": {
            "photos_with_second_detection": with_second,
            "second_detections": seconds,
            "second_detection_side": stats(second_sides) if second_sides else None,
            "intersect_central_square": {f"{f:.1f}": {"side_px": f * LFW_SIDE, **ctx[f]} for f in CONTEXT_SIDES},
        },
        "seconds": round(time.time() - t0, 1),
    }


def report(r):
    def line(name, s):
        return f"  {name:<9} median {s['median']:7.2f}   p10 {s['p10']:7.2f}   p90 {s['p90']:7.2f}"
    o = r["others"]
    out = [
        f"OpenCV {r['opencv']} {r['cascade']}  scaleFactor {r['params']['scaleFactor']}  "
        f"minNeighbors {r['params']['minNeighbors']}  minSize {tuple(r['params']['minSize'])}  greyscale",
        f"data: {r['data']}",
        f"photos: {r['photos']}  (unreadable {r['unreadable']})",
        f"with a detection: {r['detected']} ({100 * r['detected'] / max(r['photos'], 1):.1f} %)",
        "nearest-centre detection (px):",
        line("centre x", r["centre_x"]),
        line("centre y", r["centre_y"]),
        line("side", r["side"]),
        f"calibration: median(Haar side / {r['lfw_side']:.1f}) = {r['calibration_factor']:.4f}",
        f"median centre offset from (125, 125): dx {r['centre_offset_px']['dx']:+.2f} px, "
        f"dy {r['centre_offset_px']['dy']:+.2f} px",
        f"median centre offset / Haar side:     dx {r['centre_offset_rel_haar_side']['dx']:+.4f}, "
        f"dy {r['centre_offset_rel_haar_side']['dy']:+.4f}",
        f"other people: {o['photos_with_second_detection']} photos have a second detection "
        f"({o['second_detections']} second detections in all)",
    ]
    if o["second_detection_side"]:
        out.append(line("side", o["second_detection_side"]) + "   (second detections, px)")
    for k, v in o["intersect_central_square"].items():
        out.append(f"  intersecting the central square of side {k} x {r['lfw_side']:.1f} = {v['side_px']:.1f} px: "
                   f"{v['detections']} detections, in {v['photos']} photos "
                   f"(centre inside: {v['centre_inside']}, >= 50 % of area inside: {v['half_area_inside']})")
    out.append("  (note: on a 250 px photo every box of side >= 30 px meets both squares, whose margins are "
               "11.4 and 28.4 px, so 'intersecting' is all of them; the centre / area counts tell more)")
    out.append(f"time: {r['seconds']:.1f} s")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/work/shared/data/lfw_train", help="folder of LFW photos (searched recursively)")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    r = measure(a.data)
    print(report(r))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
