"""Nearest-neighbour libraries for --index, and binary codes against float vectors.

At `--count` synthetic vectors (clustered, L2-normalised, `--dim` wide: the width of the chosen
layer) each library builds an HNSW graph with the same settings (M 16, 128 candidates while
building, 64 while searching, inner product, every core) and answers `--queries` held-out
queries for their 10 nearest neighbours. Measured: recall@10 against exact search, queries/s
(as a ratio to exact numpy search measured in the same run), build time, memory (resident-set
growth and the saved index's size). Then the packed sign bits of the same vectors, searched
exactly by Hamming distance: their recall@10 against exact float search, and their memory.
Each library runs in its own process so their memory does not mix. A markdown table on stdout,
one JSON line per measurement on stderr.

    python -m bench.vectors --dim 64 > bench/measured/vectors-...md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import child_result, describe_machine, timed

LIBRARIES = ("usearch", "faiss", "hnswlib")
CONNECTIVITY = 16  # HNSW M: links per node
EXPANSION_ADD = 128  # candidates while building (efConstruction)
EXPANSION_SEARCH = 64  # candidates while searching (ef)
NEIGHBOURS = 10
CLUSTERS = 2000  # centres of the synthetic vectors: illustrations come in look-alike families
SPREAD = 0.6  # noise around a centre, relative to the centre's length


def synthetic_vectors(count: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLUSTERS, dim), dtype=np.float32)
    vectors = centres[rng.integers(0, CLUSTERS, count)]
    vectors += SPREAD * rng.standard_normal((count, dim), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def exact_top(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ base.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def hamming_top(codes: np.ndarray, query_codes: np.ndarray, k: int) -> np.ndarray:
    words = codes.view(np.uint64)
    results = []
    for query in query_codes.view(np.uint64):
        distances = np.bitwise_count(words ^ query).sum(axis=1, dtype=np.int32)
        top = np.argpartition(distances, k)[:k]
        results.append(top[np.argsort(distances[top], kind="stable")])
    return np.stack(results)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(row) & set(expected)) for row, expected in zip(found, truth, strict=True))
    return hits / truth.size


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _build(library: str, base: np.ndarray, threads: int):
    count, dim = base.shape
    if library == "usearch":
        from usearch.index import Index

        index = Index(
            ndim=dim, metric="ip", dtype="f32", connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH,
        )  # fmt: skip
        index.add(np.arange(count, dtype=np.uint64), base, threads=threads)
        return index
    if library == "faiss":
        import faiss

        faiss.omp_set_num_threads(threads)
        index = faiss.IndexHNSWFlat(dim, CONNECTIVITY, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = EXPANSION_ADD
        index.hnsw.efSearch = EXPANSION_SEARCH
        index.add(base)
        return index
    import hnswlib

    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(count, ef_construction=EXPANSION_ADD, M=CONNECTIVITY)
    index.set_ef(EXPANSION_SEARCH)
    index.set_num_threads(threads)
    index.add_items(base, np.arange(count))
    return index


def _search(library: str, index, queries: np.ndarray, threads: int) -> np.ndarray:
    if library == "usearch":
        return index.search(queries, NEIGHBOURS, threads=threads).keys.astype(np.int64)
    if library == "faiss":
        return index.search(queries, NEIGHBOURS)[1]
    return index.knn_query(queries, k=NEIGHBOURS)[0].astype(np.int64)


def _save(library: str, index, path: Path) -> int:
    if library == "usearch":
        index.save(str(path))
    elif library == "faiss":
        import faiss

        faiss.write_index(index, str(path))
    else:
        index.save_index(str(path))
    return path.stat().st_size


def measure_library(args: argparse.Namespace) -> dict:
    """One library in this process: build, search `repeats` times, save."""
    vectors = synthetic_vectors(args.count + args.queries, args.dim, args.seed)
    base, queries = vectors[: args.count], vectors[args.count :]
    truth = exact_top(base, queries, NEIGHBOURS)
    threads = os.cpu_count() or 1
    before = resident_bytes()
    started = time.perf_counter()
    index = _build(args.one, base, threads)
    build_seconds = time.perf_counter() - started
    grown = resident_bytes() - before
    rates, exact_rates = [], []
    for _ in range(args.repeats):
        # Baseline and library alternate, so a burst of load on the machine hits both.
        exact_rates.append(len(queries) / timed(exact_top, base, queries, NEIGHBOURS))
        started = time.perf_counter()
        found = _search(args.one, index, queries, threads)
        rates.append(len(queries) / (time.perf_counter() - started))
    with tempfile.TemporaryDirectory() as folder:
        saved = _save(args.one, index, Path(folder) / "index")
    ratios = [rate / exact for rate, exact in zip(rates, exact_rates, strict=True)]
    return {
        "library": args.one,
        "recall_at_10": recall(found, truth),
        "build_s": build_seconds,
        "queries_per_s": statistics.median(rates),
        "queries_per_s_all": rates,
        "exact_queries_per_s": statistics.median(exact_rates),
        "speedup_vs_exact": statistics.median(ratios),
        "speedup_vs_exact_all": ratios,
        "rss_growth_mib": grown / 2**20,
        "saved_mib": saved / 2**20,
    }


def measure_binary(args: argparse.Namespace) -> dict:
    """--vec --binary's codes (alti2v.vectors.extract) searched exactly by Hamming distance."""
    from alti2v.vectors.extract import binary_codes  # Keras: kept out of the library processes

    vectors = synthetic_vectors(args.count + args.queries, args.dim, args.seed)
    base, queries = vectors[: args.count], vectors[args.count :]
    truth = exact_top(base, queries, NEIGHBOURS)
    codes, query_codes = binary_codes(base), binary_codes(queries)
    padding = -codes.shape[1] % 8  # whole 64-bit words for the popcount
    codes = np.pad(codes, ((0, 0), (0, padding)))
    query_codes = np.pad(query_codes, ((0, 0), (0, padding)))
    # The 10 nearest by Hamming distance, and the same after reranking 100 of them by float.
    found = hamming_top(codes, query_codes, NEIGHBOURS)
    shortlist = hamming_top(codes, query_codes, 10 * NEIGHBOURS)
    reranked = np.stack(
        [
            row[np.argsort(-(base[row] @ query))[:NEIGHBOURS]]
            for row, query in zip(shortlist, queries, strict=True)
        ]
    )
    return {
        "library": "binary (exact Hamming)",
        "recall_at_10": recall(found, truth),
        "recall_at_10_rerank_100": recall(reranked, truth),
        "float_mib": base.nbytes / 2**20,
        "binary_mib": binary_codes(base).nbytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="indexed vectors")
    parser.add_argument("--queries", type=int, default=1000, help="held-out query vectors")
    parser.add_argument("--dim", type=int, default=64, help="vector width (the chosen layer's)")
    parser.add_argument("--repeats", type=int, default=3, help="search repeats per library")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", choices=LIBRARIES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_library(args)))
        return
    header = describe_machine()
    print(json.dumps({**header, "args": vars(args)}), file=sys.stderr)
    rows = []
    for library in LIBRARIES:
        rows.append(child_result("bench.vectors", *sys.argv[1:], "--one", library))
        print(json.dumps(rows[-1]), file=sys.stderr)
    binary = measure_binary(args)
    print(json.dumps(binary), file=sys.stderr)
    print(f"# bench.vectors, {header['date']}\n")
    flags = " ".join(header["cpu_flags_simd"])
    print(f"CPU: {header['cpu_model']} ({header['cores']} cores; {flags}); ", end="")
    print(f"load average at start {header['load_average']}, at end {os.getloadavg()}")
    print(f"Flags: {' '.join(sys.argv[1:]) or '(defaults)'}; {vars(args)}\n")
    print(
        "| library | recall@10 | queries/s (median) | x exact search (median, all) | "
        "build s | RSS growth MiB | saved MiB |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        spread = ", ".join(f"{ratio:.1f}" for ratio in row["speedup_vs_exact_all"])
        print(
            f"| {row['library']} | {row['recall_at_10']:.3f} | {row['queries_per_s']:.0f} | "
            f"{row['speedup_vs_exact']:.1f} ({spread}) | {row['build_s']:.1f} | "
            f"{row['rss_growth_mib']:.0f} | {row['saved_mib']:.0f} |"
        )
    print(
        f"\nExact float search: {rows[0]['exact_queries_per_s']:.0f} queries/s (numpy, "
        f"in the usearch process).\n\n| code | recall@10 vs exact float | memory MiB |"
    )
    print("|---|---|---|")
    print(f"| float32 | 1.000 | {binary['float_mib']:.1f} |")
    print(f"| sign bits, Hamming | {binary['recall_at_10']:.3f} | {binary['binary_mib']:.1f} |")
    print(
        f"| sign bits, 100 by Hamming reranked by float | "
        f"{binary['recall_at_10_rerank_100']:.3f} | {binary['binary_mib']:.1f} + float |"
    )


if __name__ == "__main__":
    main()
