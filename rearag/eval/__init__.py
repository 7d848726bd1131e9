"""Evaluation on judged data, shared by the CLI and by `rearag.rl`:

- `beir`       loading a BEIR-layout dataset (corpus, queries, qrels) and TREC run files
- `retrieval`  nDCG@10 / Recall@100 of dense, BM25 and hybrid search
- `rerank`     nDCG@10 before and after a reranker policy
- `qa`         SQuAD 2.0-style QA: EM, F1, attribution, citation precision, abstention
"""
