#!/usr/bin/env python3
# tools/gen_tokenizer_ref.py
# writes: tests/ref/tokenizer_fuzz.jsonl, random texts (HTML entities, odd whitespace, Greek
# capital sigma, 'İ', U+0345, contractions, special tokens, random assigned code points) with
# the ids of OpenAI's simple_tokenizer.py algorithm (without ftfy), in the golden file's format.
# The reference below is that algorithm restated; it needs the `regex` module (pip install regex),
# which Debian's /usr/bin/python3 lacks: run with a Python that has it, e.g.
#   python3 tools/gen_tokenizer_ref.py PATH/TO/bpe_simple_vocab_16e6.txt.gz   (CLIP's merges file)
# Python's Unicode version decides which code points are assigned; only code points assigned in
# Unicode 14 (Python 3.11) are drawn, as data/unicode_tables.h knows no later ones.
import gzip
import html
import json
import random
import re
import sys
import unicodedata

import regex

PAT = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                    regex.IGNORECASE)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class Reference:
    def __init__(self, path):
        self.byte_encoder = bytes_to_unicode()
        lines = gzip.open(path).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in lines[1:49152 - 256 - 2 + 1]]
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.ranks = dict(zip(merges, range(len(merges))))

    def bpe(self, token):
        if token in ("<|startoftext|>", "<|endoftext|>"):
            return [token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = tuple(out)
        return list(word)

    def encode(self, text):
        text = html.unescape(html.unescape(text)).strip()
        text = re.sub(r"\s+", " ", text).strip().lower()
        ids = []
        for piece in PAT.findall(text):
            piece = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids += [self.encoder[t] for t in self.bpe(piece)]
        return ids


POOL = list("abcdefghijklmnopqrstuvwxyz    ABCXYZ0123456789'!?.,<|>&;#-") + [
    "&amp;", "&lt;", "&#39;", "&amp;amp;", "&eacute", "&notit;", "&#x1F600;", "&#150;", "<|endoftext|>",
    "<|startoftext|>", "'s", "'ll", "'S", "ΟΔΟΣ", "Σ", "İ", "\u0345", "ſ", "😀", "東京", "naïve", "\t\n", "\u00a0", "\u3000"]


def random_text(rng):
    if rng.random() < 0.7:
        return "".join(rng.choice(POOL) for _ in range(rng.randint(0, 30)))
    s = ""
    for _ in range(rng.randint(1, 12)):
        c = rng.randint(0x20, 0x2FFFF)
        if 0xD800 <= c <= 0xDFFF or unicodedata.category(chr(c)) == "Cn":
            continue
        s += chr(c) + rng.choice(["", " ", "a"])
    return s


def main():
    assert unicodedata.unidata_version == "14.0.0", "draw code points with a Unicode 14 Python (3.11)"
    if len(sys.argv) < 2:
        sys.exit("usage: python3 tools/gen_tokenizer_ref.py PATH/TO/bpe_simple_vocab_16e6.txt.gz")
    ref = Reference(sys.argv[1])
    rng = random.Random(0)
    with open("tests/ref/tokenizer_fuzz.jsonl", "w", encoding="utf-8") as f:
        for _ in range(400):
            text = random_text(rng)
            f.write(json.dumps({"text": text, "ids": ref.encode(text)}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
