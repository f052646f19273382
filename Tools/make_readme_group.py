"""Makes docs/images/three-people.jpg, the README's picture of three people: three LFW photos of
people the shipped detector never saw (held out by `make faces-check`), each cut around its face
with a soft oval edge, at three sizes, on a Debian wallpaper (plasma-workspace-wallpapers).

    python3 Tools/make_readme_group.py [--lfw ../shared/data/lfw_train] [--out docs/images/three-people.jpg]
Needs Pillow (pip install pillow).
"""
import argparse
from PIL import Image, ImageDraw, ImageFilter

# (person, photo number, face box side in the picture, face box top-left)
PEOPLE = [("Keanu_Reeves", 1, 84, (70, 150)), ("Jelena_Dokic", 1, 104, (275, 95)), ("Shimon_Peres", 1, 70, (505, 170))]
LFW_BOX = 250 / 2.2            # the face box of every LFW photo: centred, 250 / 2.2 px a side


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lfw", default="../shared/data/lfw_train")
    ap.add_argument("--wallpaper", default="/usr/share/wallpapers/BytheWater/contents/images/2560x1600.jpg")
    ap.add_argument("--out", default="docs/images/three-people.jpg")
    a = ap.parse_args()
    bg = Image.open(a.wallpaper).convert("RGB").resize((800, 500), Image.BOX).crop((80, 60, 720, 460))
    for name, n, side, (x, y) in PEOPLE:
        photo = Image.open(f"{a.lfw}/{name}/{name}_{n:04d}.jpg").convert("RGB")
        k = side / LFW_BOX
        # The face box plus 0.45 box sides around it (0.7 below, for the neck and shoulders).
        left, top = 125 - LFW_BOX * 0.95, 125 - LFW_BOX * 0.95
        right, bottom = 125 + LFW_BOX * 0.95, 125 + LFW_BOX * 1.1
        cut = photo.crop((int(left), int(top), int(right), int(bottom)))
        cut = cut.resize((round(cut.width * k), round(cut.height * k)), Image.BOX)
        mask = Image.new("L", cut.size, 0)
        ImageDraw.Draw(mask).ellipse((2, 2, cut.width - 3, cut.height - 3), fill=255)
        mask = mask.filter(ImageFilter.GaussianBlur(3))
        bg.paste(cut, (round(x - (125 - LFW_BOX / 2 - left) * k), round(y - (125 - LFW_BOX / 2 - top) * k)), mask)
    bg.save(a.out, quality=90)
    print(f"wrote {a.out} ({bg.width}x{bg.height})")


if __name__ == "__main__":
    main()
