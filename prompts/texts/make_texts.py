#!/usr/bin/env python3
"""Rebuilds the prompt texts in this folder from their Debian packages (see README.md).

Prose: Jane Austen's novels from r-cran-janeaustenr (its lazy-load data, Rdata.rdx/.rdb, read with
the PyPI package `rdata`), each cut after the first chapter that ends past TARGET bytes. Code:
whole headers or modules as the packages install them, concatenated with a one-line comment naming
each file, cut at a line end past TARGET bytes where a source is longer. Output: UTF-8, LF line
ends, one final newline.

Usage: python3 prompts/texts/make_texts.py [--janeaustenr DIR] [--out DIR]
       (DIR defaults: /usr/lib/R/site-library/janeaustenr, this folder)
Needs: rdata; the packages r-cran-janeaustenr (or its .deb unpacked), nlohmann-json3-dev,
libcli11-dev, libpython3.11-minimal, catch2, python3-yaml.
"""
import argparse
import gzip
import os
import re
import struct
import sys
import zlib

TARGET = 200_000

NOVELS = {  # file name -> janeaustenr data set
    "prose-calib-pride-and-prejudice.txt": "prideprejudice",
    "prose-calib-emma.txt": "emma",
    "prose-calib-sense-and-sensibility.txt": "sensesensibility",
    "prose-heldout-persuasion.txt": "persuasion",
    "prose-heldout-northanger-abbey.txt": "northangerabbey",
}

CODE = {  # file name -> (comment prefix, [files])
    "code-calib-nlohmann-json.txt": ("//", ["/usr/include/nlohmann/json.hpp"]),
    "code-calib-cli11.txt": ("//", ["/usr/include/CLI/App.hpp", "/usr/include/CLI/Option.hpp",
                                    "/usr/include/CLI/Validators.hpp"]),
    "code-calib-python-stdlib.txt": ("#", ["/usr/lib/python3.11/argparse.py", "/usr/lib/python3.11/pathlib.py",
                                           "/usr/lib/python3.11/shutil.py"]),
    "code-heldout-catch2.txt": ("//", ["/usr/include/catch2/catch.hpp"]),
    "code-heldout-pyyaml.txt": ("#", ["/usr/lib/python3/dist-packages/yaml/" + m + ".py" for m in (
        "__init__", "error", "tokens", "events", "nodes", "reader", "scanner", "parser", "composer",
        "constructor", "emitter", "serializer", "representer", "resolver")]),
}


def janeausten(data_dir):
    import rdata
    index = rdata.conversion.convert(rdata.parser.parse_data(gzip.decompress(
        open(os.path.join(data_dir, "Rdata.rdx"), "rb").read())))
    blob = open(os.path.join(data_dir, "Rdata.rdb"), "rb").read()
    books = {}
    for name, (off, size) in index["variables"].items():
        entry = blob[int(off):int(off) + int(size)]  # 4-byte big-endian length, then zlib
        (length,) = struct.unpack(">I", entry[:4])
        raw = zlib.decompress(entry[4:])
        assert len(raw) == length, name
        books[str(name)] = [str(line) for line in rdata.conversion.convert(rdata.parser.parse_data(raw))]
    return books


def normalise(text):
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def novel_excerpt(lines):
    chapter = re.compile(r"^(CHAPTER|Chapter) [0-9IVXLC]+\.?$")
    out, size = [], 0
    for line in lines:
        if chapter.match(line) and size > TARGET:
            break
        out.append(line)
        size += len(line.encode()) + 1
    return normalise("\n".join(out))


def code_file(prefix, paths):
    parts, size = [], 0
    for path in paths:
        text = normalise(open(path, encoding="utf-8").read())
        label = path.split("/include/")[-1] if "/include/" in path else path.split("/python3.11/")[-1].split(
            "/dist-packages/")[-1]
        if size + len(text.encode()) > TARGET * 1.15:
            keep, total = [], size
            for line in text.split("\n"):
                if total > TARGET:
                    break
                keep.append(line)
                total += len(line.encode()) + 1
            text = "\n".join(keep) + "\n"
        parts.append(f"{prefix} ---- {label} ----\n{text}")
        size += len(parts[-1].encode())
        if size > TARGET:
            break
    return normalise("\n".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--janeaustenr", default="/usr/lib/R/site-library/janeaustenr")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    books = janeausten(os.path.join(args.janeaustenr, "data"))
    outputs = {name: novel_excerpt(books[key]) for name, key in NOVELS.items()}
    outputs.update({name: code_file(*spec) for name, spec in CODE.items()})
    for name, text in outputs.items():
        with open(os.path.join(args.out, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print(f"{name}: {len(text.encode())} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
