#!/bin/sh
# Renders an inspect report with headless Chromium and checks that every file it references
# exists. Usage: Tools/check_report.sh REPORT_DIR SCREENSHOT.png
set -eu
dir=$1
shot=$2
[ -f "$dir/index.html" ] || { echo "error: $dir/index.html does not exist" >&2; exit 1; }
missing=0
for f in $(grep -o 'src="[^"]*"' "$dir/index.html" | sed 's/src="//; s/"$//'); do
    case "$f" in *://*) echo "error: $f is not a local file" >&2; missing=1; continue ;; esac
    [ -s "$dir/$f" ] || { echo "error: $dir/$f is referenced but missing or empty" >&2; missing=1; }
done
[ "$missing" -eq 0 ] || exit 1
echo "all $(grep -o 'src="[^"]*"' "$dir/index.html" | wc -l) referenced files exist"
rm -f "$shot"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,6000 \
    --screenshot="$shot" "file://$(cd "$dir" && pwd)/index.html" 2>/dev/null
[ -s "$shot" ] || { echo "error: chromium wrote no screenshot" >&2; exit 1; }
echo "rendered $shot"
