"""Test doubles and helpers shared by the tests and the benchmarks: scripted OpenAI-compatible
and embeddings servers, the simulated reranking model, fake agent tools, hostile PDFs, a Chroma
server, and the helpers that run `rearag` as a user does.

Tests import them as `fakes.NAME` (pytest puts tests/ on sys.path); benchmarks as
`tests.fakes.NAME` (bench/common.py puts the repository root on sys.path). Modules here import
each other relatively, so both work, and none imports conftest.
"""
