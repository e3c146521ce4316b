#!/usr/bin/env python3
"""scripts/model-pieces.sh (split a file into checked pieces, join them back one at a time) and
scripts/get-model.sh's model names. Run by CTest (tests/CMakeLists.txt) from the source root;
needs bash and coreutils, no network."""
import os
import shutil
import subprocess
import tempfile
import unittest

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PIECES = os.path.join(REPO, "scripts", "model-pieces.sh")
GET_MODEL = os.path.join(REPO, "scripts", "get-model.sh")


def run(*args, env=None):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(["bash", *args], capture_output=True, text=True, env=full_env)


class ModelPieces(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="model-pieces-")
        self.model = os.path.join(self.tmp, "m.gguf")
        with open(self.model, "wb") as f:
            f.write(os.urandom(2500))
        self.dir = os.path.join(self.tmp, "pieces")
        r = run(PIECES, "split", self.model, self.dir, env={"MODEL_PIECES_BYTES": "1000"})
        self.assertEqual(r.returncode, 0, r.stderr)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def piece(self, n):
        return os.path.join(self.dir, f"m.gguf.{n:02d}")

    def test_split_writes_pieces_and_manifest(self):
        self.assertEqual([os.path.getsize(self.piece(n)) for n in (1, 2, 3)], [1000, 1000, 500])
        self.assertFalse(os.path.exists(self.piece(4)))
        lines = open(os.path.join(self.dir, "m.gguf.manifest")).read().split("\n")
        self.assertTrue(lines[0].startswith("file m.gguf 2500 "))
        self.assertEqual([l.split()[:3] for l in lines[1:4]],
                         [["piece", "m.gguf.01", "1000"], ["piece", "m.gguf.02", "1000"], ["piece", "m.gguf.03", "500"]])

    def test_join_in_order_rebuilds_the_file_and_says_so_at_the_end(self):
        dest = os.path.join(self.tmp, "joined.gguf")
        for n in (1, 2):
            r = run(PIECES, "join", self.piece(n), dest)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("complete", r.stdout)
        r = run(PIECES, "join", self.piece(2), dest)  # again: already there, nothing appended
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.path.getsize(dest), 2000)
        r = run(PIECES, "join", self.piece(3), dest)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("complete", r.stdout)
        self.assertEqual(open(dest, "rb").read(), open(self.model, "rb").read())

    def test_out_of_order_piece_is_refused(self):
        dest = os.path.join(self.tmp, "joined.gguf")
        r = run(PIECES, "join", self.piece(2), dest)
        self.assertEqual(r.returncode, 2)
        self.assertIn("belongs at byte 1000", r.stderr)
        self.assertFalse(os.path.exists(dest))

    def test_corrupt_piece_is_refused(self):
        with open(self.piece(1), "r+b") as f:
            b = f.read(1)
            f.seek(0)
            f.write(bytes([b[0] ^ 1]))
        dest = os.path.join(self.tmp, "joined.gguf")
        r = run(PIECES, "join", self.piece(1), dest)
        self.assertEqual(r.returncode, 2)
        self.assertIn("sha256", r.stderr)
        self.assertFalse(os.path.exists(dest))

    def test_bad_usage_and_oversized_pieces(self):
        self.assertEqual(run(PIECES, "glue", "a", "b").returncode, 2)
        self.assertEqual(run(PIECES, "join", os.path.join(self.dir, "m.gguf.manifest"), "x").returncode, 2)
        r = run(PIECES, "split", self.model, self.dir, env={"MODEL_PIECES_BYTES": "70000000"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("MODEL_PIECES_BYTES", r.stderr)


class GetModel(unittest.TestCase):
    def test_unknown_model_is_a_clear_error(self):
        r = run(GET_MODEL, "llama-9000", env={"HEADCAL_CACHE": tempfile.gettempdir()})
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown model 'llama-9000'", r.stderr)
        self.assertIn("qwen2.5-coder-0.5b", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_more_than_one_name_is_refused(self):
        self.assertEqual(run(GET_MODEL, "smollm2-135m", "qwen2.5-coder-0.5b").returncode, 2)


if __name__ == "__main__":
    unittest.main()
