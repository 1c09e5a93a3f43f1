#!/bin/sh
# effnet classify / eval as a user meets them. Bad files in a batch are reported one line each
# and skipped; the good ones are still classified; the exit status says some failed.
# With the pretrained Lite0 (scripts/fetch_weights.sh) the sample photos must get sensible
# classes. Usage: sh tests/test_classify.sh BUILD
build=${1:-build}
effnet="$build/effnet"
tiny=tests/fixtures/small/tv_w0.25_d0.34_64x48_n2/weights.safetensors
img=tests/fixtures/images
tmp=$(mktemp -d)
trap 'chmod -R u+rwx "$tmp"; rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# A batch mixing good images with every kind of bad file.
: >"$tmp/zero.jpg"
printf 'not an image at all\n' >"$tmp/text.png"
mkdir -p "$tmp/locked" && cp "$img/jpeg_baseline_420.jpg" "$tmp/locked/x.jpg" && chmod 000 "$tmp/locked/x.jpg"
set -- "$img/jpeg_baseline_420.jpg" "$tmp/zero.jpg" "$tmp/text.png" fuzz/reject/jpeg/reject_truncated.jpg \
  fuzz/reject/png/reject_huge_area.png fuzz/reject/jpeg/reject_huge_side.jpg "$tmp/missing.jpg" "$img/jpeg_exif_6.jpg"
[ "$(id -u)" -ne 0 ] && set -- "$@" "$tmp/locked/x.jpg"
"$effnet" classify --weights "$tiny" --preprocess torchvision --size 64 --top 3 "$@" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && ok || bad "mixed batch exit status $rc"
[ "$(grep -c '^tests/fixtures/images/' "$tmp/out")" -eq 2 ] && ok || bad "good images not classified: $(cat "$tmp/out")"
for f in zero.jpg text.png reject_truncated.jpg reject_huge_area.png reject_huge_side.jpg missing.jpg; do
  grep -q "$f" "$tmp/err" && ok || bad "no error line for $f: $(cat "$tmp/err")"
done
grep -q "6 of 8 images failed" "$tmp/err" && ok || bad "failure summary: $(tail -1 "$tmp/err")"
# JSON: one object per image, errors included
"$effnet" classify --weights "$tiny" --preprocess torchvision --size 64 --json "$img/jpeg_baseline_420.jpg" "$tmp/zero.jpg" >"$tmp/out" 2>/dev/null
[ "$(grep -c '^{"file": ' "$tmp/out")" -eq 2 ] && grep -q '"error": ' "$tmp/out" && grep -q '"prob": ' "$tmp/out" && ok || bad "json lines: $(cat "$tmp/out")"
# a directory is walked (sorted, image extensions only)
mkdir -p "$tmp/dir/sub" && cp "$img/jpeg_baseline_420.jpg" "$tmp/dir/b.jpg" && cp "$img/jpeg_baseline_444.jpg" "$tmp/dir/sub/a.JPG" && echo x >"$tmp/dir/notes.txt"
"$effnet" classify --weights "$tiny" --preprocess timm --size 64 "$tmp/dir" >"$tmp/out" 2>"$tmp/err" && [ "$(grep -c "^$tmp/dir" "$tmp/out")" -eq 2 ] && ok || bad "directory walk: $(cat "$tmp/out" "$tmp/err")"
"$effnet" classify --weights "$tiny" --top 0 "$img/jpeg_baseline_420.jpg" 2>/dev/null; [ $? -eq 2 ] && ok || bad "--top 0 accepted"
"$effnet" classify --weights "$tiny" --preprocess sepia "$img/jpeg_baseline_420.jpg" 2>"$tmp/err"; [ $? -eq 2 ] && grep -q sepia "$tmp/err" && ok || bad "unknown preset"
EFFNET_WEIGHTS="$tmp/none.pth" "$effnet" classify "$img/jpeg_baseline_420.jpg" 2>"$tmp/err"; [ $? -eq 1 ] && grep -q none.pth "$tmp/err" && ok || bad "missing default weights"
# eval on labelled folders with the tiny 10-class model: one folder per class is required
# (sorted order), a partial set of arbitrary names is refused rather than scored wrongly
mkdir -p "$tmp/ev/a" "$tmp/ev/b" && cp "$img/jpeg_baseline_420.jpg" "$tmp/ev/a/" && cp "$img/jpeg_baseline_444.jpg" "$tmp/ev/b/"
"$effnet" eval "$tmp/ev" --weights "$tiny" --preprocess torchvision --size 64 >"$tmp/out" 2>&1; [ $? -ne 0 ] && grep -q "2 class folders for a 10-class model" "$tmp/out" && ok || bad "eval partial folders: $(cat "$tmp/out")"
for c in c d e f g h i j; do mkdir -p "$tmp/ev/$c"; done
"$effnet" eval "$tmp/ev" --weights "$tiny" --preprocess torchvision --size 64 >"$tmp/out" 2>&1 && grep -q "2 images (0 unreadable): top-1" "$tmp/out" && ok || bad "eval folders: $(cat "$tmp/out")"
printf 'a/jpeg_baseline_420.jpg 3\nb/jpeg_baseline_444.jpg 12\n' >"$tmp/ev/labels.txt"
"$effnet" eval "$tmp/ev" --labels "$tmp/ev/labels.txt" --weights "$tiny" >"$tmp/out" 2>&1; [ $? -ne 0 ] && grep -q "13 classes" "$tmp/out" && ok || bad "eval label beyond classes: $(cat "$tmp/out")"

# The real pretrained model on the bundled photos (when fetched).
if [ -f models/efficientnet-lite0.pth ]; then
  "$effnet" classify samples/cat.png samples/coffee.png samples/rocket.jpg --top 1 --json >"$tmp/out" 2>"$tmp/err" && ok || bad "classify samples: $(cat "$tmp/err")"
  grep 'cat.png' "$tmp/out" | grep -q -E '"class": 28[1-5]' && ok || bad "cat.png is not a cat: $(grep cat.png "$tmp/out")"
  grep 'coffee.png' "$tmp/out" | grep -q -E '"class": (967|968|504)' && ok || bad "coffee.png: $(grep coffee.png "$tmp/out")"
  grep 'rocket.jpg' "$tmp/out" | grep -q -E '"class": (657|744|812)' && ok || bad "rocket.jpg: $(grep rocket.jpg "$tmp/out")"
  # an ImageNet-style subset: synset folder names give the class (tabby 281, espresso 967,
  # missile 657): the cat is called a tiger cat (tabby in its top 5), the others are top-1
  mkdir -p "$tmp/val/n02123045" "$tmp/val/n07920052" "$tmp/val/n03773504"
  cp samples/cat.png "$tmp/val/n02123045/" && cp samples/coffee.png "$tmp/val/n07920052/" && cp samples/rocket.jpg "$tmp/val/n03773504/"
  "$effnet" eval "$tmp/val" >"$tmp/out" 2>&1 && grep -q "3 images (0 unreadable): top-1 66.67%, top-5 100.00%" "$tmp/out" && ok || bad "eval synsets: $(cat "$tmp/out")"
else
  echo "skip: models/efficientnet-lite0.pth absent (scripts/fetch_weights.sh)"
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
