"""Evaluation on judged data, shared by the CLI and by `rearag.rl`:

- `beir`       loading a BEIR-layout dataset (corpus, queries, qrels) and TREC run files
- `retrieval`  nDCG@10 / Recall@100 of dense, BM25 and hybrid search
- `rerank`     nDCG@10 before and after a reranker policy
- `qa`         exact match, F1, abstention and citation validity of the agent's answers
"""
