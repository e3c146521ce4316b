#!/usr/bin/env bash
# Carries a model file larger than one device call can take (each call sends at most 64 MiB of
# the working tree, the tree itself included) in pieces, and joins them on the other side.
#
#   scripts/model-pieces.sh split FILE DIR
#       Cuts FILE into DIR/NAME.01, NAME.02, ... of at most 50,000,000 bytes each (NAME = FILE's
#       base name) and writes DIR/NAME.manifest: the whole file's size and sha256, then each
#       piece's.
#   scripts/model-pieces.sh join PIECE DEST
#       Checks PIECE against NAME.manifest beside it, appends it to DEST, and once the last piece
#       is in, checks DEST's size and sha256 against the manifest and says so. Pieces go in order;
#       joining a piece that is already in DEST again changes nothing.
#
# Carrying a GGUF to the GPU machine, one device call per piece. /tmp there lasts only while the
# machine stays warm (it is given back after a short idle time, about 30 s), so make the calls
# back to back, and put the work that needs the whole file in the call of the last piece or right
# after it; a fresh machine starts again from piece 01 (joining says where it stands):
#   here, before the first call:
#           scripts/model-pieces.sh split .cache/MODEL.gguf /tmp/pieces
#           for each piece NN:  mkdir -p .model/NN &&
#                               cp /tmp/pieces/MODEL.gguf.manifest /tmp/pieces/MODEL.gguf.NN .model/NN/
#   device, for NN = 01, 02, ... in order: run with carry [".model/NN"] the command
#           scripts/model-pieces.sh join .model/NN/MODEL.gguf.NN /tmp/MODEL.gguf
# .model/ is git-ignored (/.model/ in .gitignore): an ignored path travels only when carry names
# it, so each call takes its own piece's folder and nothing need happen here between calls.
# Exit codes: 0 ok, 2 bad usage, a piece or file that fails its check, or a piece out of order.
set -euo pipefail

# 50 MB leaves room in a call's 64 MiB for the working tree that travels with it (~10 MB).
# MODEL_PIECES_BYTES makes smaller pieces (for tests); never larger than what one call carries.
piece_bytes="${MODEL_PIECES_BYTES:-50000000}"

die() { echo "model-pieces: $*" >&2; exit 2; }
usage() { sed -n '5,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

split_file() {
  local file="$1" dir="$2" name tmp p n=0
  [[ "$piece_bytes" =~ ^[1-9][0-9]*$ ]] && [ "$piece_bytes" -le 60000000 ] ||
    die "MODEL_PIECES_BYTES=$piece_bytes: expected a whole number of bytes from 1 to 60000000"
  [ -f "$file" ] || die "$file: no such file"
  name="$(basename "$file")"
  [ "$(size "$file")" -le $((99 * piece_bytes)) ] || die "$file: more than 99 pieces of $piece_bytes bytes"
  mkdir -p "$dir"
  rm -f "$dir/$name".[0-9][0-9] "$dir/$name.manifest"
  split -b "$piece_bytes" -d -a 2 --numeric-suffixes=1 "$file" "$dir/$name."
  tmp="$(mktemp "$dir/.manifest.XXXXXX")"
  echo "file $name $(size "$file") $(sha "$file")" > "$tmp"
  for p in "$dir/$name".[0-9][0-9]; do
    echo "piece $(basename "$p") $(size "$p") $(sha "$p")" >> "$tmp"
    n=$((n + 1))
  done
  mv "$tmp" "$dir/$name.manifest"
  echo "model-pieces: $file -> $n pieces in $dir (manifest $dir/$name.manifest)" >&2
}

join_piece() {
  local piece="$1" dest="$2" pname name manifest offset=0 found=0 kind n s h last have
  [ -f "$piece" ] || die "$piece: no such file"
  pname="$(basename "$piece")"
  name="${pname%.[0-9][0-9]}"
  [ "$name" != "$pname" ] || die "$piece: not a piece (expected NAME.NN)"
  manifest="$(dirname "$piece")/$name.manifest"
  [ -f "$manifest" ] || die "$manifest: no manifest beside the piece"
  local file_size file_sha piece_size piece_sha
  read -r kind n file_size file_sha < <(head -n1 "$manifest")
  [ "$kind" = file ] && [ "$n" = "$name" ] || die "$manifest: first line is not 'file $name SIZE SHA256'"
  # Offset of this piece = sizes of the pieces listed before it.
  while read -r kind n s h; do
    [ "$kind" = piece ] || continue
    if [ "$n" = "$pname" ]; then found=1; piece_size="$s"; piece_sha="$h"; last="$(tail -n1 "$manifest" | cut -d' ' -f2)"; break; fi
    offset=$((offset + s))
  done < "$manifest"
  [ "$found" = 1 ] || die "$manifest: lists no piece $pname"
  [ "$(size "$piece")" = "$piece_size" ] || die "$piece: $(size "$piece") bytes, the manifest says $piece_size"
  [ "$(sha "$piece")" = "$piece_sha" ] || die "$piece: sha256 differs from the manifest's"

  have=0
  [ -f "$dest" ] && have="$(size "$dest")"
  if [ "$have" = "$offset" ]; then
    cat "$piece" >> "$dest"
    echo "model-pieces: $pname appended to $dest ($((offset + piece_size)) of $file_size bytes)" >&2
  elif [ "$have" = "$((offset + piece_size))" ]; then
    echo "model-pieces: $pname is already in $dest ($have of $file_size bytes)" >&2
  else
    die "$dest holds $have bytes; $pname belongs at byte $offset (join the pieces in order, from 01)"
  fi
  if [ "$pname" = "$last" ]; then
    [ "$(size "$dest")" = "$file_size" ] || die "$dest: $(size "$dest") bytes after the last piece, expected $file_size"
    [ "$(sha "$dest")" = "$file_sha" ] || die "$dest: sha256 of the joined file differs from the manifest's"
    echo "model-pieces: $dest complete: $file_size bytes, sha256 $file_sha verified"
  fi
}

[ $# -ge 1 ] || usage
case "$1" in
  split) [ $# = 3 ] || usage; split_file "$2" "$3" ;;
  join) [ $# = 3 ] || usage; join_piece "$2" "$3" ;;
  -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) usage ;;
esac
