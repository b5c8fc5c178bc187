#!/usr/bin/env bash
# Renders crates/cli/demo/meme.jpg, the demo's meme: the sample photo chelsea.png (scikit-image,
# see crates/algorithms/testdata/images/PROVENANCE.md) under a caption band, the way today's
# memes are captioned (black DejaVu Sans on white above the picture; outlined text over a photo
# is beyond plain Tesseract). Deterministic: the same ImageMagick and fonts give the same file.
# Run it again only to change the meme.
set -euo pipefail
cd "$(dirname "$0")/.."
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
/usr/bin/convert \
  \( -size 900x170 xc:white -font "$font" -pointsize 46 -fill black \
     -gravity center -annotate +0-30 'Quando a fila de tarefas' \
     -annotate +0+32 'finalmente esvazia' \) \
  \( crates/algorithms/testdata/images/chelsea.png -resize 900x \) \
  -append -strip -quality 90 crates/cli/demo/meme.jpg
